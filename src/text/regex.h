// regex.h: the regexes of a tokenizer.json (Split pre-tokenizers, Replace normalizers), run by
// PCRE2 with the semantics of Oniguruma, which HF tokenizers uses for them.
//
// Patterns are written in Oniguruma's Ruby syntax. PCRE2 (UTF + UCP) agrees with it on the
// constructs tokenizers use (\p{..} classes, look-ahead, greedy/lazy repeats), except for a few
// escapes whose Unicode meaning differs; those are rewritten to explicit classes before
// compiling: \s / \S (Oniguruma: White_Space; PCRE2 also counts U+180E), \w / \W (Oniguruma:
// Letter, Mark, Decimal_Number, Connector_Punctuation) and \h / \H (Oniguruma: a hex digit).
// Iteration over matches follows the onig crate's find_iter, including its rule for empty
// matches. A compiled Regex is immutable and may be shared by threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engram::text {

// A byte range of a subject and whether it is a match (true) or the text between matches.
struct Piece {
  size_t begin = 0;
  size_t end = 0;
  bool is_match = false;
};

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern. Throws Errc::parse naming `origin` (a JSON path) and
  // PCRE2's message and offset when the pattern does not compile.
  static Regex from_onig(std::string_view pattern, const std::string& origin);
  // A pattern that matches `text` literally.
  static Regex literal(std::string_view text, const std::string& origin);

  // Matches as [begin, end) byte ranges, left to right, non-overlapping. subject must be valid
  // UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view subject) const;

  // HF's Pattern::find_matches: the whole subject cut into matches and the gaps between them.
  // An empty subject gives one empty non-match piece.
  std::vector<Piece> find_pieces(std::string_view subject) const;

  bool empty_pattern() const { return empty_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  bool empty_ = false;
};

// The Oniguruma -> PCRE2 rewrite described above (exposed for tests).
std::string onig_to_pcre2(std::string_view pattern);

}  // namespace engram::text
