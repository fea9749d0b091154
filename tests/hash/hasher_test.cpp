// NgramHasher: the fast kernel (AVX-512 and Barrett paths) against the plain reference on random
// layouts, dead masks, negative ids and histories; streaming in random chunks equals hashing
// whole; threads do not change results; bad inputs are refused with positions in the message.
#include "engram/hasher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "engram/error.h"
#include "hash/hash_kernels.h"

namespace engram {
namespace {

using ::testing::HasSubstr;

EngramConfig make_config(int max_ngram, int64_t heads, std::vector<int64_t> vocab_sizes,
                         std::vector<int64_t> layers, int64_t pad_id, int64_t seed) {
  EngramConfig cfg;
  cfg.origin = "test";
  cfg.max_ngram = max_ngram;
  cfg.n_head = heads;
  cfg.vocab_size_per_ngram = std::move(vocab_sizes);
  cfg.layer_ids = std::move(layers);
  cfg.pad_id = pad_id;
  cfg.seed = seed;
  cfg.n_embed_per_ngram = 8 * heads;
  cfg.kernel_size = 4;
  return cfg;
}

std::vector<int64_t> random_lookup(std::mt19937_64& rng, int64_t vocab, int64_t compressed) {
  std::vector<int64_t> lookup(static_cast<size_t>(vocab));
  for (auto& v : lookup) v = static_cast<int64_t>(rng() % static_cast<uint64_t>(compressed));
  return lookup;
}

struct RandomHasher {
  NgramHasher hasher;
  std::vector<int64_t> lookup;
};

// A random hasher; big = all primes >= 2^16 (the AVX-512 path where compiled).
RandomHasher random_setup(std::mt19937_64& rng, int max_ngram, int64_t heads, bool big) {
  const int64_t vocab = 500, compressed = 301;
  std::vector<int64_t> sizes;
  for (int n = 2; n <= max_ngram; ++n) {
    sizes.push_back(big ? 70000 + static_cast<int64_t>(rng() % 3000000)
                        : 2 + static_cast<int64_t>(rng() % 4000));
  }
  auto lookup = random_lookup(rng, vocab, compressed);
  auto cfg = make_config(max_ngram, heads, sizes, {1, 3, 17}, static_cast<int64_t>(rng() % vocab),
                         static_cast<int64_t>(rng() % 100000));
  return {NgramHasher(cfg, lookup, compressed), lookup};
}

std::vector<int64_t> random_ids(std::mt19937_64& rng, size_t n, int64_t vocab, double p_negative) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int64_t> ids(n);
  for (auto& v : ids) {
    v = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
    if (u(rng) < p_negative) v = -1 - static_cast<int64_t>(rng() % (uint64_t{1} << 62));
  }
  return ids;
}

std::vector<uint8_t> random_dead(std::mt19937_64& rng, size_t n, double p) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint8_t> dead(n);
  for (auto& d : dead) d = u(rng) < p;
  return dead;
}

