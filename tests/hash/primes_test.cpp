// Miller-Rabin against trial division, the next-unused-prime search, and the hash layout's
// primes/offsets/multipliers against figures of the demo config and DeepSeek-V4.1's config.json.
#include <gtest/gtest.h>

#include <numeric>

#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "hash/primes.h"

namespace engram {
namespace {

using hash_detail::is_prime;
using hash_detail::is_prime_trial_division;
using hash_detail::next_unused_prime;

TEST(Primes, MillerRabinMatchesTrialDivisionOnSmallNumbers) {
  for (uint64_t n = 0; n < 200000; ++n) ASSERT_EQ(is_prime(n), is_prime_trial_division(n)) << n;
}

TEST(Primes, MillerRabinMatchesTrialDivisionNearEngramTableSizes) {
  for (uint64_t base : {646400ull, 16000000ull, 1000000007ull, 4294967291ull, 1ull << 40}) {
    for (uint64_t n = base - 300; n < base + 300; ++n) {
      ASSERT_EQ(is_prime(n), is_prime_trial_division(n)) << n;
    }
  }
}

TEST(Primes, MillerRabinOnHardCases) {
  // Strong pseudoprimes to several small bases, Carmichael numbers, squares of primes.
  for (uint64_t n : {2047ull, 1373653ull, 25326001ull, 3215031751ull, 2152302898747ull,
                     3474749660383ull, 341550071728321ull, 3825123056546413051ull, 561ull, 41041ull,
                     4294967291ull * 4294967291ull}) {
    EXPECT_FALSE(is_prime(n)) << n;
  }
  for (uint64_t n :
       {2ull, 3ull, 37ull, 18446744073709551557ull, 9223372036854775783ull, 4294967311ull}) {
    EXPECT_TRUE(is_prime(n)) << n;
  }
}

TEST(Primes, NextUnusedPrimeSkipsUsedOnes) {
  std::unordered_set<int64_t> used;
  EXPECT_EQ(next_unused_prime(-5, used), 2);
  EXPECT_EQ(next_unused_prime(0, used), 2);
  EXPECT_EQ(next_unused_prime(2, used), 3);
  EXPECT_EQ(next_unused_prime(13, used), 17);
  used = {17, 19};
  EXPECT_EQ(next_unused_prime(13, used), 23);
  EXPECT_EQ(next_unused_prime(12, used), 13);
}

EngramConfig demo_config() {
  return EngramConfig::from_json(R"({"engram_vocab_size": [646400, 646400], "max_ngram_size": 3,
    "n_embed_per_ngram": 512, "n_head_per_ngram": 8, "layer_ids": [1, 15], "pad_id": 2,
    "seed": 0, "kernel_size": 4, "tokenizer_name_or_path": "deepseek-ai/DeepSeek-V3"})");
}

TEST(HashLayout, DemoConfigPrimesSharedAcrossLayers) {
  // calculate_vocab_size_across_layers() of the demo (129280 * 5 = 646400), layers 1 and 15.
  const auto layout = make_hash_layout(demo_config(), 99092);
  ASSERT_EQ(layout.size(), 2u);
  EXPECT_EQ(layout[0].primes,
            (std::vector<int64_t>{646403, 646411, 646421, 646423, 646433, 646453, 646519, 646523,
                                  646537, 646543, 646549, 646571, 646573, 646577, 646609, 646619}));
  EXPECT_EQ(layout[1].primes,
            (std::vector<int64_t>{646631, 646637, 646643, 646669, 646687, 646721, 646757, 646771,
                                  646781, 646823, 646831, 646837, 646843, 646859, 646873, 646879}));
  for (const auto& l : layout) {
    ASSERT_EQ(l.offsets.size(), l.primes.size());
    int64_t acc = 0;
    for (size_t c = 0; c < l.primes.size(); ++c) {
      EXPECT_EQ(l.offsets[c], acc);
      acc += l.primes[c];
    }
    EXPECT_EQ(l.total_rows, acc);
    ASSERT_EQ(l.multipliers.size(), 3u);
    for (int64_t m : l.multipliers) EXPECT_EQ(m % 2, 1);
  }
}

TEST(HashLayout, DeepSeekV41TableSizesMatchTheReleasedConfig) {
  // engram_num_embeddings of DeepSeek-V4.1-Flash's config.json; a wrong search would miss them.
  const auto cfg = EngramConfig::from_json(R"({"engram_layer_ids": [1, 14],
    "engram_num_embeddings": [384006168, 384016682], "engram_max_ngram_size": 4,
    "engram_vocab_size": 16000000, "engram_n_heads": 8, "engram_head_dim": 256,
    "engram_pad_token_id": 2, "engram_compressed_vocab_size": 99092, "hc_mult": 4,
    "hidden_size": 4096, "rms_norm_eps": 1e-20})");
  const auto layout = make_hash_layout(cfg, 99092);
  EXPECT_EQ(layout[0].total_rows, 384006168);
  EXPECT_EQ(layout[1].total_rows, 384016682);
  EXPECT_EQ(layout[0].primes.front(), 16000057);
  EXPECT_EQ(layout[1].primes.back(), 16000889);
  EXPECT_EQ(layout[0].multipliers,
            (std::vector<int64_t>{76632096046245, 4839876093313, 35959672319349, 73987337458391}));
  EXPECT_EQ(layout[1].multipliers,
            (std::vector<int64_t>{67716810739261, 51510806800915, 30921347202721, 82619226485591}));
}

TEST(HashLayout, RefusesTableSizesThatDisagreeWithTheConfig) {
  const auto cfg = EngramConfig::from_json(R"({"engram_layer_ids": [1, 14],
    "engram_num_embeddings": [384006168, 384016683], "engram_max_ngram_size": 4,
    "engram_vocab_size": 16000000, "engram_n_heads": 8, "engram_head_dim": 256,
    "engram_pad_token_id": 2, "engram_compressed_vocab_size": 99092, "hc_mult": 4,
    "hidden_size": 4096, "rms_norm_eps": 1e-20})");
  try {
    make_hash_layout(cfg, 99092);
    FAIL() << "expected a mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_NE(std::string(e.what()).find("384016683"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("384016682"), std::string::npos) << e.what();
  }
}

TEST(HashLayout, MultipliersKeepProductsInInt64) {
  // hash_kernels.cpp relies on x * m < 2^63 for every compressed id x < V'.
  for (int64_t v :
       {1ll, 2ll, 3ll, 1000ll, 99092ll, 129280ll, 1ll << 31, (1ll << 40) + 3, 1ll << 62}) {
    for (const auto& layer : make_hash_layout(demo_config(), v)) {
      for (int64_t m : layer.multipliers) {
        EXPECT_GE(m, 1);
        EXPECT_EQ(m % 2, 1);
        EXPECT_LT(static_cast<__int128>(v - 1) * m, static_cast<__int128>(INT64_MAX)) << v;
      }
    }
  }
  // A vocabulary this large leaves only the multiplier 1.
  for (const auto& layer : make_hash_layout(demo_config(), 1ll << 62)) {
    EXPECT_EQ(layer.multipliers, (std::vector<int64_t>{1, 1, 1}));
  }
}

}  // namespace
}  // namespace engram
