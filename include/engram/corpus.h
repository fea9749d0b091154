// engram/corpus.h: training text in: a corpus (UTF-8 files and folders, or the tagged Brown
// corpus) walked in a fixed order and yielded as bounded text chunks, with a fixed train / val
// split. Streamed, so a corpus of many gigabytes never sits in memory at once.
// What this header is not: a tokenizer (engram/tokenizer.h), token files (token_file.h), or the
// step from one to the other (tokenize_corpus.h).
//
// ---- Corpus rules --------------------------------------------------------------------------
// Files: every input path is a file or a folder; folders are walked recursively, and the files
// of all inputs are sorted by path (byte order) so the order never depends on the file system.
// Hidden entries (name starting with '.') are skipped. A generic file is one document.
// Brown corpus (CorpusFormat::brown): only files named c[a-r][0-9][0-9] (ca01 .. cr09, 500
// texts) are read; each is one document, detagged as follows:
//   - a token is `word/tag`; the tag is what follows the last '/' and is dropped;
//   - a line is a sentence; consecutive non-blank lines form a paragraph; a line whose tokens
//     all carry a headline tag (ending in "-hl") is a paragraph of its own;
//   - tokens are joined by one space, except: no space before , . ; : ? ! ) ] } and closing
//     quotes; no space after ( [ { and opening quotes; `` becomes an opening " and '' a
//     closing "; a lone ' alternates opening / closing within a paragraph (first one opens);
//   - sentences of a paragraph are joined by one space, paragraphs by one "\n"; a document
//     has no leading or trailing white space.
// Split (both formats): file i of the sorted list (0-based) is held out (val) when
// i % 10 == 9, otherwise it is train. For Brown that is ca10, ca20, ca30, ca40, cb06, ...: 50
// texts of 500, spread over every genre.
// Chunks: a document longer than chunk_bytes is cut after a '\n' that is followed by a byte
// other than space, \t, \r, \n: the last such place within chunk_bytes, else the first within
// 4 * chunk_bytes, else (a line of 4 * chunk_bytes) the last UTF-8 character boundary within
// chunk_bytes. Pre-tokenizer regexes of the GPT-2 / GPT-4 family never match across a cut at a
// line start, so encoding the chunks one by one gives the tokens of the whole document; only
// the last-resort cut inside a giant line may split a word.
// Errors: a path that does not exist, no files at all, invalid UTF-8 (naming the file and byte
// offset), and a corpus (or split) with no text at all all throw engram::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

enum class CorpusFormat { text, brown };
enum class CorpusSplit { all, train, val };

// "all" / "train" / "val" -> CorpusSplit; throws Errc::invalid_argument otherwise.
CorpusSplit parse_corpus_split(const std::string& name);

struct CorpusOptions {
  std::vector<std::string> inputs;  // files and folders
  CorpusFormat format = CorpusFormat::text;
  CorpusSplit split = CorpusSplit::all;
  size_t chunk_bytes = size_t{1} << 20;  // upper bound of one TextChunk (except the fallback)
};

// One piece of one document.
struct TextChunk {
  std::string text;           // valid UTF-8
  std::string source;         // the file it came from
  uint64_t offset = 0;        // byte offset of text in the file (generic text) or document (Brown)
  bool document_end = false;  // the last chunk of its document
};

// The sorted file list of a corpus for a split (the rules above). Throws on a missing path or
// when no file is found.
std::vector<std::string> list_corpus_files(const CorpusOptions& options);

// Detags one Brown corpus file's text (the rules above). `origin` names it in errors.
std::string brown_detag(std::string_view tagged, const std::string& origin);

class CorpusReader {
 public:
  // Lists the files at once (errors above); reads nothing yet.
  explicit CorpusReader(CorpusOptions options);
  ~CorpusReader();
  CorpusReader(CorpusReader&&) noexcept;
  CorpusReader& operator=(CorpusReader&&) noexcept;

  // The next chunk into *out; false at the end of the corpus. Throws Errc::parse for invalid
  // UTF-8 ("<file>: invalid UTF-8 at byte offset N"), Errc::io for a read error, and
  // Errc::invalid_argument at the end when the whole corpus held no text.
  bool next(TextChunk* out);

  const std::vector<std::string>& files() const;
  uint64_t bytes_read() const;  // text bytes yielded so far
  uint64_t documents_read() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engram
