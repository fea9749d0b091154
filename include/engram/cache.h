// engram/cache.h: the hot-row cache that sits in front of a slower row tier.
//
// N-gram row traffic is Zipfian, so a cache far smaller than a table catches most lookups.
// Two eviction policies, chosen per cache:
//   lru     - least recently used; every hit moves the row to the front.
//   s3fifo  - S3-FIFO (Yang et al., SOSP 2023): a small FIFO (10% of entries) admits new rows,
//             a row hit at least once while there moves to the main FIFO, others leave a key in
//             a ghost FIFO so a quick return goes straight to main; the main FIFO gives every
//             row with hits another lap (2-bit frequency, decremented per lap). Hits only bump a
//             counter: no list surgery, which is what makes it cheap under a lock.
// CacheIndex is the policy alone (keys -> slots, no row bytes): used by RowCache and by the
// hit-rate simulations of `engram bench store`. RowCache adds the bytes and a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace engram {

enum class CachePolicy { lru, s3fifo };
const char* cache_policy_name(CachePolicy p);
// "lru" or "s3fifo"; throws Errc::invalid_argument naming the bad value otherwise.
CachePolicy parse_cache_policy(const std::string& name);

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t inserts = 0;
  uint64_t evictions = 0;
  uint64_t entries = 0;         // rows cached now
  uint64_t capacity_rows = 0;   // rows the byte budget holds, at most the rows there are
  uint64_t capacity_bytes = 0;  // the budget as given
  bool capped = false;          // the budget holds more rows than exist: capacity_rows is all
  double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }
};

// The eviction policy over `capacity` slots. Not thread-safe. Keys are any 64-bit values.
class CacheIndex {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  CacheIndex(uint64_t capacity, CachePolicy policy);

  // The slot holding `key` (recording the access for the policy), or kNone.
  uint32_t find(uint64_t key);
  // Makes room for `key` (not present) and returns its slot, evicting one entry when full;
  // kNone when the capacity is 0 (the cache is then a pass-through).
  uint32_t admit(uint64_t key);
  // admit() unless `key` is present (then kNone, and the policy state is untouched).
  uint32_t admit_if_absent(uint64_t key);
  // find(), and admit() on a miss; returns whether it was a hit. For simulations.
  bool access(uint64_t key);

  uint64_t capacity() const { return capacity_; }
  uint64_t size() const { return map_.size(); }
  uint64_t evictions() const { return evictions_; }
  CachePolicy policy() const { return policy_; }

 private:
  struct Node {
    uint64_t key = 0;
    uint32_t prev = kNone, next = kNone;
    uint8_t freq = 0;
    uint8_t queue = 0;  // 0 = small (or the LRU list), 1 = main
  };
  struct List {
    uint32_t head = kNone, tail = kNone;
    uint64_t size = 0;
  };
  void push_front(List& l, uint32_t i);
  void unlink(List& l, uint32_t i);
  uint32_t evict_one();  // frees one slot and returns it
  uint32_t evict_small();
  uint32_t evict_main();
  void ghost_add(uint64_t key);
  bool ghost_take(uint64_t key);

  uint64_t capacity_;
  CachePolicy policy_;
  uint64_t small_cap_ = 0, main_cap_ = 0;
  std::vector<Node> nodes_;
  uint32_t next_unused_ = 0;
  std::unordered_map<uint64_t, uint32_t> map_;
  List small_, main_;  // LRU uses small_ as its one list, front = most recent
  // Ghost FIFO: the last main_cap_ keys evicted from the small queue; a key readmitted since its
  // eviction no longer counts. ghost_ maps a key to the sequence number of its newest entry.
  struct GhostEntry {
    uint64_t key = 0, seq = 0;
  };
  std::vector<GhostEntry> ghost_ring_;
  uint64_t ghost_head_ = 0, ghost_count_ = 0, ghost_seq_ = 0;
  std::unordered_map<uint64_t, uint64_t> ghost_;
  uint64_t evictions_ = 0;
};

// A byte-bounded, thread-safe cache of fixed-size rows: capacity_bytes / row_bytes rows, but no
// more than max_rows (the rows that exist: slots beyond them could never be filled, so they are
// not allocated). Capacity 0 (or less than one row) makes every lookup a miss and every insert a
// no-op.
class RowCache {
 public:
  RowCache(uint64_t capacity_bytes, uint32_t row_bytes, CachePolicy policy,
           uint64_t max_rows = UINT64_MAX);

  // Copies the row of `key` into `out` (row_bytes) and returns true on a hit; counts it.
  bool lookup(uint64_t key, std::byte* out);
  // For each i: on a hit copies the row into out + i*row_bytes and sets hit[i] = 1, else 0.
  // One lock for the batch. Returns the number of hits.
  size_t lookup_batch(std::span<const uint64_t> keys, std::byte* out, std::span<uint8_t> hit);
  // Caches `row` (row_bytes) under `key` after a miss; may evict. A key already present (another
  // thread inserted it first) is left as is.
  void insert(uint64_t key, const std::byte* row);
  // insert() for keys[i] with rows at rows + i*row_bytes where mask[i] != 0, under one lock.
  void insert_batch(std::span<const uint64_t> keys, const std::byte* rows,
                    std::span<const uint8_t> mask);

  uint32_t row_bytes() const { return row_bytes_; }
  CachePolicy policy() const { return index_.policy(); }
  CacheStats stats() const;
  void reset_counters();

 private:
  mutable std::mutex mu_;
  uint64_t capacity_bytes_;
  uint32_t row_bytes_;
  CacheIndex index_;
  std::unique_ptr<std::byte[]> data_;  // [capacity_rows, row_bytes]
  uint64_t hits_ = 0, misses_ = 0, inserts_ = 0, evictions_base_ = 0;
  bool capped_ = false;
};

}  // namespace engram