TEST(HashKernels, FastMatchesReferenceOnRandomRowsAndHistories) {
  std::mt19937_64 rng(1);
  int cases = 0;
  for (int max_ngram = 2; max_ngram <= 6; ++max_ngram) {
    for (int64_t heads : {1, 3, 8, 9, 17}) {
      for (bool big : {false, true}) {
        RandomHasher s = random_setup(rng, max_ngram, heads, big);
        const NgramHasher& h = s.hasher;
        const int64_t cols = h.num_columns();
        for (int64_t layer : h.layer_ids()) {
          hash_detail::LayerKernel kernel(h.layout(layer), max_ngram, heads, h.pad_compressed());
          EXPECT_EQ(kernel.use_simd, big && hash_detail::simd_compiled());
          for (bool force_scalar : {false, true}) {
            if (force_scalar) kernel.use_simd = false;
            for (double dead_p : {0.0, 0.1, 0.6}) {
              const int64_t T = 1 + static_cast<int64_t>(rng() % 70);
              const auto x =
                  random_ids(rng, static_cast<size_t>(T), h.compressed_vocab_size(), 0.1);
              const auto dead = random_dead(rng, static_cast<size_t>(T), dead_p);
              const auto hist_ids = random_ids(rng, HashState::kHistory, 301, 0.1);
              const auto hist_dead = random_dead(rng, HashState::kHistory, dead_p);
              const hash_detail::History history{hist_ids.data(), hist_dead.data(),
                                                 static_cast<int64_t>(rng() % max_ngram)};
              const uint8_t* dm = dead_p > 0 ? dead.data() : nullptr;
              for (bool offsets : {false, true}) {
                std::vector<int64_t> want(static_cast<size_t>(T * cols), -7);
                std::vector<int64_t> got(static_cast<size_t>(T * cols), -7);
                hash_detail::hash_row_reference(h.layout(layer), max_ngram, heads,
                                                h.pad_compressed(), x.data(), dm, T, history,
                                                want.data(), offsets);
                // Two pieces, as the OpenMP split calls it.
                const int64_t cut = static_cast<int64_t>(rng() % static_cast<uint64_t>(T + 1));
                hash_detail::hash_row_fast(kernel, x.data(), dm, 0, cut, history, got.data(),
                                           offsets);
                hash_detail::hash_row_fast(kernel, x.data(), dm, cut, T, history, got.data(),
                                           offsets);
                ASSERT_EQ(got, want) << "N=" << max_ngram << " H=" << heads << " big=" << big;
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 500);
}

TEST(HashKernels, ExtremeMixesFloorModLikeNumpy) {
  // Ids chosen so that mixes hit INT64_MIN/MAX neighbourhoods on both paths.
  const int64_t heads = 8;
  auto cfg = make_config(2, heads, {int64_t{1} << 40}, {0}, 0, 0);
  std::vector<int64_t> lookup = {0, 1};
  NgramHasher h(cfg, lookup, 2);
  hash_detail::LayerKernel kernel(h.layout(0), 2, heads, h.pad_compressed());
  const std::vector<int64_t> x = {INT64_MIN,
                                  INT64_MAX,
                                  -1,
                                  1,
                                  INT64_MIN + 1,
                                  0,
                                  INT64_MAX - 1,
                                  -(int64_t{1} << 62),
                                  (int64_t{1} << 62) + 12345};
  const int64_t T = static_cast<int64_t>(x.size());
  std::vector<int64_t> want(static_cast<size_t>(T * heads)), got(want.size());
  hash_detail::hash_row_reference(h.layout(0), 2, heads, h.pad_compressed(), x.data(), nullptr, T,
                                  {}, want.data(), false);
  for (bool scalar : {false, true}) {
    kernel.use_simd = !scalar && hash_detail::simd_compiled();
    hash_detail::hash_row_fast(kernel, x.data(), nullptr, 0, T, {}, got.data(), false);
    EXPECT_EQ(got, want) << "scalar=" << scalar;
  }
  for (int64_t v : want) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, h.layout(0).primes.back());
  }
}

TEST(NgramHasher, HashEqualsReferenceAndThreadsAgree) {
  std::mt19937_64 rng(2);
  RandomHasher s = random_setup(rng, 3, 8, true);
  NgramHasher& h = s.hasher;
  const int64_t B = 3, T = 9000, C = h.num_columns();
  auto raw = random_ids(rng, static_cast<size_t>(B * T), h.vocab_size(), 0.01);
  const auto dead = random_dead(rng, static_cast<size_t>(B * T), 0.02);
  std::vector<int64_t> compressed(raw.size());
  h.compress(raw, B, T, compressed, dead);
  for (int64_t layer : h.layer_ids()) {
    std::vector<int64_t> want(static_cast<size_t>(B * T * C));
    for (int64_t b = 0; b < B; ++b) {
      hash_detail::hash_row_reference(h.layout(layer), 3, 8, h.pad_compressed(),
                                      compressed.data() + b * T, dead.data() + b * T, T, {},
                                      want.data() + b * T * C, false);
    }
    for (int threads : {1, 2, 3, 0}) {
      h.set_num_threads(threads);
      std::vector<int64_t> got(want.size());
      h.hash(layer, raw, B, T, got, dead);
      ASSERT_EQ(got, want) << "threads " << threads;
      std::vector<int64_t> rows(want.size());
      h.hash_rows(layer, raw, B, T, rows, dead);
      const auto offsets = h.offsets(layer);
      for (size_t i = 0; i < rows.size(); ++i) {
        ASSERT_EQ(rows[i], want[i] + offsets[i % static_cast<size_t>(C)]);
      }
    }
  }
}

TEST(NgramHasher, AllLayersAtOnceEqualsOneByOne) {
  std::mt19937_64 rng(5);
  RandomHasher s = random_setup(rng, 4, 3, true);
  NgramHasher& h = s.hasher;
  const int64_t B = 2, T = 5000, C = h.num_columns();
  const auto raw = random_ids(rng, static_cast<size_t>(B * T), h.vocab_size(), 0.01);
  const auto dead = random_dead(rng, static_cast<size_t>(B * T), 0.05);
  std::vector<std::vector<int64_t>> all(h.layer_ids().size(),
                                        std::vector<int64_t>(static_cast<size_t>(B * T * C)));
  std::vector<std::span<int64_t>> outs(all.begin(), all.end());
  for (int threads : {1, 2}) {
    h.set_num_threads(threads);
    h.hash_layers(raw, B, T, outs, dead, /*add_offsets=*/true);
    for (size_t i = 0; i < all.size(); ++i) {
      std::vector<int64_t> one(all[i].size());
      h.hash_rows(h.layer_ids()[i], raw, B, T, one, dead);
      ASSERT_EQ(all[i], one) << "layer " << h.layer_ids()[i] << " threads " << threads;
    }
  }
  // A bad id just before a work-item boundary is reported once, at its own position.
  auto bad = raw;
  bad[static_cast<size_t>(T + 2047)] = h.vocab_size() + 5;
  bad[static_cast<size_t>(T + 4000)] = h.vocab_size() + 6;
  std::vector<uint8_t> live(dead.size(), 0);
  try {
    h.hash_layers(bad, B, T, outs, live, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("at (batch 1, position 2047)"));
  }
  EXPECT_THROW(h.hash_layers(raw, B, T, std::span(outs).first(1), dead, false), Error);
}

TEST(NgramHasher, StreamingInRandomChunksEqualsWhole) {
  std::mt19937_64 rng(3);
  for (int max_ngram : {2, 3, 4, 6}) {
    for (bool big : {false, true}) {
      RandomHasher s = random_setup(rng, max_ngram, 5, big);
      const NgramHasher& h = s.hasher;
      const int64_t C = h.num_columns();
      for (int trial = 0; trial < 20; ++trial) {
        const int64_t T = 1 + static_cast<int64_t>(rng() % 80);
        const auto raw = random_ids(rng, static_cast<size_t>(T), h.vocab_size(), 0.05);
        const auto dead = random_dead(rng, static_cast<size_t>(T), trial % 2 ? 0.2 : 0.0);
        for (int64_t layer : h.layer_ids()) {
          std::vector<int64_t> whole(static_cast<size_t>(T * C));
          h.hash_rows(layer, raw, 1, T, whole, dead);
          HashState state;
          std::vector<int64_t> streamed;
          for (int64_t t = 0; t < T;) {
            const int64_t len = std::min<int64_t>(T - t, 1 + static_cast<int64_t>(rng() % 7));
            std::span<const int64_t> ids(raw.data() + t, static_cast<size_t>(len));
            std::span<const uint8_t> dm(dead.data() + t, static_cast<size_t>(len));
            std::vector<int64_t> out(static_cast<size_t>(len * C));
            h.hash_chunk(state, layer, ids, out, dm, /*add_offsets=*/true);
            streamed.insert(streamed.end(), out.begin(), out.end());
            h.advance(state, ids, dm);
            t += len;
          }
          EXPECT_EQ(state.seen, T);
          ASSERT_EQ(streamed, whole) << "N=" << max_ngram << " T=" << T;
        }
      }
    }
  }
}

TEST(NgramHasher, StateCopyRollsBackSpeculation) {
  std::mt19937_64 rng(4);
  RandomHasher s = random_setup(rng, 4, 2, true);
  const NgramHasher& h = s.hasher;
  const int64_t layer = h.layer_ids()[0], C = h.num_columns();
  const std::vector<int64_t> prefix = {5, 9, 13, 2, 7}, draft = {11, 12, 13}, accepted = {4};
  HashState state;
  h.advance(state, prefix);
  const HashState snapshot = state;
  h.advance(state, draft);
  state = snapshot;
  std::vector<int64_t> out(static_cast<size_t>(C));
  h.hash_chunk(state, layer, accepted, out);
  std::vector<int64_t> seq = prefix;
  seq.push_back(accepted[0]);
  std::vector<int64_t> whole(seq.size() * static_cast<size_t>(C));
  h.hash(layer, seq, 1, static_cast<int64_t>(seq.size()), whole);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), whole.end() - C));
}

TEST(NgramHasher, DeadTokenBlocksOlderLookbacks) {
  // Identity lookup, N = 3, one head: a dead position at t pads lookbacks t-1.. of t+1, t+2.
  auto cfg = make_config(3, 1, {100003, 100003}, {0}, 0, 0);
  std::vector<int64_t> lookup(10);
  for (int i = 0; i < 10; ++i) lookup[i] = i;
  NgramHasher h(cfg, lookup, 10);
  const std::vector<int64_t> ids = {3, 4, 5, 6, 7};
  const std::vector<uint8_t> dead = {0, 0, 1, 0, 0};
  std::vector<int64_t> got(ids.size() * 2);
  h.hash(0, ids, 1, 5, got, dead);
  // Position 4 sees (7, 6, pad): the same 3-gram as the sequence (pad, 6, 7) starting fresh.
  const std::vector<int64_t> fresh = {6, 7};
  std::vector<int64_t> want(4);
  h.hash(0, fresh, 1, 2, want);
  EXPECT_EQ(got[8], want[2]);
  EXPECT_EQ(got[9], want[3]);
  // Position 3 sees (6, pad, pad) like a sequence that starts at 6.
  EXPECT_EQ(got[6], want[0]);
  EXPECT_EQ(got[7], want[1]);
  // The dead position itself hashes as all-pad, like position 0 of a sequence of pad ids.
  const std::vector<int64_t> pad_only = {0};
  std::vector<int64_t> pad_hash(2);
  h.hash(0, pad_only, 1, 1, pad_hash);
  EXPECT_EQ(got[4], pad_hash[0]);
  EXPECT_EQ(got[5], pad_hash[1]);
}

TEST(NgramHasher, RefusesBadInputsWithPositions) {
  auto cfg = make_config(3, 2, {1000, 1000}, {2, 5}, 1, 0);
  std::vector<int64_t> lookup = {0, 1, 1, 2, 3};
  NgramHasher h(cfg, lookup, 4);
  std::vector<int64_t> out(2 * 3 * 4);
  const std::vector<int64_t> ids = {0, 1, 2, 3, 4, 5};
  try {
    h.hash(2, ids, 2, 3, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("input id 5 at (batch 1, position 2)"));
  }
  // The same id at a dead position is never read.
  const std::vector<uint8_t> dead = {0, 0, 0, 0, 0, 1};
  h.hash(2, ids, 2, 3, out, dead);
  try {
    h.hash(3, std::vector<int64_t>(6, 0), 2, 3, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("layer 3 is not an Engram layer (layers: 2, 5)"));
  }
  std::vector<int64_t> small(5);
  EXPECT_THROW(h.hash(2, std::vector<int64_t>(6, 0), 2, 3, small), Error);
  EXPECT_THROW(h.hash(2, std::vector<int64_t>(5, 0), 2, 3, out), Error);
  EXPECT_THROW(h.hash(2, std::vector<int64_t>(6, 0), 2, 3, out, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(h.hash(2, std::vector<int64_t>(6, 0), -2, -3, out), Error);
  EXPECT_THROW(h.set_num_threads(-1), Error);
}

TEST(NgramHasher, RefusesBadConstruction) {
  auto cfg = make_config(3, 2, {1000, 1000}, {2, 5}, 9, 0);
  try {
    NgramHasher(cfg, std::vector<int64_t>{0, 1, 2}, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("pad id 9"));
  }
  cfg.pad_id = 0;
  EXPECT_THROW(NgramHasher(cfg, std::vector<int64_t>{0, 3, 1}, 3), Error);   // 3 >= V'
  EXPECT_THROW(NgramHasher(cfg, std::vector<int64_t>{0, -1, 1}, 3), Error);  // negative
  EXPECT_THROW(NgramHasher(cfg, std::vector<int64_t>{0, 1}, 0), Error);
  cfg.compressed_vocab_size = 7;
  try {
    NgramHasher(cfg, std::vector<int64_t>{0, 1, 2}, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_THAT(e.what(), HasSubstr("7"));
    EXPECT_THAT(e.what(), HasSubstr("3 ids"));
  }
}

}  // namespace
}  // namespace engram
