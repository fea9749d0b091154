// engram/data.h: training text in, token files out.
//
// Three pieces, each streamed so a corpus of many gigabytes never sits in memory at once:
//   CorpusReader      walks a corpus (UTF-8 files and folders, or the tagged Brown corpus) and
//                     yields documents as bounded text chunks, with a fixed train / val split.
//   TokenFileWriter   appends token ids to a binary token file (format below) chunk by chunk.
//   TokenFile         maps a token file, validates it, and cuts training windows [B, T+1] at
//                     seeded random offsets or evaluation windows in order.
// What this header is not: a tokenizer (engram/tokenizer.h) or a BPE trainer (bpe_trainer.h).
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
//
// ---- Token file format (version 1), little-endian -------------------------------------------
//   offset  size  field
//   0       8     magic "ENGRAMTK"
//   8       4     version (uint32) = 1
//   12      4     bytes per token (uint32): 2 (uint16 ids) or 4 (uint32 ids)
//   16      8     token count N (uint64)
//   24      4     vocab size V (uint32): every id is < V
//   28      4     separator id (uint32): the id written after each document
//   32      8     checksum (uint64): FNV-1a 64 of the N * bytes-per-token payload bytes
//   40      24    zero
//   64      N * bytes-per-token   token ids
// Ids are uint16 when V <= 65536, else uint32. A writer produces <path>.tmp and renames it to
// <path> on finish(), so a crash never leaves a file that looks complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

class Tokenizer;

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

// ---- token files ---------------------------------------------------------------------------

inline constexpr size_t kTokenFileHeaderBytes = 64;

struct TokenFileHeader {
  uint32_t version = 1;
  uint32_t bytes_per_token = 2;
  uint64_t token_count = 0;
  uint32_t vocab_size = 0;
  uint32_t separator_id = 0;
  uint64_t checksum = 0;
};

// Parses and checks the first 64 bytes of a token file: magic, version, bytes per token,
// separator < vocab, and (when file_size is given) that the file holds exactly the payload the
// header announces. `origin` names the file in errors (Errc::parse).
TokenFileHeader parse_token_file_header(std::span<const uint8_t> bytes, const std::string& origin,
                                        std::optional<uint64_t> file_size = std::nullopt);

// Checks a payload against its header: byte length, checksum (Errc::parse) and every id below
// the vocab size (Errc::out_of_range naming the token's position and byte offset).
void check_token_payload(const TokenFileHeader& header, std::span<const uint8_t> payload,
                         const std::string& origin);

// FNV-1a 64 of bytes, continuing from `state` (start with kFnvOffsetBasis).
inline constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;
uint64_t fnv1a64(std::span<const uint8_t> bytes, uint64_t state = kFnvOffsetBasis);

class TokenFileWriter {
 public:
  // Opens <path>.tmp. Errc::invalid_argument when vocab_size is 0 or separator_id >= vocab_size;
  // Errc::io when the file cannot be created.
  TokenFileWriter(std::string path, uint32_t vocab_size, uint32_t separator_id);
  ~TokenFileWriter();  // without finish(): removes <path>.tmp
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // Appends ids (buffered). Errc::out_of_range names the position of an id outside [0, V).
  void append(std::span<const int32_t> ids);
  void append_separator();
  // Writes the header and renames <path>.tmp to <path>; returns the header written.
  TokenFileHeader finish();

  uint64_t token_count() const { return count_; }

 private:
  void flush();
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  TokenFileHeader header_;
  uint64_t count_ = 0;
  uint64_t checksum_ = kFnvOffsetBasis;
  std::vector<uint8_t> buffer_;
  bool finished_ = false;
};

// A read-only, memory-mapped token file. Immutable after open; safe to share between threads.
class TokenFile {
 public:
  // Maps and validates the file: header (as parse_token_file_header), then, unless
  // verify_payload is false, the checksum and that every id is < vocab size (naming the first
  // bad token's position). Errors: Errc::io (cannot open/map), Errc::parse (bad header, size,
  // checksum), Errc::out_of_range (an id >= vocab size).
  static TokenFile open(const std::string& path, bool verify_payload = true);

  TokenFile(TokenFile&&) noexcept;
  TokenFile& operator=(TokenFile&&) noexcept;
  ~TokenFile();

  const TokenFileHeader& header() const;
  uint64_t size() const { return header().token_count; }
  uint32_t vocab_size() const { return header().vocab_size; }
  uint32_t token(uint64_t i) const;  // i < size(), checked only by a debug assert

  // Copies tokens [start, start + out.size()) into out; Errc::out_of_range past the end.
  void read(uint64_t start, std::span<int32_t> out) const;

  // Evaluation windows of T + 1 tokens starting at k * T (they overlap by one token, so the
  // targets of consecutive windows tile the file): count = (size() - 1) / T.
  uint64_t eval_window_count(int64_t T) const;
  // Windows first .. first + B - 1 into out [B, T+1]; Errc::out_of_range past the last window.
  void eval_windows(uint64_t first, int64_t B, int64_t T, std::span<int32_t> out) const;

