// CacheIndex (LRU and S3-FIFO over fixed slots) and RowCache (the same plus row bytes and a
// lock). The plain reference models these are tested against live in tests/store/cache_test.cpp.
#include "engram/cache.h"

#include <algorithm>
#include <cstring>

#include "engram/error.h"

namespace engram {

const char* cache_policy_name(CachePolicy p) {
  switch (p) {
    case CachePolicy::lru:
      return "lru";
    case CachePolicy::s3fifo:
      return "s3fifo";
  }
  return "?";
}

CachePolicy parse_cache_policy(const std::string& name) {
  if (name == "lru") return CachePolicy::lru;
  if (name == "s3fifo" || name == "s3-fifo") return CachePolicy::s3fifo;
  fail(Errc::invalid_argument, "unknown cache policy '", name, "' (expected lru or s3fifo)");
}

// ---------------------------------------------------------------------------------------------
// CacheIndex

CacheIndex::CacheIndex(uint64_t capacity, CachePolicy policy)
    : capacity_(capacity), policy_(policy) {
  if (capacity >= kNone) fail(Errc::invalid_argument, "cache of ", capacity, " rows is too large");
  if (policy == CachePolicy::s3fifo && capacity > 0) {
    small_cap_ = std::max<uint64_t>(1, capacity / 10);
    main_cap_ = capacity - small_cap_;
    ghost_ring_.resize(std::max<uint64_t>(1, main_cap_));
  }
  nodes_.resize(capacity);
  map_.reserve(capacity);
}

void CacheIndex::push_front(List& l, uint32_t i) {
  Node& n = nodes_[i];
  n.prev = kNone;
  n.next = l.head;
  if (l.head != kNone) nodes_[l.head].prev = i;
  l.head = i;
  if (l.tail == kNone) l.tail = i;
  ++l.size;
}

void CacheIndex::unlink(List& l, uint32_t i) {
  Node& n = nodes_[i];
  if (n.prev != kNone)
    nodes_[n.prev].next = n.next;
  else
    l.head = n.next;
  if (n.next != kNone)
    nodes_[n.next].prev = n.prev;
  else
    l.tail = n.prev;
  n.prev = n.next = kNone;
  --l.size;
}

uint32_t CacheIndex::find(uint64_t key) {
  auto it = map_.find(key);
  if (it == map_.end()) return kNone;
  uint32_t i = it->second;
  if (policy_ == CachePolicy::lru) {
    if (small_.head != i) {
      unlink(small_, i);
      push_front(small_, i);
    }
  } else {
    Node& n = nodes_[i];
    if (n.freq < 3) ++n.freq;
  }
  return i;
}

void CacheIndex::ghost_add(uint64_t key) {
  if (main_cap_ == 0) return;
  const uint64_t cap = ghost_ring_.size();
  if (ghost_count_ == cap) {  // the oldest ages out unless a newer copy of its key exists
    const GhostEntry& old = ghost_ring_[ghost_head_];
    auto it = ghost_.find(old.key);
    if (it != ghost_.end() && it->second == old.seq) ghost_.erase(it);
    ghost_head_ = (ghost_head_ + 1) % cap;
    --ghost_count_;
  }
  uint64_t seq = ghost_seq_++;
  ghost_ring_[(ghost_head_ + ghost_count_) % cap] = {key, seq};
  ++ghost_count_;
  ghost_[key] = seq;
}

bool CacheIndex::ghost_take(uint64_t key) {
  // The ring keeps its entry (removing from the middle of a FIFO is O(n)); with the key gone
  // from the map it no longer matches, and it ages out in turn.
  return ghost_.erase(key) > 0;
}

uint32_t CacheIndex::evict_main() {
  for (;;) {
    uint32_t t = main_.tail;
    Node& n = nodes_[t];
    unlink(main_, t);
    if (n.freq > 0) {
      --n.freq;
      push_front(main_, t);
      continue;
    }
    map_.erase(n.key);
    ++evictions_;
    return t;
  }
}

uint32_t CacheIndex::evict_small() {
  while (small_.size > 0) {
    uint32_t t = small_.tail;
    Node& n = nodes_[t];
    unlink(small_, t);
    if (n.freq > 0) {
      // Seen again while on probation: promote. Main may now be over its share; trim it.
      n.freq = 0;
      n.queue = 1;
      push_front(main_, t);
      if (main_.size > main_cap_) return evict_main();
      continue;
    }
    ghost_add(n.key);
    map_.erase(n.key);
    ++evictions_;
    return t;
  }
  return evict_main();
}

uint32_t CacheIndex::evict_one() {
  if (policy_ == CachePolicy::lru) {
    uint32_t t = small_.tail;
    unlink(small_, t);
    map_.erase(nodes_[t].key);
    ++evictions_;
    return t;
  }
  if (small_.size >= small_cap_ || main_.size == 0) return evict_small();
  return evict_main();
}

uint32_t CacheIndex::admit(uint64_t key) {
  if (capacity_ == 0) return kNone;
  uint32_t slot = next_unused_ < capacity_ ? next_unused_++ : evict_one();
  Node& n = nodes_[slot];
  n.key = key;
  n.freq = 0;
  if (policy_ == CachePolicy::s3fifo && ghost_take(key)) {
    n.queue = 1;
    push_front(main_, slot);
  } else {
    n.queue = 0;
    push_front(small_, slot);
  }
  map_.emplace(key, slot);
  return slot;
}

uint32_t CacheIndex::admit_if_absent(uint64_t key) {
  if (map_.count(key)) return kNone;
  return admit(key);
}

bool CacheIndex::access(uint64_t key) {
  if (find(key) != kNone) return true;
  admit(key);
  return false;
}

// ---------------------------------------------------------------------------------------------
// RowCache

namespace {
uint64_t rows_for(uint64_t capacity_bytes, uint32_t row_bytes) {
  if (row_bytes == 0) fail(Errc::invalid_argument, "RowCache: row size must be positive");
  return capacity_bytes / row_bytes;
}
}  // namespace

RowCache::RowCache(uint64_t capacity_bytes, uint32_t row_bytes, CachePolicy policy,
                   uint64_t max_rows)
    : capacity_bytes_(capacity_bytes),
      row_bytes_(row_bytes),
      index_(std::min(rows_for(capacity_bytes, row_bytes), max_rows), policy),
      capped_(rows_for(capacity_bytes, row_bytes) > max_rows) {
  if (index_.capacity() > 0)
    data_ = std::make_unique_for_overwrite<std::byte[]>(index_.capacity() * row_bytes_);
}

bool RowCache::lookup(uint64_t key, std::byte* out) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t slot = index_.find(key);
  if (slot == CacheIndex::kNone) {
    ++misses_;
    return false;
  }
  ++hits_;
  std::memcpy(out, data_.get() + uint64_t(slot) * row_bytes_, row_bytes_);
  return true;
}

