// pipeline.cpp: normalizer and pre-tokenizer steps (see pipeline.h).
#include "text/pipeline.h"

#include <algorithm>
#include <array>

#include "text/utf8.h"

namespace engram::text {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 512> to_byte{};  // every stand-in is below U+0200
  ByteTables() {
    to_byte.fill(-1);
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      to_char[b] = printable[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

// The stand-in of each byte, already UTF-8 encoded (1 or 2 bytes).
struct ByteLevelStrings {
  std::array<std::string, 256> s;
  ByteLevelStrings() {
    for (int b = 0; b < 256; ++b) append_utf8(s[b], byte_tables().to_char[b]);
  }
};

const ByteLevelStrings& byte_level_strings() {
  static const ByteLevelStrings t;
  return t;
}

const Regex& gpt2_regex() {
  static const Regex r = Regex::from_onig(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
      "<ByteLevel regex>");
  return r;
}

Regex pattern_from_json(const Json& j, const JsonPath& p) {
  require_object(j, p);
  if (j.size() != 1) p.fail_parse("expected {\"String\": ...} or {\"Regex\": ...}");
  if (const auto it = j.find("Regex"); it != j.end()) {
    return Regex::from_onig(as_string(*it, p.at("Regex")),
                            p.at("Regex").origin + ": " + p.at("Regex").path);
  }
  if (const auto it = j.find("String"); it != j.end()) {
    return Regex::literal(as_string(*it, p.at("String")),
                          p.at("String").origin + ": " + p.at("String").path);
  }
  p.fail_parse("expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

char32_t byte_to_char(uint8_t b) {
  return byte_tables().to_char[b];
}

int char_to_byte(char32_t cp) {
  return cp < 512 ? byte_tables().to_byte[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view s) {
  const auto& t = byte_level_strings();
  std::string out;
  out.reserve(s.size() * 2);
  for (const char c : s) out.append(t.s[static_cast<unsigned char>(c)]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalizer

Normalizer Normalizer::from_json(const Json& j, const JsonPath& p) {
  Normalizer n;
  if (!j.is_null()) n.add_json(j, p);
  return n;
}

void Normalizer::add_json(const Json& j, const JsonPath& p) {
  const std::string& type = as_string(require_member(j, "type", p), p.at("type"));
  NormalizerStep step;
  if (type == "Sequence") {
    const JsonPath sp = p.at("normalizers");
    const Json& list = require_array(require_member(j, "normalizers", p), sp);
    for (size_t i = 0; i < list.size(); ++i) add_json(list[i], sp.at(i));
    return;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = NormalizerStep::Kind::form;
    step.form = type == "NFC"    ? NormalForm::nfc
                : type == "NFD"  ? NormalForm::nfd
                : type == "NFKC" ? NormalForm::nfkc
                                 : NormalForm::nfkd;
  } else if (type == "Lowercase") {
    step.kind = NormalizerStep::Kind::lowercase;
  } else if (type == "StripAccents") {
    step.kind = NormalizerStep::Kind::strip_accents;
  } else if (type == "Strip") {
    step.kind = NormalizerStep::Kind::strip;
    step.strip_left = optional_bool(j, "strip_left", p, false);
    step.strip_right = optional_bool(j, "strip_right", p, false);
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::Kind::prepend;
    step.content = as_string(require_member(j, "prepend", p), p.at("prepend"));
    check_utf8(step.content, p.at("prepend").path);
  } else if (type == "Replace") {
    step.kind = NormalizerStep::Kind::replace;
    step.pattern = pattern_from_json(require_member(j, "pattern", p), p.at("pattern"));
    step.content = as_string(require_member(j, "content", p), p.at("content"));
    check_utf8(step.content, p.at("content").path);
  } else {
    p.at("type").fail_unsupported("normalizer type \"", excerpt(type), "\" is not supported");
  }
  steps_.push_back(std::move(step));
}

std::string Normalizer::apply(std::string s) const {
  for (const NormalizerStep& step : steps_) {
    switch (step.kind) {
      case NormalizerStep::Kind::form:
        s = normalize_form(s, step.form);
        break;
      case NormalizerStep::Kind::lowercase:
        s = lowercase_full(s);
        break;
      case NormalizerStep::Kind::strip_accents:
        s = strip_marks(s);
        break;
      case NormalizerStep::Kind::prepend:
        if (!s.empty()) s.insert(0, step.content);
        break;
      case NormalizerStep::Kind::strip: {
        size_t begin = 0, end = s.size();
        if (step.strip_left) {
          while (begin < end) {
            size_t next = begin;
            if (!is_white_space(next_code_point(s, next))) break;
            begin = next;
          }
        }
        if (step.strip_right) {
          while (end > begin) {
            size_t start = end - 1;
            while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
            size_t tmp = start;
            if (!is_white_space(next_code_point(s, tmp))) break;
            end = start;
          }
        }
        s = s.substr(begin, end - begin);
        break;
      }
      case NormalizerStep::Kind::replace: {
        std::string out;
        out.reserve(s.size());
        for (const Piece& piece : step.pattern.find_pieces(s)) {
          if (piece.is_match) {
            out.append(step.content);
          } else {
            out.append(s, piece.begin, piece.end - piece.begin);
          }
        }
        s = std::move(out);
        break;
      }
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer

std::vector<std::string_view> split_by_behavior(std::string_view subject, std::vector<Piece> pieces,
                                                SplitBehavior behavior) {
  // (range, keep) pairs, as HF computes them before slicing.
  std::vector<Piece> out;  // is_match reused as "remove"
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Piece& p : pieces) out.push_back({p.begin, p.end, false});
      break;
    case SplitBehavior::removed:
      out = pieces;
      break;
    case SplitBehavior::contiguous: {
      bool previous_match = false;
      for (const Piece& p : pieces) {
        if (p.is_match == previous_match && !out.empty()) {
          out.back().end = p.end;
        } else {
          out.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::merged_with_previous: {
      bool previous_match = false;
      for (const Piece& p : pieces) {
        if (p.is_match && !previous_match && !out.empty()) {
          out.back().end = p.end;
        } else {
          out.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool previous_match = false;
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  std::vector<std::string_view> kept;
  kept.reserve(out.size());
  for (const Piece& p : out) {
    if (!p.is_match && p.end > p.begin) kept.push_back(subject.substr(p.begin, p.end - p.begin));
  }
  return kept;
}

PreTokenizer PreTokenizer::from_json(const Json& j, const JsonPath& p) {
  PreTokenizer t;
  if (!j.is_null()) t.add_json(j, p);
  return t;
}

void PreTokenizer::add_json(const Json& j, const JsonPath& p) {
  const std::string& type = as_string(require_member(j, "type", p), p.at("type"));
  PreTokenizerStep step;
  if (type == "Sequence") {
    const JsonPath sp = p.at("pretokenizers");
    const Json& list = require_array(require_member(j, "pretokenizers", p), sp);
    for (size_t i = 0; i < list.size(); ++i) add_json(list[i], sp.at(i));
    return;
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::split;
    step.pattern = pattern_from_json(require_member(j, "pattern", p), p.at("pattern"));
    const std::string& b = as_string(require_member(j, "behavior", p), p.at("behavior"));
    if (b == "Removed")
      step.behavior = SplitBehavior::removed;
    else if (b == "Isolated")
      step.behavior = SplitBehavior::isolated;
    else if (b == "MergedWithPrevious")
      step.behavior = SplitBehavior::merged_with_previous;
    else if (b == "MergedWithNext")
      step.behavior = SplitBehavior::merged_with_next;
    else if (b == "Contiguous")
      step.behavior = SplitBehavior::contiguous;
    else
      p.at("behavior").fail_parse("unknown split behavior \"", excerpt(b), "\"");
    step.invert = optional_bool(j, "invert", p, false);
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::byte_level;
    step.add_prefix_space = optional_bool(j, "add_prefix_space", p, true);
    step.use_regex = optional_bool(j, "use_regex", p, true);
  } else {
    p.at("type").fail_unsupported("pre-tokenizer type \"", excerpt(type), "\" is not supported");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::apply(std::string_view text, std::vector<std::string>& words) const {
  std::vector<std::string> cur;
  cur.emplace_back(text);
  std::vector<std::string> next;
  for (const PreTokenizerStep& step : steps_) {
    next.clear();
    for (std::string& piece : cur) {
      if (step.kind == PreTokenizerStep::Kind::split) {
        std::vector<Piece> pieces = step.pattern.find_pieces(piece);
        if (step.invert) {
          for (Piece& q : pieces) q.is_match = !q.is_match;
        }
        for (std::string_view s : split_by_behavior(piece, std::move(pieces), step.behavior))
          next.emplace_back(s);
      } else {
        if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) piece = " " + piece;
        if (step.use_regex) {
          for (std::string_view s :
               split_by_behavior(piece, gpt2_regex().find_pieces(piece), SplitBehavior::isolated)) {
            next.push_back(bytes_to_byte_level(s));
          }
        } else if (!piece.empty()) {
          next.push_back(bytes_to_byte_level(piece));
        }
      }
    }
    cur.swap(next);
  }
  for (std::string& w : cur) {
    if (!w.empty()) words.push_back(std::move(w));
  }
}

}  // namespace engram::text
