// token_ids.cpp: the token id rule of token_ids.h and the text of its one error.
#include "util/token_ids.h"

#include "engram/error.h"

namespace engram {

std::string batch_position(int64_t flat, int64_t time) {
  const int64_t t = time > 0 ? time : 1;
  return "(batch " + std::to_string(flat / t) + ", position " + std::to_string(flat % t) + ")";
}

void fail_token_id(int64_t id, const std::string& where, int64_t vocab, IdUse use) {
  fail(Errc::out_of_range, "input id ", id, " at ", where,
       " is outside the tokenizer's vocabulary of ", vocab, " ids",
       use == IdUse::hash ? " (negative ids are padding and pass through hashing unchanged)"
                          : " (negative ids are padding: they hash, but have no text to decode)");
}

void check_token_ids(std::span<const int64_t> ids, int64_t time, int64_t vocab,
                     std::span<const uint8_t> dead, IdUse use) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!dead.empty() && dead[i]) continue;
    if (bad_token_id(ids[i], vocab, use))
      fail_token_id(ids[i], batch_position(static_cast<int64_t>(i), time), vocab, use);
  }
}

}  // namespace engram
