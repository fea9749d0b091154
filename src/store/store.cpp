// RowStore's shared parts (table lookup, id checks, dequantizing gathers) and CachedStore.
#include <algorithm>
#include <cstring>
#include <vector>

#include "engram/error.h"
#include "engram/row_gather.h"
#include "engram/store.h"
#include "store/io_engine.h"

namespace engram {

RowStore::RowStore(std::vector<TableDesc> tables) : tables_(std::move(tables)) {}

const TableDesc& RowStore::table(size_t t) const {
  if (t >= tables_.size())
    fail(Errc::out_of_range, "table index ", t, " out of range: the store has ", tables_.size(),
         " tables");
  return tables_[t];
}

size_t RowStore::table_index(const std::string& name) const {
  for (size_t i = 0; i < tables_.size(); ++i)
    if (tables_[i].name == name) return i;
  std::string names;
  for (auto& d : tables_) names += (names.empty() ? "" : ", ") + d.name;
  fail(Errc::out_of_range, "no table named '", name, "' in the store (has: ", names, ")");
}

void RowStore::check_ids(size_t t, std::span<const int64_t> ids) const {
  const TableDesc& d = table(t);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= d.rows)
      fail(Errc::out_of_range, "table ", d.name, ": row id ", ids[i], " at position ", i,
           " is outside [0, ", d.rows, ")");
  }
}

void dequantize_packed(const RowFormat& fmt, const std::byte* packed, size_t n, float* out) {
  const auto* p = reinterpret_cast<const uint8_t*>(packed);
  const int64_t rb = fmt.row_bytes();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* row = p + i * rb;
    dequantize_rows(fmt, row, row + fmt.data_bytes, 1, out + i * fmt.width);
  }
}

void dequantize_packed_bf16(const RowFormat& fmt, const std::byte* packed, size_t n,
                            uint16_t* out) {
  const auto* p = reinterpret_cast<const uint8_t*>(packed);
  const int64_t rb = fmt.row_bytes();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* row = p + i * rb;
    dequantize_rows_bf16(fmt, row, row + fmt.data_bytes, 1, out + i * fmt.width);
  }
}

void RowStore::gather_f32(size_t t, std::span<const int64_t> ids, float* out) {
  const TableDesc& d = table(t);
  std::vector<std::byte> packed(ids.size() * d.row_bytes());
  gather_packed(t, ids, packed.data());
  dequantize_packed(d.format, packed.data(), ids.size(), out);
}

void RowStore::gather_bf16(size_t t, std::span<const int64_t> ids, uint16_t* out) {
  const TableDesc& d = table(t);
  std::vector<std::byte> packed(ids.size() * d.row_bytes());
  gather_packed(t, ids, packed.data());
  dequantize_packed_bf16(d.format, packed.data(), ids.size(), out);
}

// ---------------------------------------------------------------------------------------------
// CachedStore

namespace {

std::vector<TableDesc> tables_of(const RowStore& s) {
  std::vector<TableDesc> v;
  for (size_t t = 0; t < s.num_tables(); ++t) v.push_back(s.table(t));
  return v;
}

uint32_t max_row_bytes(const RowStore& s) {
  uint32_t m = 1;
  for (size_t t = 0; t < s.num_tables(); ++t) m = std::max(m, s.table(t).row_bytes());
  return m;
}

const RowStore& non_null(const std::shared_ptr<RowStore>& p) {
  if (!p) fail(Errc::invalid_argument, "CachedStore: no backing store");
  return *p;
}

constexpr int kKeyRowBits = 48;  // cache key = table << 48 | row; V4.1 tables have < 2^30 rows

}  // namespace

CachedStore::CachedStore(std::shared_ptr<RowStore> backing, uint64_t capacity_bytes,
                         CachePolicy policy)
    : RowStore(tables_of(non_null(backing))),
      backing_(std::move(backing)),
      cache_(capacity_bytes, max_row_bytes(*backing_), policy) {
  for (size_t t = 0; t < num_tables(); ++t)
    if (uint64_t(table(t).rows) >= (uint64_t(1) << kKeyRowBits))
      fail(Errc::unsupported, "CachedStore: table ", table(t).name, " has ", table(t).rows,
           " rows, more than the cache key holds");
}

std::string CachedStore::describe() const {
  CacheStats s = cache_.stats();
  return str_cat("cache(", cache_policy_name(cache_.policy()), ", ", s.capacity_bytes, " bytes, ",
                 s.capacity_rows, " rows) -> ", backing_->describe());
}

