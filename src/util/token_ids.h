// The one rule for token ids given to engram, and its messages, shared by every front end (the
// CLI's hash and decode, the C API, Python) so that each rejects the same ids with the same text.
//   hash    ids in [0, vocab) are tokens; negative ids are padding or masks and pass through
//           compression unchanged (DESIGN.md 2.1, as the demo's hasher); ids >= vocab at live
//           positions are errors (dead positions are ignored, whatever their id).
//   decode  only tokens, [0, vocab): a negative id has no text.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace engram {

enum class IdUse { hash, decode };

// "(batch b, position t)" for flat index `flat` of a [batch][time] array.
std::string batch_position(int64_t flat, int64_t time);

// Throws Errc::out_of_range: "input id <id> at <where> is outside the tokenizer's vocabulary of
// <vocab> ids ..." (the text ends by saying what the rule is for negative ids under `use`).
[[noreturn]] void fail_token_id(int64_t id, const std::string& where, int64_t vocab, IdUse use);

// Whether `id` breaks the rule for `use`.
inline bool bad_token_id(int64_t id, int64_t vocab, IdUse use) {
  return id >= vocab || (id < 0 && use == IdUse::decode);
}

// Checks the ids of a [ids.size() / time][time] array (positions whose `dead` byte is set are
// skipped) and fails with fail_token_id at the first bad one.
void check_token_ids(std::span<const int64_t> ids, int64_t time, int64_t vocab,
                     std::span<const uint8_t> dead, IdUse use);

}  // namespace engram
