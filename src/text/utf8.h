// utf8.h: the few UTF-8 operations the tokenizer needs: validation that names the bad byte,
// code point iteration over text already validated, and Rust's String::from_utf8_lossy
// (HF tokenizers' decoders use it, so decode() must replace invalid bytes exactly as it does).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace engram::text {

inline constexpr size_t kUtf8Valid = static_cast<size_t>(-1);

// Byte offset of the first byte that starts an invalid or truncated sequence, or kUtf8Valid.
// Rejects overlong forms, surrogates and code points above U+10FFFF.
size_t find_invalid_utf8(std::string_view s);

// Throws Errc::parse "<what>: invalid UTF-8 at byte offset N" when s is not valid UTF-8.
void check_utf8(std::string_view s, std::string_view what);

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

void append_utf8(std::string& out, char32_t cp);

// Decodes the code point starting at s[i] (s must be valid UTF-8) and advances i past it.
inline char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    i += 1;
    return b0;
  }
  auto cont = [&](size_t k) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F);
  };
  char32_t cp;
  if (b0 < 0xE0) {
    cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(1);
    i += 2;
  } else if (b0 < 0xF0) {
    cp = (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

}  // namespace engram::text
