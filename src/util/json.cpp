// See json.h.
#include "util/json.h"

#include <cstdio>

#include "engram/error.h"

namespace engram {

// The depth is checked by a scan of the raw text rather than through nlohmann's parser
// callback or SAX interface: the scan builds nothing, costs one pass over bytes already in
// memory, composes with callers that pass their own parser callback (the safetensors header
// detects duplicate keys that way), and does not depend on whether a given nlohmann version's
// parser, destructor or dump() recurses. Malformed text may be refused here as too deep before
// the parser would call it malformed; it is refused either way.
void check_json_depth(std::string_view text, const std::string& where, int max_depth,
                      uint64_t base_offset) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        fail(Errc::parse, where, ": JSON nests deeper than ", max_depth, " levels (byte offset ",
             base_offset + i, "); engram reads at most ", max_depth);
      }
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& where, int max_depth,
                          const nlohmann::json::parser_callback_t& cb, uint64_t base_offset) {
  check_json_depth(text, where, max_depth, base_offset);
  try {
    return nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based (the byte after the last one read); report the 0-based offset.
    const uint64_t at = e.byte > 0 ? e.byte - 1 : 0;
    fail(Errc::parse, where, ": malformed JSON at byte offset ", base_offset + at, ": ",
         printable_excerpt(e.what(), 240));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number out of range (406)
    fail(Errc::parse, where, ": invalid JSON: ", printable_excerpt(e.what(), 240));
  }
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

}  // namespace

std::string printable_excerpt(std::string_view s, size_t max_chars) {
  std::string out;
  size_t chars = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (chars >= max_chars) {
      out += "...";
      break;
    }
    const size_t n = utf8_length(s, i);
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
    ++chars;
  }
  return out;
}

std::string json_excerpt(const nlohmann::json& v, size_t max_chars) {
  if (v.is_array())
    return str_cat("an array of ", v.size(), v.size() == 1 ? " element" : " elements");
  if (v.is_object())
    return str_cat("an object of ", v.size(), v.size() == 1 ? " member" : " members");
  if (v.is_string()) {
    std::string out(1, '"');
    out += printable_excerpt(v.get_ref<const std::string&>(), max_chars);
    out += '"';
    return out;
  }
  return printable_excerpt(v.dump(), max_chars);  // a number, boolean or null: short already
}

}  // namespace engram