size_t RowCache::lookup_batch(std::span<const uint64_t> keys, std::byte* out,
                              std::span<uint8_t> hit) {
  if (hit.size() < keys.size())
    fail(Errc::invalid_argument, "RowCache::lookup_batch: hit mask shorter than keys");
  size_t n_hit = 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < keys.size(); ++i) {
    uint32_t slot = index_.find(keys[i]);
    if (slot == CacheIndex::kNone) {
      hit[i] = 0;
      continue;
    }
    hit[i] = 1;
    ++n_hit;
    std::memcpy(out + i * row_bytes_, data_.get() + uint64_t(slot) * row_bytes_, row_bytes_);
  }
  hits_ += n_hit;
  misses_ += keys.size() - n_hit;
  return n_hit;
}

void RowCache::insert(uint64_t key, const std::byte* row) {
  uint8_t one = 1;
  insert_batch({&key, 1}, row, {&one, 1});
}

void RowCache::insert_batch(std::span<const uint64_t> keys, const std::byte* rows,
                            std::span<const uint8_t> mask) {
  if (mask.size() < keys.size())
    fail(Errc::invalid_argument, "RowCache::insert_batch: mask shorter than keys");
  if (index_.capacity() == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!mask[i]) continue;
    // A racing thread may have cached it already: keep that copy.
    uint32_t slot = index_.admit_if_absent(keys[i]);
    if (slot == CacheIndex::kNone) continue;
    std::memcpy(data_.get() + uint64_t(slot) * row_bytes_, rows + i * row_bytes_, row_bytes_);
    ++inserts_;
  }
}

CacheStats RowCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.inserts = inserts_;
  s.evictions = index_.evictions() - evictions_base_;
  s.entries = index_.size();
  s.capacity_rows = index_.capacity();
  s.capacity_bytes = capacity_bytes_;
  s.capped = capped_;
  return s;
}

void RowCache::reset_counters() {
  std::lock_guard<std::mutex> lock(mu_);
  hits_ = misses_ = inserts_ = 0;
  evictions_base_ = index_.evictions();
}

}  // namespace engram
