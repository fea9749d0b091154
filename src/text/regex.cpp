// regex.cpp: PCRE2-backed Regex with Oniguruma semantics (see regex.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex.h"

#include <pcre2.h>

#include "engram/error.h"
#include "text/utf8.h"
#include "util/json.h"

namespace engram::text {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::string source;  // the pattern as written, for messages
  ~Code() { pcre2_code_free(code); }
};

namespace {

// Oniguruma's \s in a Unicode encoding: the White_Space property.
constexpr std::string_view kSpaceSet =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";
constexpr std::string_view kWordSet = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view kHexSet = "0-9a-fA-F";

// Bounds on one match attempt, so that a pathological pattern fails instead of hanging.
constexpr uint32_t kMatchLimit = 50'000'000;
constexpr uint32_t kDepthLimit = 1'000'000;

struct MatchContextDeleter {
  void operator()(pcre2_match_context* c) const { pcre2_match_context_free(c); }
};

pcre2_match_context* shared_match_context() {
  static const std::unique_ptr<pcre2_match_context, MatchContextDeleter> ctx = [] {
    std::unique_ptr<pcre2_match_context, MatchContextDeleter> c(
        pcre2_match_context_create(nullptr));
    pcre2_set_match_limit(c.get(), kMatchLimit);
    pcre2_set_depth_limit(c.get(), kDepthLimit);
    return c;
  }();
  return ctx.get();
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

// One match-data block per thread, reused across calls (only group 0 is read).
pcre2_match_data* thread_match_data() {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create(1, nullptr));
  return md.get();
}

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      std::string_view set;
      bool negate = false;
      switch (e) {
        case 's':
          set = kSpaceSet;
          break;
        case 'S':
          set = kSpaceSet;
          negate = true;
          break;
        case 'w':
          set = kWordSet;
          break;
        case 'W':
          set = kWordSet;
          negate = true;
          break;
        case 'h':
          set = kHexSet;
          break;
        case 'H':
          set = kHexSet;
          negate = true;
          break;
        default:
          break;
      }
      if (set.empty() || (in_class && negate)) {
        // A negated class inside a class cannot be spliced; keep PCRE2's own meaning there.
        out.push_back(c);
        out.push_back(e);
      } else if (in_class) {
        out.append(set);
      } else {
        out.append(negate ? "[^" : "[");
        out.append(set);
        out.push_back(']');
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

Regex Regex::from_onig(std::string_view pattern, const std::string& origin) {
  check_utf8(pattern, origin);
  const std::string pcre = onig_to_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* raw = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.data()), pcre.size(),
                                  PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (raw == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    fail(Errc::parse, origin, ": bad regex \"", printable_excerpt(pattern, 240), "\" (",
         reinterpret_cast<const char*>(msg), " at offset ", err_off, " of the PCRE2 form \"",
         printable_excerpt(pcre, 240), "\")");
  }
  auto code = std::make_shared<Code>();
  code->code = raw;
  code->source = std::string(pattern);
  code->jit = pcre2_jit_compile(raw, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.code_ = std::move(code);
  r.empty_ = pattern.empty();
  return r;
}

Regex Regex::literal(std::string_view text, const std::string& origin) {
  std::string escaped;
  escaped.reserve(text.size() * 2);
  for (const char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos)
      escaped.push_back('\\');
    escaped.push_back(c);
  }
  Regex r = from_onig(escaped, origin);
  r.empty_ = text.empty();
  return r;
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view subject) const {
  std::vector<std::pair<size_t, size_t>> out;
  if (empty_) return out;  // HF: an empty literal pattern never matches
  pcre2_match_data* md = thread_match_data();
  const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t search_from = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (search_from <= subject.size()) {
    const int rc = code_->jit ? pcre2_jit_match(code_->code, subj, subject.size(), search_from, 0,
                                                md, shared_match_context())
                              : pcre2_match(code_->code, subj, subject.size(), search_from,
                                            PCRE2_NO_UTF_CHECK, md, shared_match_context());
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
          rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
          rc == PCRE2_ERROR_NOMEMORY) {
        fail(Errc::unsupported, "regex \"", printable_excerpt(code_->source, 240),
             "\" is too expensive on this input (", reinterpret_cast<const char*>(msg),
             ") at byte offset ", search_from);
      }
      fail(Errc::internal, "regex match failed: ", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0];
    const size_t e = ov[1];
    // The onig crate drops an empty match that touches the end of the previous match and
    // searches again one character further on.
    if (s == e && have_last && last_match_end == e) {
      if (search_from >= subject.size()) break;
      size_t next = search_from;
      next_code_point(subject, next);
      search_from = next;
      continue;
    }
    out.emplace_back(s, e);
    search_from = e;
    have_last = true;
    last_match_end = e;
  }
  return out;
}

std::vector<Piece> Regex::find_pieces(std::string_view subject) const {
  std::vector<Piece> pieces;
  if (subject.empty()) {
    pieces.push_back({0, 0, false});
    return pieces;
  }
  size_t prev = 0;
  for (const auto& [s, e] : find_all(subject)) {
    if (prev != s) pieces.push_back({prev, s, false});
    pieces.push_back({s, e, true});
    prev = e;
  }
  if (prev != subject.size()) pieces.push_back({prev, subject.size(), false});
  return pieces;
}

}  // namespace engram::text
