// bpe.h: the BPE model of a tokenizer.json: vocabulary, ranked merges, and the merge loop.
//
// tokenize() turns one pre-tokenized word into ids exactly as HF's BPE (dropout off): each
// character becomes a symbol (unknown ones fall back to <0xXX> byte tokens, then to unk, or
// are dropped when neither is configured, as HF does), then the adjacent pair with the lowest
// merge rank is merged (leftmost first among equal ranks) until no ranked pair is left.
// A heap keyed by (rank, position) makes a word O(n log n). Results for words shorter than 256
// bytes are cached (up to 10,000 words, then the cache stops growing). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/json_util.h"

namespace engram::text {

class BpeModel {
 public:
  // From the "model" member; p names it for errors.
  static std::unique_ptr<BpeModel> from_json(const Json& j, const JsonPath& p);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  // Plain reference of the same algorithm (quadratic rescans, no cache), for tests.
  void tokenize_reference(std::string_view word, std::vector<int32_t>& out) const;

  const std::vector<std::string>& id_to_token() const { return id_to_token_; }  // "" for holes
  const std::vector<bool>& id_present() const { return id_present_; }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(int32_t a, int32_t b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // The initial symbols of a word: (id, byte length) per character, after byte fallback / unk.
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_symbols(std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::string unk_token_;
  bool has_unk_ = false;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;

  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace engram::text
