// compressor.cpp: TokenCompressor (include/engram/compressor.h), DESIGN.md 2.1.
//
// The key of a token is built exactly as Engram's demo builds it with HF's normalizers:
// Sequence[NFKC, NFD, StripAccents, Lowercase, Replace(/[ \t\r\n]+/, " "),
// Replace(/^ $/, U+E000), Strip, Replace("U+E000", " ")]. StripAccents drops every Mark
// (Mn, Mc, Me), which is what HF does, although DESIGN.md says Mn.
#include "engram/compressor.h"

#include <unordered_map>

#include "engram/error.h"
#include "engram/tokenizer.h"
#include "text/unicode.h"
#include "text/utf8.h"

namespace engram {
namespace {

constexpr std::string_view kSentinel = "\xEE\x80\x80";     // U+E000
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Replace(Regex("[ \t\r\n]+"), " ")
std::string collapse_spaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool in_run = false;
  for (const char c : s) {
    const bool sp = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (sp) {
      if (!in_run) out.push_back(' ');
      in_run = true;
    } else {
      out.push_back(c);
      in_run = false;
    }
  }
  return out;
}

// Strip(left=true, right=true): trims White_Space code points.
std::string strip_white_space(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t next = begin;
    if (!text::is_white_space(text::next_code_point(s, next))) break;
    begin = next;
  }
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t tmp = start;
    if (!text::is_white_space(text::next_code_point(s, tmp))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace

std::string TokenCompressor::normalize_key(const std::string& text_in) {
  text::check_utf8(text_in, "normalize_key");
  std::string s = text::normalize_form(text_in, text::NormalForm::nfkc);
  s = text::normalize_form(s, text::NormalForm::nfd);
  s = text::strip_marks(s);
  s = text::lowercase_full(s);
  s = collapse_spaces(s);
  if (s == " ") s = std::string(kSentinel);  // Replace(Regex("^ $"), sentinel)
  s = strip_white_space(s);
  return replace_all(s, kSentinel, " ");
}

TokenCompressor TokenCompressor::from_tokenizer(const Tokenizer& tokenizer) {
  const int64_t n = tokenizer.vocab_size();
  TokenCompressor c;
  c.lookup_.resize(static_cast<size_t>(n));
  std::unordered_map<std::string, int64_t> key_to_new;
  key_to_new.reserve(static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) {
    const auto id32 = static_cast<int32_t>(id);
    std::string raw;
    std::string decoded;
    // An id with no vocabulary entry (a hole) decodes to "" in HF, and so keys as "".
    try {
      raw = tokenizer.id_to_token(id32);
      decoded = tokenizer.decode(std::span<const int32_t>(&id32, 1), false);
    } catch (const Error& e) {
      if (e.code() != Errc::out_of_range) throw;
    }
    std::string key;
    if (decoded.find(kReplacement) != std::string::npos) {
      key = raw;
    } else {
      key = normalize_key(decoded);
      if (key.empty()) key = decoded;
    }
    const auto [it, inserted] =
        key_to_new.emplace(std::move(key), static_cast<int64_t>(key_to_new.size()));
    c.lookup_[static_cast<size_t>(id)] = it->second;
  }
  c.compressed_vocab_size_ = static_cast<int64_t>(key_to_new.size());
  return c;
}

TokenCompressor TokenCompressor::from_tokenizer_file(const std::string& path) {
  return from_tokenizer(Tokenizer::from_file(path));
}

TokenCompressor TokenCompressor::from_lookup(std::vector<int64_t> lookup) {
  int64_t next_new = 0;
  for (size_t i = 0; i < lookup.size(); ++i) {
    const int64_t v = lookup[i];
    if (v < 0 || v > next_new) {
      fail(Errc::invalid_argument, "compressor lookup[", i, "] = ", v,
           ": values must be dense ids handed out in order of first appearance (expected at most ",
           next_new, ")");
    }
    if (v == next_new) ++next_new;
  }
  TokenCompressor c;
  c.lookup_ = std::move(lookup);
  c.compressed_vocab_size_ = next_new;
  return c;
}

void TokenCompressor::compress(std::span<const int64_t> in, std::span<int64_t> out) const {
  if (in.size() != out.size()) {
    fail(Errc::invalid_argument, "compress: input has ", in.size(), " ids but output has room for ",
         out.size());
  }
  const auto n = static_cast<int64_t>(lookup_.size());
  // Validate everything first, so a bad id leaves `out` untouched even when it aliases `in`.
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] >= n)
      fail(Errc::out_of_range, "compress: id ", in[i], " at position ", i, " is >= vocab size ", n);
  }
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t v = in[i];
    out[i] = v < 0 ? v : lookup_[static_cast<size_t>(v)];
  }
}

}  // namespace engram
