// corpus.cpp: corpus file listing, the fixed train/val split, Brown corpus detagging and the
// streamed chunk reader (rules in engram/corpus.h).
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "engram/corpus.h"
#include "engram/error.h"
#include "text/utf8.h"
#include "util/read_file.h"

namespace engram {
namespace fs = std::filesystem;

namespace {

bool is_brown_name(const std::string& name) {
  return name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' && name[2] >= '0' &&
         name[2] <= '9' && name[3] >= '0' && name[3] <= '9';
}

bool is_space_byte(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// A corpus file opened for streaming: a regular file only (a FIFO or device could block or
// never end), refused with a message naming what it is.
FilePtr open_input(const std::string& path) {
  uint64_t size = 0;
  const int fd = open_regular_file(path, &size);
  FilePtr f(::fdopen(fd, "rb"));
  if (!f) {
    ::close(fd);
    fail(Errc::io, path, ": cannot open: ", std::strerror(errno));
  }
  return f;
}

// How a Brown token attaches to its neighbours.
enum class Attach { none, open, close };

// Builds one paragraph from Brown words with the spacing rules of corpus.h.
class ParagraphBuilder {
 public:
  void add(std::string_view word) {
    std::string_view text = word;
    Attach attach = Attach::none;
    if (word == "``") {
      text = "\"";
      attach = Attach::open;
    } else if (word == "''") {
      text = "\"";
      attach = Attach::close;
    } else if (word == "'") {
      attach = single_open_ ? Attach::close : Attach::open;
      single_open_ = !single_open_;
    } else if (word == "," || word == "." || word == ";" || word == ":" || word == "?" ||
               word == "!" || word == ")" || word == "]" || word == "}") {
      attach = Attach::close;
    } else if (word == "(" || word == "[" || word == "{") {
      attach = Attach::open;
    }
    if (!text_.empty() && attach != Attach::close && previous_ != Attach::open) text_ += ' ';
    text_ += text;
    previous_ = attach;
  }
  // Appends the paragraph (if any) to doc, separated by "\n", and starts a new one.
  void flush_to(std::string& doc) {
    if (!text_.empty()) {
      if (!doc.empty()) doc += '\n';
      doc += text_;
    }
    text_.clear();
    previous_ = Attach::none;
    single_open_ = false;
  }

 private:
  std::string text_;
  Attach previous_ = Attach::none;
  bool single_open_ = false;
};

// word/tag -> (word, tag); a token without a '/' after its first byte is all word.
std::pair<std::string_view, std::string_view> split_tagged(std::string_view token) {
  const size_t slash = token.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return {token, {}};
  return {token.substr(0, slash), token.substr(slash + 1)};
}

}  // namespace

CorpusSplit parse_corpus_split(const std::string& name) {
  if (name == "all") return CorpusSplit::all;
  if (name == "train") return CorpusSplit::train;
  if (name == "val") return CorpusSplit::val;
  fail(Errc::invalid_argument, "unknown corpus split \"", name, "\" (expected all, train or val)");
}

std::vector<std::string> list_corpus_files(const CorpusOptions& options) {
  if (options.inputs.empty())
    fail(Errc::invalid_argument, "corpus: no input files or folders given");
  std::vector<std::string> files;
  const bool brown = options.format == CorpusFormat::brown;
  auto consider = [&](const fs::path& p) {
    if (!brown || is_brown_name(p.filename().string())) files.push_back(p.string());
  };
  for (const std::string& input : options.inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st)) fail(Errc::io, "corpus input ", input, ": no such file or folder");
    if (fs::is_directory(st)) {
      fs::recursive_directory_iterator it(input, ec), end;
      if (ec) fail(Errc::io, "corpus input ", input, ": cannot list: ", ec.message());
      for (; it != end; it.increment(ec)) {
        if (ec) fail(Errc::io, "corpus input ", input, ": cannot list: ", ec.message());
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory(ec)) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file(ec)) consider(it->path());
      }
    } else if (fs::is_regular_file(st)) {
      consider(fs::path(input));
    } else {
      fail(Errc::io, "corpus input ", input, ": not a regular file or folder");
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  if (files.empty()) {
    fail(Errc::invalid_argument, "corpus: no ", brown ? "Brown corpus (c[a-r][0-9][0-9]) " : "",
         "files found in ", options.inputs.front(),
         options.inputs.size() > 1 ? " and the other inputs" : "");
  }
  if (options.split == CorpusSplit::all) return files;
  std::vector<std::string> kept;
  for (size_t i = 0; i < files.size(); ++i) {
    const bool val = i % 10 == 9;
    if (val == (options.split == CorpusSplit::val)) kept.push_back(files[i]);
  }
  if (kept.empty()) {
    fail(Errc::invalid_argument, "corpus: the ",
         options.split == CorpusSplit::val ? "val" : "train",
         " split is empty: it holds every 10th file (index 9, 19, ...) of the sorted list, and "
         "there are ",
         files.size(), " files");
  }
  return kept;
}

