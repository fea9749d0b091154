// engram/tokenizer.h: a Hugging Face tokenizer.json (BPE model) loaded for encode and decode.
//
// Supports what byte-level BPE tokenizers such as DeepSeek-V3's use: added/special tokens
// (matched before pre-tokenization), normalizers, Split / ByteLevel / Sequence pre-tokenizers
// (regexes with \p{..} classes and look-ahead, run by PCRE2), the BPE model with merges, the
// ByteLevel decoder, and ByteLevel / TemplateProcessing post-processors. Anything else in the
// file is refused with Errc::unsupported naming the JSON path, never silently ignored.
// Thread safety: a loaded Tokenizer is immutable; encode/decode may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

class Tokenizer {
 public:
  // Throws Errc::io (cannot read), Errc::parse (malformed JSON, naming the JSON path),
  // Errc::unsupported (a component engram does not implement).
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(std::string_view json_text, const std::string& origin = "<memory>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids for UTF-8 text. add_special_tokens applies the post-processor as HF tokenizers'
  // encode(text, add_special_tokens=True) does. Invalid UTF-8 throws Errc::parse with the offset.
  // A file regex that exceeds PCRE2's backtracking limits on this text throws Errc::unsupported.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Text for ids, as HF's decode(ids, skip_special_tokens) with no clean-up of spaces.
  // An id outside [0, vocab_size()) throws Errc::out_of_range naming its position and value;
  // so does an id inside that range with no vocabulary entry (HF would drop it silently).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Number of ids: base vocabulary plus added tokens (max id + 1).
  int64_t vocab_size() const;
  // The vocabulary entry (byte-level string) of an id; throws Errc::out_of_range.
  const std::string& id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  bool is_special(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace engram
