// engram/compressor.h: Engram's tokenizer compression (DESIGN.md 2.1), bit-exact.
//
// Maps every raw token id to a compressed id so that tokens differing only in case, accents,
// compatibility forms or surrounding white space share one id. Built once from a tokenizer;
// afterwards a plain lookup table. Immutable and thread-safe after construction.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace engram {

class Tokenizer;

class TokenCompressor {
 public:
  static TokenCompressor from_tokenizer(const Tokenizer& tokenizer);
  static TokenCompressor from_tokenizer_file(const std::string& path);
  // From an existing lookup (raw id -> compressed id); validates that values are a dense
  // range 0..M-1 in order of first appearance. Throws Errc::invalid_argument otherwise.
  static TokenCompressor from_lookup(std::vector<int64_t> lookup);

  // raw id -> compressed id, one entry per raw id (size = tokenizer vocab_size()).
  const std::vector<int64_t>& lookup() const { return lookup_; }
  int64_t vocab_size() const { return static_cast<int64_t>(lookup_.size()); }
  int64_t compressed_vocab_size() const { return compressed_vocab_size_; }

  // Compresses ids in place semantics: out[i] = lookup[in[i]] for 0 <= in[i] < vocab_size(),
  // in[i] unchanged when negative (padding/masks). An id >= vocab_size() throws
  // Errc::out_of_range naming its position i and value. in and out may alias.
  void compress(std::span<const int64_t> in, std::span<int64_t> out) const;

  // The normalization key of DESIGN 2.1 for one decoded token text (exposed for tests). As in
  // HF's StripAccents, which the reference uses, every Mark (Mn, Mc, Me) is removed, not only Mn.
  // Throws Errc::parse when text is not valid UTF-8.
  static std::string normalize_key(const std::string& text);

 private:
  std::vector<int64_t> lookup_;
  int64_t compressed_vocab_size_ = 0;
};

}  // namespace engram
