// pipeline.h: the normalizer and pre-tokenizer stages of a tokenizer.json, as plain step lists.
//
// A "Sequence" in the JSON is flattened into consecutive steps. Normalizers rewrite one string;
// pre-tokenizers cut a list of pieces into finer pieces (and ByteLevel maps each byte to its
// printable stand-in). Semantics follow HF tokenizers 0.22 step by step, minus offset tracking,
// which encode() does not need. Immutable after construction.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "text/json_util.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace engram::text {

struct NormalizerStep {
  enum class Kind { form, lowercase, strip_accents, strip, prepend, replace };
  Kind kind = Kind::lowercase;
  NormalForm form = NormalForm::nfc;  // Kind::form
  bool strip_left = false;            // Kind::strip
  bool strip_right = false;
  std::string content;  // Kind::prepend / replace: the inserted text
  Regex pattern;        // Kind::replace
};

class Normalizer {
 public:
  // From the "normalizer" member (null -> no steps).
  static Normalizer from_json(const Json& j, const JsonPath& p);
  void add(NormalizerStep step) { steps_.push_back(std::move(step)); }
  bool empty() const { return steps_.empty(); }
  std::string apply(std::string s) const;

 private:
  void add_json(const Json& j, const JsonPath& p);
  std::vector<NormalizerStep> steps_;
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct PreTokenizerStep {
  enum class Kind { split, byte_level };
  Kind kind = Kind::split;
  Regex pattern;  // Kind::split
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;  // Kind::byte_level
  bool use_regex = true;
};

class PreTokenizer {
 public:
  // From the "pre_tokenizer" member (null -> the whole text is one word).
  static PreTokenizer from_json(const Json& j, const JsonPath& p);
  // Cuts one normalized piece of text into words for the model; appends them to `words`.
  void apply(std::string_view text, std::vector<std::string>& words) const;

 private:
  void add_json(const Json& j, const JsonPath& p);
  std::vector<PreTokenizerStep> steps_;
};

// HF's NormalizedString::split: pieces of `subject` kept by `behavior` (empty ones dropped).
std::vector<std::string_view> split_by_behavior(std::string_view subject, std::vector<Piece> pieces,
                                                SplitBehavior behavior);

// GPT-2's byte-to-unicode table: the printable code point standing for each byte, and back.
char32_t byte_to_char(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the table.
int char_to_byte(char32_t cp);
// Maps every byte of s to its stand-in character (UTF-8 encoded).
std::string bytes_to_byte_level(std::string_view s);

}  // namespace engram::text
