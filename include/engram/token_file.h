// engram/token_file.h: token ids on disk. TokenFileWriter appends ids to a binary token file
// (format below) chunk by chunk; TokenFile maps one, validates it, and cuts evaluation windows in
// order; WindowSampler cuts seeded training windows [B, T+1] from it.
//
// ---- Token file format (version 1 or 2), little-endian --------------------------------------
//   offset  size  field
//   0       8     magic "ENGRAMTK"
//   8       4     version (uint32): 1, or 2 when the file records its tokenizer
//   12      4     bytes per token (uint32): 2 (uint16 ids) or 4 (uint32 ids)
//   16      8     token count N (uint64)
//   24      4     vocab size V (uint32): every id is < V
//   28      4     separator id (uint32): the id written after each document
//   32      8     checksum (uint64): FNV-1a 64 of the N * bytes-per-token payload bytes
//   40      8     version 2: tokenizer digest (uint64, tokenizer_digest(), never 0); version 1: 0
//   48      16    zero
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
#include <vector>

namespace engram {

inline constexpr size_t kTokenFileHeaderBytes = 64;

struct TokenFileHeader {
  uint32_t version = 1;
  uint32_t bytes_per_token = 2;
  uint64_t token_count = 0;
  uint32_t vocab_size = 0;
  uint32_t separator_id = 0;
  uint64_t checksum = 0;
  // tokenizer_digest() of the tokenizer the ids came from; 0: not recorded (a version-1 file).
  uint64_t tokenizer_digest = 0;
};

class Tokenizer;
// A digest of what decides a tokenizer's ids: every id's token text and whether it is special
// (FNV-1a 64; never 0). Two tokenizers with the same vocabulary size but other tokens differ.
uint64_t tokenizer_digest(const Tokenizer& tokenizer);

// Refuses (Errc::mismatch) a token file made with another tokenizer than `digest`, naming both
// digests, the file and `tokenizer_origin`. A file that records no digest is accepted.
void check_token_file_tokenizer(const TokenFileHeader& header, const std::string& origin,
                                uint64_t digest, const std::string& tokenizer_origin);

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
  // Records the tokenizer the ids come from (tokenizer_digest()); the file becomes version 2.
  void set_tokenizer_digest(uint64_t digest);
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

}  // namespace engram
