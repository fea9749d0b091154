// The one way engram parses JSON that came from outside (configs, tokenizer.json, ids files,
// safetensors headers and indexes, training state): nesting depth is bounded before any value
// is built, parse errors name the file, and error messages quote bounded, printable excerpts of
// the input instead of serializing whole user values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace engram {

// No file engram reads nests deeper than a handful of levels (a tokenizer.json's Sequence of
// Sequences is the deepest, under 10). 64 leaves room for any real file while keeping every
// recursive walk of a parsed value (dump, comparison, the readers' own walks) shallow.
inline constexpr int kMaxJsonDepth = 64;

// Throws Errc::parse "<where>: JSON nests deeper than <max_depth> levels (byte offset N)" when
// arrays and objects in `text` nest deeper than max_depth. Brackets inside strings do not
// count. `base_offset` is added to the reported offset (text inside a larger file).
void check_json_depth(std::string_view text, const std::string& where,
                      int max_depth = kMaxJsonDepth, uint64_t base_offset = 0);

// nlohmann::json::parse after check_json_depth. A syntax error throws Errc::parse
// "<where>: malformed JSON at byte offset N: <reason>", any other nlohmann error (a number out
// of range) Errc::parse "<where>: invalid JSON: <reason>"; reasons are bounded and printable.
// `cb` is nlohmann's parser callback (may be empty).
nlohmann::json parse_json(std::string_view text, const std::string& where,
                          int max_depth = kMaxJsonDepth,
                          const nlohmann::json::parser_callback_t& cb = nullptr,
                          uint64_t base_offset = 0);

// At most max_chars characters of `s` for a message: valid UTF-8 is kept, control characters
// and bytes that are not valid UTF-8 become \xNN, and a cut is marked with "...".
std::string printable_excerpt(std::string_view s, size_t max_chars = 80);

// A value from a user's JSON for an error message, never longer than about max_chars: scalars
// as JSON text (strings cut), arrays and objects by kind and size ("an array of 3 elements").
std::string json_excerpt(const nlohmann::json& v, size_t max_chars = 80);

}  // namespace engram
