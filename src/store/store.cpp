// RowStore's shared parts (table lookup, id checks, dequantizing gathers), CachedStore, the
// checkpoint fingerprint of shared tables, and open_store: the one place tiers are assembled.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "engram/error.h"
#include "engram/row_gather.h"
#include "engram/store.h"
#include "store/checksum.h"
#include "store/io_engine.h"
#include "util/hex.h"

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

uint64_t total_rows(const RowStore& s) {
  uint64_t n = 0;
  for (size_t t = 0; t < s.num_tables(); ++t) n += uint64_t(s.table(t).rows);
  return n;
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
      cache_(capacity_bytes, max_row_bytes(*backing_), policy, total_rows(*backing_)) {
  for (size_t t = 0; t < num_tables(); ++t)
    if (uint64_t(table(t).rows) >= (uint64_t(1) << kKeyRowBits))
      fail(Errc::unsupported, "CachedStore: table ", table(t).name, " has ", table(t).rows,
           " rows, more than the cache key holds");
}

std::string CachedStore::describe() const {
  CacheStats s = cache_.stats();
  return str_cat("cache(", cache_policy_name(cache_.policy()), ", ", s.capacity_bytes, " bytes, ",
                 s.capacity_rows, s.capped ? " rows: every row of the tables" : " rows", ") -> ",
                 backing_->describe());
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

namespace {

// Digests `v` into h as its 8 bytes (fingerprints are compared on one host).
uint64_t mix(uint64_t h, uint64_t v) {
  std::byte b[8];
  std::memcpy(b, &v, 8);
  return checksum64(b, 8, h);
}

uint64_t mix(uint64_t h, const std::string& s) {
  return checksum64(reinterpret_cast<const std::byte*>(s.data()), s.size(), mix(h, s.size()));
}

// Reads the files a fingerprint covers, each opened once. Errors are Errc::io naming the file.
class FileDigester {
 public:
  FileDigester() = default;
  FileDigester(const FileDigester&) = delete;
  FileDigester& operator=(const FileDigester&) = delete;
  ~FileDigester() {
    for (auto& [path, fd] : fds_) ::close(fd);
  }

  // A shard's size and safetensors header (8-byte little-endian length, then that much JSON).
  // A file that does not start with a plausible header counts by its size alone.
  uint64_t shard(const std::string& path, uint64_t h) {
    const int fd = open(path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(Errc::io, path, ": fstat failed: ", std::strerror(errno));
    const uint64_t size = uint64_t(st.st_size);
    h = mix(h, size);
    uint64_t n = 0;
    if (size < 8 || ::pread(fd, &n, 8, 0) != 8 || n == 0 || n > size - 8 || n > (256u << 20))
      return mix(h, uint64_t(0));
    return span(path, 8, n, mix(h, n));
  }

  // n bytes at `offset` of `path`.
  uint64_t span(const std::string& path, uint64_t offset, uint64_t n, uint64_t h) {
    const int fd = open(path);
    buf_.resize(n);
    for (uint64_t got = 0; got < n;) {
      const ssize_t r = ::pread(fd, buf_.data() + got, n - got, off_t(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        fail(Errc::io, path, ": cannot read bytes [", offset, ", +", n, ") to fingerprint");
      got += uint64_t(r);
    }
    return checksum64(buf_.data(), n, h);
  }

 private:
  int open(const std::string& path) {
    auto it = fds_.find(path);
    if (it != fds_.end()) return it->second;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(Errc::io, path, ": cannot open to fingerprint: ", std::strerror(errno));
    fds_.emplace(path, fd);
    return fd;
  }
  std::map<std::string, int> fds_;
  std::vector<std::byte> buf_;
};

// Rows sampled for the fingerprint: evenly spaced, first and last included.
constexpr int64_t kSampleRows = 16;

}  // namespace

std::string StoreFingerprint::str() const {
  return str_cat("tables ", hex64(table_digest), ", shards ", hex64(shard_digest), ", rows ",
                 hex64(row_digest), " (from ", origin.empty() ? "?" : origin, ")");
}

StoreFingerprint store_fingerprint(const std::vector<TableSource>& sources) {
  StoreFingerprint f;
  std::vector<std::string> shards;  // in order of first use
  auto shard_index = [&](const std::string& path) -> uint64_t {
    if (path.empty()) return UINT64_MAX;
    auto it = std::find(shards.begin(), shards.end(), path);
    if (it != shards.end()) return uint64_t(it - shards.begin());
    shards.push_back(path);
    return shards.size() - 1;
  };
  uint64_t h = mix(kChecksumSeed, sources.size());
  for (const TableSource& s : sources) {
    const TableDesc& d = s.desc;
    h = mix(h, d.name);
    h = mix(h, uint64_t(d.format.dtype));
    h = mix(h, uint64_t(d.format.width));
    h = mix(h, uint64_t(d.rows));
    h = mix(h, shard_index(s.data_path));
    h = mix(h, s.data_offset);
    h = mix(h, uint64_t(d.rows) * uint64_t(d.format.data_bytes));
    h = mix(h, shard_index(s.scale_path));
    h = mix(h, s.scale_offset);
    h = mix(h, uint64_t(d.rows) * uint64_t(d.format.scale_bytes));
    f.tables.push_back(d);
  }
  f.table_digest = h;
  uint64_t sh = mix(kChecksumSeed, shards.size());
  FileDigester files;
  for (const std::string& p : shards) sh = files.shard(p, sh);
  f.shard_digest = sh;
  uint64_t rh = kChecksumSeed;
  for (const TableSource& s : sources) {
    const RowFormat& fm = s.desc.format;
    const int64_t n = std::min(kSampleRows, s.desc.rows);
    for (int64_t k = 0; k < n; ++k) {
      const uint64_t r = n == 1 ? 0 : uint64_t(k * (s.desc.rows - 1) / (n - 1));
      rh = files.span(s.data_path, s.data_offset + r * fm.data_bytes, fm.data_bytes, rh);
      if (fm.scale_bytes > 0)
        rh = files.span(s.scale_path, s.scale_offset + r * fm.scale_bytes, fm.scale_bytes, rh);
    }
  }
  f.row_digest = rh;
  if (!shards.empty()) f.origin = std::filesystem::path(shards[0]).parent_path().string();
  return f;
}

OpenedStore open_store(std::vector<TableSource> sources, const StoreOptions& options) {
  if (!options.shared_path.empty() && options.tier != StoreTier::dram)
    fail(Errc::invalid_argument, "a shared-memory path needs the dram tier");
  FileStoreOptions fo = options.file;
  // Scales in memory only help a tier that reads rows from files.
  fo.resident_scales = fo.resident_scales && options.tier == StoreTier::file;
  OpenedStore o;
  o.file = FileStore::open(std::move(sources), fo);
  std::shared_ptr<RowStore> tier = o.file;
  if (options.tier == StoreTier::dram && !options.shared_path.empty()) {
    std::vector<TableSource> opened;
    for (size_t t = 0; t < o.file->num_tables(); ++t) opened.push_back(o.file->source(t));
    const StoreFingerprint fp = store_fingerprint(opened);
    const std::string& path = options.shared_path;
    SharedOptions so;
    so.mode = options.shared_mode;
    so.verify_data = options.verify_shared;
    o.dram = DramStore::create_shared(path, *o.file, fp, so);  // attaches when present
    tier = o.dram;
  } else if (options.tier == StoreTier::dram) {
    o.dram = DramStore::load(*o.file, DramOptions{options.huge_pages});
    tier = o.dram;
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
