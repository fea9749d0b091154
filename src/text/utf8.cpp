// utf8.cpp: UTF-8 validation and Rust-compatible lossy conversion (see utf8.h).
#include "text/utf8.h"

#include <cstdint>

#include "engram/error.h"

namespace engram::text {
namespace {

// Length of the valid sequence starting at s[i], or 0 with *bad_len set to the length of the
// maximal invalid prefix (always >= 1), following Rust's core::str::Utf8Chunks.
size_t sequence_length(std::string_view s, size_t i, size_t* bad_len) {
  const size_t n = s.size();
  auto at = [&](size_t k) -> int { return i + k < n ? static_cast<unsigned char>(s[i + k]) : -1; };
  auto is_cont = [](int b) { return b >= 0x80 && b <= 0xBF; };
  const int b0 = at(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (is_cont(at(1))) return 2;
    *bad_len = 1;
    return 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const int b1 = at(1);
    const bool ok1 = (b0 == 0xE0)   ? (b1 >= 0xA0 && b1 <= 0xBF)
                     : (b0 == 0xED) ? (b1 >= 0x80 && b1 <= 0x9F)
                                    : is_cont(b1);
    if (!ok1) {
      *bad_len = 1;
      return 0;
    }
    if (!is_cont(at(2))) {
      *bad_len = 2;
      return 0;
    }
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const int b1 = at(1);
    const bool ok1 = (b0 == 0xF0)   ? (b1 >= 0x90 && b1 <= 0xBF)
                     : (b0 == 0xF4) ? (b1 >= 0x80 && b1 <= 0x8F)
                                    : is_cont(b1);
    if (!ok1) {
      *bad_len = 1;
      return 0;
    }
    if (!is_cont(at(2))) {
      *bad_len = 2;
      return 0;
    }
    if (!is_cont(at(3))) {
      *bad_len = 3;
      return 0;
    }
    return 4;
  }
  *bad_len = 1;  // continuation byte, C0/C1, or F5..FF
  return 0;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path: 8 bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w = 0;
      for (int k = 0; k < 8; ++k)
        w |= static_cast<uint64_t>(static_cast<unsigned char>(s[i + k])) << (8 * k);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t bad = 0;
    const size_t len = sequence_length(s, i, &bad);
    if (len == 0) return i;
    i += len;
  }
  return kUtf8Valid;
}

void check_utf8(std::string_view s, std::string_view what) {
  const size_t at = find_invalid_utf8(s);
  if (at != kUtf8Valid) {
    fail(Errc::parse, what, ": invalid UTF-8 at byte offset ", at, " (byte 0x", std::hex,
         static_cast<int>(static_cast<unsigned char>(s[at])), ")");
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t bad = 0;
    const size_t len = sequence_length(bytes, i, &bad);
    if (len > 0) {
      out.append(bytes.data() + i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      i += bad;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace engram::text
