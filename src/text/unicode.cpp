// unicode.cpp: ICU-backed Unicode normalization, lowercase, mark removal (see unicode.h).
#include "text/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include "engram/error.h"
#include "text/utf8.h"

namespace engram::text {

std::string normalize_form(std::string_view s, NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = nullptr;
  switch (form) {
    case NormalForm::nfc:
      norm = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalForm::nfd:
      norm = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalForm::nfkc:
      norm = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalForm::nfkd:
      norm = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || norm == nullptr)
    fail(Errc::internal, "ICU normalizer unavailable: ", u_errorName(status));
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  icu::UnicodeString out = norm->normalize(in, status);
  if (U_FAILURE(status)) fail(Errc::internal, "ICU normalize failed: ", u_errorName(status));
  std::string result;
  out.toUTF8String(result);
  return result;
}

std::string lowercase_full(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = next_code_point(s, i);
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      continue;
    }
    // One code point at a time, so that no context-dependent mapping (Final_Sigma) applies.
    UChar src[2];
    int32_t src_len = 0;
    U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(cp));
    UChar dst[8];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t n = u_strToLower(dst, 8, src, src_len, "", &status);
    if (U_FAILURE(status)) fail(Errc::internal, "ICU u_strToLower failed: ", u_errorName(status));
    int32_t k = 0;
    while (k < n) {
      UChar32 c;
      U16_NEXT_UNSAFE(dst, k, c);
      append_utf8(out, static_cast<char32_t>(c));
    }
  }
  return out;
}

std::string strip_marks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const char32_t cp = next_code_point(s, i);
    const int8_t t = u_charType(static_cast<UChar32>(cp));
    if (t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK) continue;
    out.append(s.substr(start, i - start));
  }
  return out;
}

bool is_white_space(char32_t cp) {
  return u_isUWhiteSpace(static_cast<UChar32>(cp));
}

bool is_word_char(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL))
    return true;
  const int8_t t = u_charType(c);
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

}  // namespace engram::text
