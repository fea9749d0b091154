// unicode.h: the Unicode operations of HF tokenizers' normalizers, done with ICU.
//
// Each function mirrors one HF normalizer on a UTF-8 string (valid UTF-8 in, valid UTF-8 out):
// NFC/NFD/NFKC/NFKD; lowercase as Rust's char::to_lowercase applied per code point (full
// mappings, no context: a lone capital sigma becomes σ, never ς); strip_marks as HF's
// StripAccents, which drops every General_Category Mark (Mn, Mc and Me, not only Mn); and the
// White_Space test of Rust's char::is_whitespace used by Strip.
#pragma once

#include <string>
#include <string_view>

namespace engram::text {

enum class NormalForm { nfc, nfd, nfkc, nfkd };

std::string normalize_form(std::string_view s, NormalForm form);
std::string lowercase_full(std::string_view s);
std::string strip_marks(std::string_view s);
bool is_white_space(char32_t cp);
// Rust regex's \w (Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control),
// used by added tokens' single_word rule.
bool is_word_char(char32_t cp);

}  // namespace engram::text