 private:
  struct Impl;
  explicit TokenFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Training windows, T + 1 consecutive tokens a row, drawn by a seeded SplitMix64 stream (the
// same seed gives the same batches on every platform). Two orders:
//   epoch   (default) the file is cut into n = (size - T) / T windows at phase + k * T; each epoch
//           visits every window once in a seeded pseudo-random order (a keyed 4-round Feistel
//           permutation with cycle walking: O(1) memory whatever the corpus size), and each epoch
//           draws a fresh phase in [0, T), so no window repeats before the whole file was seen.
//   random  each row starts at an offset drawn uniformly from [0, size - T - 1], independently
//           (windows overlap and repeat long before one pass).
// The file must outlive the sampler.
enum class SamplingOrder { epoch, random };

class WindowSampler {
 public:
  // Errc::invalid_argument when B or T < 1 or the file holds fewer than 2 T tokens (epoch) /
  // T + 1 tokens (random).
  WindowSampler(const TokenFile& file, int64_t B, int64_t T, uint64_t seed,
                SamplingOrder order = SamplingOrder::epoch);
  // Fills out [B, T+1] (row-major) with the next batch.
  void next(std::span<int32_t> out);
  int64_t batch() const { return B_; }
  int64_t context() const { return T_; }
  uint64_t windows_per_epoch() const { return n_; }  // epoch order; 0 for random
  uint64_t epoch() const { return epoch_; }          // epochs started so far, minus one

 private:
  uint64_t next_u64();
  uint64_t bounded(uint64_t n);        // uniform in [0, n)
  uint64_t permute(uint64_t i) const;  // epoch order: i in [0, n) -> window index in [0, n)
  void start_epoch();
  const TokenFile* file_;
  int64_t B_;
  int64_t T_;
  uint64_t state_;
  SamplingOrder order_;
  uint64_t n_ = 0;    // windows per epoch
  uint64_t pos_ = 0;  // windows of this epoch already used
  uint64_t epoch_ = 0;
  uint64_t phase_ = 0;      // this epoch's first window offset
  unsigned half_bits_ = 0;  // Feistel half width: 2^(2 half_bits) >= n
  uint64_t keys_[4] = {};   // this epoch's round keys
};

// ---- corpus -> token file --------------------------------------------------------------------

struct TokenizeStats {
  uint64_t documents = 0;
  uint64_t bytes = 0;   // UTF-8 text bytes read
  uint64_t tokens = 0;  // ids written, separators included
  TokenFileHeader header;
};

// Encodes every document of `corpus` with `tokenizer` (no post-processor tokens) and writes
// the ids to a token file at `path`, with `separator_id` after each document. Streamed: chunks
// are read in batches of `threads` * 4 and encoded in parallel (OpenMP), written in order, so
// memory stays near 4 * threads * chunk_bytes whatever the corpus size. Errors as CorpusReader,
// TokenFileWriter; Errc::out_of_range when separator_id is not an id of the tokenizer.
TokenizeStats tokenize_corpus(const Tokenizer& tokenizer, const CorpusOptions& corpus,
                              const std::string& path, int32_t separator_id);

// ---- corpus -> train.bin + val.bin -----------------------------------------------------------
// The held-out rule, one of two, chosen by the number of corpus files and --val-fraction:
//   files     file i of the sorted list is held out when i % 10 == 9 (the Split rule above).
//             Used when val_fraction is unset and the corpus has at least kFileSplitMinFiles
//             files (the Brown corpus: 450 train / 50 val texts).
//   fraction  the whole corpus is tokenized as one stream (documents in sorted file order, a
//             separator after each) and its last ceil(F * N) of N tokens are val.bin, the rest
//             train.bin (so a cut may fall inside a document). Used when val_fraction is set,
//             or, with F = kDefaultValFraction, when there are fewer files: one text file yields
//             both splits.
// Both are deterministic: the same corpus and options give the same two files.
inline constexpr size_t kFileSplitMinFiles = 10;
inline constexpr double kDefaultValFraction = 0.1;

enum class ValRule { files, fraction };

struct DatasetOptions {
  CorpusOptions corpus;                // inputs, format, chunk_bytes (its split is ignored)
  std::optional<double> val_fraction;  // set: the fraction rule with this F in (0, 1)
};

struct DatasetStats {
  ValRule rule = ValRule::files;
  double val_fraction = 0;  // the F used (fraction rule), else 0
  size_t files = 0;         // corpus files read
  uint64_t documents = 0;   // documents and UTF-8 bytes of the whole corpus
  uint64_t bytes = 0;
  TokenFileHeader train;  // the headers of <dir>/train.bin and <dir>/val.bin
  TokenFileHeader val;
};

// Tokenizes a corpus into <dir>/train.bin and <dir>/val.bin (the folder is created) with the
// held-out rule above. Errors as tokenize_corpus; Errc::invalid_argument for an F outside (0, 1)
// or a corpus of fewer than 2 tokens under the fraction rule. Streamed as tokenize_corpus; the
// fraction rule writes the whole stream to <dir>/stream.bin first and removes it after the split.
DatasetStats tokenize_dataset(const Tokenizer& tokenizer, const DatasetOptions& options,
                              const std::string& dir, int32_t separator_id);

// One line saying which rule made a dataset, e.g. "held-out split: every 10th file (50 of 500
// files)" or "held-out split: the last 10% of the token stream (1 file)".
std::string describe_val_rule(const DatasetStats& stats);

}  // namespace engram