void CachedStore::gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) {
  check_ids(t, ids);
  const uint32_t rb = table(t).row_bytes();
  const uint32_t slot = cache_.row_bytes();
  const size_t n = ids.size();
  std::vector<uint64_t> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = (uint64_t(t) << kKeyRowBits) | uint64_t(ids[i]);
  // Hits land in a slot-strided scratch (cache rows may be wider than this table's).
  std::vector<std::byte> hit_rows(n * slot);
  std::vector<uint8_t> hit(n);
  size_t n_hit = cache_.lookup_batch(keys, hit_rows.data(), hit);
  for (size_t i = 0; i < n; ++i)
    if (hit[i]) std::memcpy(out + i * rb, hit_rows.data() + i * slot, rb);
  if (n_hit == n) return;

  // Fetch each missing row once, even when it repeats in the batch.
  std::vector<int64_t> miss_ids;
  std::vector<size_t> miss_of(n, SIZE_MAX);  // position -> index into miss_ids
  {
    std::vector<std::pair<int64_t, size_t>> order;
    for (size_t i = 0; i < n; ++i)
      if (!hit[i]) order.push_back({ids[i], i});
    std::sort(order.begin(), order.end());
    for (size_t k = 0; k < order.size(); ++k) {
      if (k == 0 || order[k].first != order[k - 1].first) miss_ids.push_back(order[k].first);
      miss_of[order[k].second] = miss_ids.size() - 1;
    }
  }
  std::vector<std::byte> fetched(miss_ids.size() * slot);
  if (slot == rb) {
    backing_->gather_packed(t, miss_ids, fetched.data());
  } else {
    std::vector<std::byte> tight(miss_ids.size() * rb);
    backing_->gather_packed(t, miss_ids, tight.data());
    for (size_t k = 0; k < miss_ids.size(); ++k)
      std::memcpy(fetched.data() + k * slot, tight.data() + k * rb, rb);
  }
  for (size_t i = 0; i < n; ++i)
    if (!hit[i]) std::memcpy(out + i * rb, fetched.data() + miss_of[i] * slot, rb);
  std::vector<uint64_t> miss_keys(miss_ids.size());
  for (size_t k = 0; k < miss_ids.size(); ++k)
    miss_keys[k] = (uint64_t(t) << kKeyRowBits) | uint64_t(miss_ids[k]);
  std::vector<uint8_t> all(miss_ids.size(), 1);
  cache_.insert_batch(miss_keys, fetched.data(), all);
}

}  // namespace engram

namespace engram {

// First version: the tier wiring the C API had; the shared file's identity check comes next.
OpenedStore open_store(std::vector<TableSource> sources, const StoreOptions& options) {
  if (!options.shared_path.empty() && options.tier != StoreTier::dram)
    fail(Errc::invalid_argument, "a shared-memory path needs the dram tier");
  FileStoreOptions fo = options.file;
  fo.resident_scales = fo.resident_scales && options.tier == StoreTier::file;
  OpenedStore o;
  o.file = FileStore::open(std::move(sources), fo);
  std::shared_ptr<RowStore> tier = o.file;
  if (options.tier == StoreTier::dram) {
    if (!options.shared_path.empty()) {
      try {
        tier = DramStore::attach_shared(options.shared_path, options.verify_shared);
      } catch (const Error& e) {
        if (e.code() != Errc::io) throw;  // present but bad: say so, never overwrite it
        tier = DramStore::create_shared(options.shared_path, *o.file);
      }
      for (size_t t = 0; t < o.file->num_tables(); ++t) {
        const TableDesc &a = o.file->table(t), &b = tier->table(t);
        if (a.name != b.name || a.rows != b.rows || a.row_bytes() != b.row_bytes())
          fail(Errc::mismatch, options.shared_path, ": table ", t, " is ", b.name, " [", b.rows,
               " rows], the checkpoint's is ", a.name, " [", a.rows, " rows]");
      }
    } else {
      tier = DramStore::load(*o.file, DramOptions{options.huge_pages});
    }
  }
  if (options.cache_bytes > 0) {
    o.cache = std::make_shared<CachedStore>(tier, options.cache_bytes, options.cache_policy);
    o.store = o.cache;
  } else {
    o.store = tier;
  }
  return o;
}

}  // namespace engram