std::string brown_detag(std::string_view tagged, const std::string& origin) {
  if (const size_t bad = text::find_invalid_utf8(tagged); bad != text::kUtf8Valid) {
    fail(Errc::parse, origin, ": invalid UTF-8 at byte offset ", bad);
  }
  std::string doc;
  ParagraphBuilder para;
  std::vector<std::string_view> tokens;
  size_t pos = 0;
  while (pos < tagged.size()) {
    size_t eol = tagged.find('\n', pos);
    if (eol == std::string_view::npos) eol = tagged.size();
    const std::string_view line = tagged.substr(pos, eol - pos);
    pos = eol + 1;
    tokens.clear();
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && is_space_byte(line[i])) ++i;
      const size_t start = i;
      while (i < line.size() && !is_space_byte(line[i])) ++i;
      if (i > start) tokens.push_back(line.substr(start, i - start));
    }
    if (tokens.empty()) {  // a blank line ends the paragraph
      para.flush_to(doc);
      continue;
    }
    const bool headline = std::all_of(tokens.begin(), tokens.end(), [](std::string_view t) {
      const std::string_view tag = split_tagged(t).second;
      return tag.size() >= 3 && tag.substr(tag.size() - 3) == "-hl";
    });
    if (headline) para.flush_to(doc);
    for (const std::string_view t : tokens) para.add(split_tagged(t).first);
    if (headline) para.flush_to(doc);
  }
  para.flush_to(doc);
  return doc;
}

// ---------------------------------------------------------------------------------------------

struct CorpusReader::Impl {
  CorpusOptions options;
  std::vector<std::string> files;
  size_t next_file = 0;
  uint64_t bytes = 0;
  uint64_t documents = 0;

  // The file being read (generic text).
  FilePtr file;
  const std::string* source = nullptr;
  std::string pending;      // bytes read but not yet yielded
  uint64_t pending_at = 0;  // file offset of pending[0]
  bool eof = false;

  void read_more(size_t want) {
    const size_t block = std::max<size_t>(options.chunk_bytes, 4096);
    while (!eof && pending.size() < want) {
      const size_t old = pending.size();
      pending.resize(old + block);
      const size_t got = std::fread(pending.data() + old, 1, block, file.get());
      pending.resize(old + got);
      if (got < block) {
        if (std::ferror(file.get()))
          fail(Errc::io, *source, ": read error at byte offset ", pending_at + old + got);
        eof = true;
      }
    }
  }

  // Where to end the next chunk of pending (which holds more than chunk_bytes bytes).
  size_t cut_point() const {
    const size_t limit = options.chunk_bytes;
    const size_t far = std::min(pending.size() - 1, 4 * limit);
    auto good = [&](size_t i) { return pending[i - 1] == '\n' && !is_space_byte(pending[i]); };
    for (size_t i = std::min(limit, pending.size() - 1); i >= 1; --i) {
      if (good(i)) return i;
    }
    for (size_t i = limit + 1; i <= far; ++i) {
      if (good(i)) return i;
    }
    for (size_t i = limit; i >= 1; --i) {
      if ((static_cast<unsigned char>(pending[i]) & 0xC0) != 0x80) return i;
    }
    return limit;  // only continuation bytes: invalid UTF-8, reported by the caller
  }

  void emit(TextChunk* out, std::string text, uint64_t offset, bool end) {
    if (const size_t bad = text::find_invalid_utf8(text); bad != text::kUtf8Valid) {
      fail(Errc::parse, *source, ": invalid UTF-8 at byte offset ", offset + bad);
    }
    bytes += text.size();
    if (end) ++documents;
    out->text = std::move(text);
    out->source = *source;
    out->offset = offset;
    out->document_end = end;
  }

  bool next(TextChunk* out) {
    for (;;) {
      if (!file && options.format == CorpusFormat::text) {
        if (next_file == files.size()) return finish();
        source = &files[next_file++];
        file = open_input(*source);
        pending.clear();
        pending_at = 0;
        eof = false;
      }
      if (options.format == CorpusFormat::brown) {
        if (next_file == files.size()) return finish();
        source = &files[next_file++];
        std::string raw = read_whole(*source);
        std::string doc = brown_detag(raw, *source);
        if (doc.empty()) continue;
        emit(out, std::move(doc), 0, true);
        return true;
      }
      read_more(4 * options.chunk_bytes + 1);
      if (pending.size() <= options.chunk_bytes && eof) {
        file.reset();
        if (pending.empty()) continue;  // an empty file is no document
        emit(out, std::move(pending), pending_at, true);
        pending = std::string();
        return true;
      }
      // More than chunk_bytes are left (read_more stops early only at the end of the file).
      const size_t cut = cut_point();
      std::string head = pending.substr(0, cut);
      pending.erase(0, cut);
      const uint64_t at = pending_at;
      pending_at += cut;
      // cut < pending.size(), so the rest of the document is never empty.
      emit(out, std::move(head), at, false);
      return true;
    }
  }

  bool finish() {
    if (bytes == 0) {
      fail(Errc::invalid_argument, "empty corpus: ", files.size(), " file(s) starting with ",
           files.front(), " hold no text");
    }
    return false;
  }

  static std::string read_whole(const std::string& path) {
    FilePtr f = open_input(path);
    std::string s;
    std::array<char, 65536> buf;
    size_t got;
    while ((got = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) s.append(buf.data(), got);
    if (std::ferror(f.get())) fail(Errc::io, path, ": read error at byte offset ", s.size());
    return s;
  }
};

CorpusReader::CorpusReader(CorpusOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.chunk_bytes == 0)
    fail(Errc::invalid_argument, "corpus: chunk_bytes must be positive");
  impl_->files = list_corpus_files(options);
  impl_->options = std::move(options);
}

CorpusReader::~CorpusReader() = default;
CorpusReader::CorpusReader(CorpusReader&&) noexcept = default;
CorpusReader& CorpusReader::operator=(CorpusReader&&) noexcept = default;

bool CorpusReader::next(TextChunk* out) {
  return impl_->next(out);
}
const std::vector<std::string>& CorpusReader::files() const {
  return impl_->files;
}
uint64_t CorpusReader::bytes_read() const {
  return impl_->bytes;
}
uint64_t CorpusReader::documents_read() const {
  return impl_->documents;
}

}  // namespace engram
