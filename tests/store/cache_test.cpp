// Cache tests: CacheIndex (LRU, S3-FIFO) against plain reference models written from the policy
// definitions with linear searches, on Zipf traffic and small capacities; RowCache bytes,
// counters, capacity 0 as a pass-through, and concurrent use.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <list>
#include <random>
#include <thread>

#include "engram/cache.h"
#include "engram/error.h"

namespace engram {
namespace {

// Reference LRU: a list, most recent first.
struct RefLru {
  size_t cap;
  std::list<uint64_t> l;
  bool access(uint64_t k) {
    auto it = std::find(l.begin(), l.end(), k);
    if (it != l.end()) {
      l.erase(it);
      l.push_front(k);
      return true;
    }
    if (cap == 0) return false;
    if (l.size() == cap) l.pop_back();
    l.push_front(k);
    return false;
  }
};

// Reference S3-FIFO, as documented in cache.h: small queue 10% (at least 1), main the rest, ghost
// remembers the last |main| keys evicted from small; a readmitted key leaves the ghost.
struct RefS3Fifo {
  struct E {
    uint64_t key;
    int freq;
  };
  size_t cap, small_cap, main_cap;
  std::deque<E> s, m;  // front = newest
  struct G {
    uint64_t key;
    bool valid;
  };
  std::deque<G> g;  // back = newest
  explicit RefS3Fifo(size_t c) : cap(c) {
    small_cap = c ? std::max<size_t>(1, c / 10) : 0;
    main_cap = c - small_cap;
  }
  static E* find(std::deque<E>& q, uint64_t k) {
    for (auto& e : q)
      if (e.key == k) return &e;
    return nullptr;
  }
  void evict_main() {
    for (;;) {
      E t = m.back();
      m.pop_back();
      if (t.freq > 0) {
        --t.freq;
        m.push_front(t);
        continue;
      }
      return;
    }
  }
  void evict_small() {
    while (!s.empty()) {
      E t = s.back();
      s.pop_back();
      if (t.freq > 0) {
        t.freq = 0;
        m.push_front(t);
        if (m.size() > main_cap) {
          evict_main();
          return;
        }
        continue;
      }
      if (main_cap > 0) {
        g.push_back({t.key, true});
        if (g.size() > main_cap) g.pop_front();
      }
      return;
    }
    evict_main();
  }
  bool access(uint64_t k) {
    if (E* e = find(s, k)) {
      e->freq = std::min(e->freq + 1, 3);
      return true;
    }
    if (E* e = find(m, k)) {
      e->freq = std::min(e->freq + 1, 3);
      return true;
    }
    if (cap == 0) return false;
    if (s.size() + m.size() == cap) {
      if (s.size() >= small_cap || m.empty())
        evict_small();
      else
        evict_main();
    }
    bool in_ghost = false;
    for (auto& x : g)
      if (x.key == k && x.valid) {
        in_ghost = true;
        x.valid = false;
      }
    if (in_ghost)
      m.push_front({k, 0});
    else
      s.push_front({k, 0});
    return false;
  }
};

// Zipf(s) over n keys by inverse CDF; keys are scrambled so neighbours are unrelated.
std::vector<uint64_t> zipf_stream(size_t n_keys, double s, size_t len, uint64_t seed) {
  std::vector<double> cdf(n_keys);
  double sum = 0;
  for (size_t i = 0; i < n_keys; ++i) cdf[i] = (sum += 1.0 / std::pow(double(i + 1), s));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<uint64_t> out(len);
  for (auto& k : out) {
    size_t r = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    k = (r * 0x9E3779B97F4A7C15ull) ^ 0x1234;
  }
  return out;
}

class CacheIndexVsReference : public ::testing::TestWithParam<size_t> {};

TEST_P(CacheIndexVsReference, LruHitSequenceMatches) {
  size_t cap = GetParam();
  auto stream = zipf_stream(500, 0.9, 20000, cap + 1);
  CacheIndex idx(cap, CachePolicy::lru);
  RefLru ref{cap, {}};
  for (size_t i = 0; i < stream.size(); ++i)
    ASSERT_EQ(idx.access(stream[i]), ref.access(stream[i])) << "access " << i;
  EXPECT_EQ(idx.size(), ref.l.size());
}

TEST_P(CacheIndexVsReference, S3FifoHitSequenceMatches) {
  size_t cap = GetParam();
  auto stream = zipf_stream(500, 0.9, 20000, cap + 7);
  CacheIndex idx(cap, CachePolicy::s3fifo);
  RefS3Fifo ref(cap);
  for (size_t i = 0; i < stream.size(); ++i)
    ASSERT_EQ(idx.access(stream[i]), ref.access(stream[i])) << "access " << i;
  EXPECT_EQ(idx.size(), ref.s.size() + ref.m.size());
}

INSTANTIATE_TEST_SUITE_P(Capacities, CacheIndexVsReference,
                         ::testing::Values(0, 1, 2, 3, 10, 37, 100, 499, 600));

TEST(CacheIndex, NeverHoldsMoreThanCapacityAndSlotsAreDistinct) {
  for (CachePolicy p : {CachePolicy::lru, CachePolicy::s3fifo}) {
    CacheIndex idx(50, p);
    auto stream = zipf_stream(1000, 1.0, 5000, 3);
    std::vector<uint64_t> owner(50, ~0ull);
    for (uint64_t k : stream) {
      if (idx.find(k) != CacheIndex::kNone) continue;
      uint32_t slot = idx.admit(k);
      ASSERT_LT(slot, 50u);
      owner[slot] = k;
      ASSERT_LE(idx.size(), 50u);
    }
    // Every cached key maps to the slot it was last given.
    for (uint32_t s = 0; s < 50; ++s) {
      if (owner[s] != ~0ull && idx.find(owner[s]) != CacheIndex::kNone) {
        EXPECT_EQ(idx.find(owner[s]), s);
      }
    }
  }
}

TEST(CacheIndex, S3FifoResistsAScanBetterThanLru) {
  // A hot set of 40 keys, then a one-time scan of 1000 cold keys, then the hot set again.
  std::vector<uint64_t> stream;
  for (int rep = 0; rep < 5; ++rep)
    for (uint64_t k = 0; k < 40; ++k) stream.push_back(k);
  for (uint64_t k = 1000; k < 2000; ++k) stream.push_back(k);
  size_t tail_start = stream.size();
  for (uint64_t k = 0; k < 40; ++k) stream.push_back(k);
  CacheIndex lru(50, CachePolicy::lru), s3(50, CachePolicy::s3fifo);
  size_t lru_hits = 0, s3_hits = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    bool a = lru.access(stream[i]), b = s3.access(stream[i]);
    if (i >= tail_start) lru_hits += a, s3_hits += b;
  }
  EXPECT_EQ(lru_hits, 0u);
  EXPECT_EQ(s3_hits, 40u);
}

TEST(RowCache, StoresBytesAndCountsHitsAndMisses) {
  for (CachePolicy p : {CachePolicy::lru, CachePolicy::s3fifo}) {
    const uint32_t rb = 24;
    RowCache c(rb * 10, rb, p);
    auto row = [](uint64_t k) {
      std::vector<std::byte> v(rb);
      for (uint32_t i = 0; i < rb; ++i) v[i] = std::byte((k * 31 + i) & 0xff);
      return v;
    };
    std::vector<std::byte> out(rb);
    auto stream = zipf_stream(40, 1.0, 3000, 9);
    uint64_t hits = 0, misses = 0;
    for (uint64_t k : stream) {
      if (c.lookup(k, out.data())) {
        ++hits;
        ASSERT_EQ(out, row(k));
      } else {
        ++misses;
        auto r = row(k);
        c.insert(k, r.data());
      }
    }
    CacheStats s = c.stats();
    EXPECT_EQ(s.hits, hits);
    EXPECT_EQ(s.misses, misses);
    EXPECT_EQ(s.inserts, misses);
    EXPECT_EQ(s.capacity_rows, 10u);
    EXPECT_EQ(s.entries, 10u);
    EXPECT_EQ(s.evictions, misses - 10);
    EXPECT_GT(hits, 0u);
    c.reset_counters();
    EXPECT_EQ(c.stats().hits, 0u);
    EXPECT_EQ(c.stats().evictions, 0u);
  }
}

TEST(RowCache, BatchLookupMatchesSingleLookups) {
  const uint32_t rb = 8;
  RowCache c(rb * 4, rb, CachePolicy::lru);
  std::vector<std::byte> r(rb, std::byte{7});
  c.insert(11, r.data());
  c.insert(12, r.data());
  std::vector<uint64_t> keys{11, 99, 12, 11};
  std::vector<std::byte> out(keys.size() * rb, std::byte{0});
  std::vector<uint8_t> hit(keys.size());
  EXPECT_EQ(c.lookup_batch(keys, out.data(), hit), 3u);
  EXPECT_EQ(hit, (std::vector<uint8_t>{1, 0, 1, 1}));
  EXPECT_EQ(out[rb], std::byte{0});
  EXPECT_EQ(out[2 * rb], std::byte{7});
}

TEST(RowCache, CapacityZeroOrBelowOneRowIsAPassThrough) {
  for (uint64_t bytes : {0ull, 23ull}) {
    RowCache c(bytes, 24, CachePolicy::s3fifo);
    std::vector<std::byte> r(24, std::byte{1}), out(24);
    c.insert(5, r.data());
    EXPECT_FALSE(c.lookup(5, out.data()));
    EXPECT_EQ(c.stats().misses, 1u);
    EXPECT_EQ(c.stats().entries, 0u);
  }
  EXPECT_THROW(RowCache(100, 0, CachePolicy::lru), Error);
  EXPECT_THROW(parse_cache_policy("fifo"), Error);
  EXPECT_EQ(parse_cache_policy("s3fifo"), CachePolicy::s3fifo);
}

TEST(RowCache, NoMoreSlotsThanRowsThatExist) {
  RowCache big(uint64_t(1) << 40, 264, CachePolicy::s3fifo, 50);  // 1 TiB asked, 50 rows exist
  EXPECT_EQ(big.stats().capacity_rows, 50u);
  EXPECT_EQ(big.stats().capacity_bytes, uint64_t(1) << 40);
  EXPECT_TRUE(big.stats().capped);
  std::vector<std::byte> r(264, std::byte{3}), out(264);
  for (uint64_t k = 0; k < 50; ++k) big.insert(k, r.data());
  EXPECT_EQ(big.stats().entries, 50u);
  EXPECT_EQ(big.stats().evictions, 0u);
  EXPECT_TRUE(big.lookup(49, out.data()));
  RowCache small(264 * 10, 264, CachePolicy::lru, 50);
  EXPECT_EQ(small.stats().capacity_rows, 10u);
  EXPECT_FALSE(small.stats().capped);
}

TEST(RowCache, ConcurrentLookupsAndInsertsStayConsistent) {
  const uint32_t rb = 16;
  RowCache c(rb * 64, rb, CachePolicy::s3fifo);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stream = zipf_stream(300, 1.0, 5000, 100 + t);
      std::vector<std::byte> out(rb), row(rb);
      for (uint64_t k : stream) {
        if (c.lookup(k, out.data())) {
          for (uint32_t i = 0; i < rb; ++i)
            if (out[i] != std::byte(k & 0xff)) ++bad;
        } else {
          std::fill(row.begin(), row.end(), std::byte(k & 0xff));
          c.insert(k, row.data());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  CacheStats s = c.stats();
  EXPECT_EQ(s.hits + s.misses, 4u * 5000u);
  EXPECT_LE(s.entries, 64u);
}

}  // namespace
}  // namespace engram
