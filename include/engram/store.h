// engram/store.h: tiered row stores for Engram tables, behind one interface.
//
// A RowStore serves rows of one or more tables by id. Tiers compose:
//   FileStore    rows read in place from the files they live in (safetensors shards): one
//                (offset, length) read per row part, batched through io_uring (O_DIRECT where the
//                filesystem allows it) or pread. Nothing is converted and no file is mapped.
//   DramStore    every row in memory: anonymous pages (transparent huge pages via madvise where
//                available), or a shared-memory file (/dev/shm) that one process creates and
//                fills and others attach read-only. A shared file becomes visible under its name
//                only when complete (created unlinked, linked in at the end), and carries a
//                header with magic, sizes, table layout, checksums, the fingerprint of the
//                checkpoint it holds and a "complete" marker, so a reader never trusts a
//                half-made or foreign file, nor one filled from another checkpoint. Of creators
//                racing for one name, one publishes and the others attach its file; a published
//                file is never written again (a rebuild is a new file renamed over the name);
//                files are owner-only (0600) unless a mode is given.
//   CachedStore  a hot-row cache (engram/cache.h) in front of any store.
// Rows come out packed (a table's own bytes: data then scale for f8) or dequantized to fp32 /
// bf16 through engram/row_format.h.
//
// Every call that takes ids checks them first: an id outside [0, rows) throws
// Errc::out_of_range naming the table, the position and the value, before any read starts. An
// I/O failure throws Errc::io naming the file and byte offset. All gathers are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engram/cache.h"
#include "engram/row_format.h"

namespace engram {

struct ReadRequest;  // src/store/io_engine.h

// Read counters of the file tier (FileStore::io_stats), summed over its I/O engines.
struct IoStats {
  uint64_t requests = 0;      // ReadRequests completed
  uint64_t reads = 0;         // read attempts that reached the kernel
  uint64_t bytes = 0;         // bytes delivered to callers
  uint64_t direct_reads = 0;  // attempts through O_DIRECT
  uint64_t short_reads = 0;   // attempts that returned fewer bytes than asked and were continued
  uint64_t retries = 0;       // attempts repeated after EINTR / EAGAIN
};

// What a store knows about one of its tables.
struct TableDesc {
  std::string name;  // e.g. "layers.1.engram.embed"
  RowFormat format;  // dtype, width, data_bytes, scale_bytes
  int64_t rows = 0;
  uint32_t row_bytes() const { return static_cast<uint32_t>(format.row_bytes()); }
};

// Where one table's rows live in files: data [rows, format.data_bytes] starting at byte
// data_offset of data_path, and for f8 scale [rows, format.scale_bytes] at scale_offset of
// scale_path (which may be another shard). Offsets are absolute file offsets.
struct TableSource {
  TableDesc desc;
  std::string data_path;
  uint64_t data_offset = 0;
  std::string scale_path;  // empty unless f8
  uint64_t scale_offset = 0;
};

class RowStore {
 public:
  virtual ~RowStore() = default;
  virtual std::string describe() const = 0;  // e.g. "file(io_uring, O_DIRECT)"

  size_t num_tables() const { return tables_.size(); }
  const TableDesc& table(size_t t) const;  // Errc::out_of_range for a bad index
  // Index of the table named `name`; Errc::out_of_range listing the names if absent.
  size_t table_index(const std::string& name) const;

  // Packed rows: out [ids.size(), row_bytes]; row i holds the data bytes then the scale bytes of
  // row ids[i] of table `t`.
  virtual void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) = 0;
  // Dequantized rows: out [ids.size(), width].
  virtual void gather_f32(size_t t, std::span<const int64_t> ids, float* out);
  virtual void gather_bf16(size_t t, std::span<const int64_t> ids, uint16_t* out);

 protected:
  explicit RowStore(std::vector<TableDesc> tables);
  // Throws Errc::out_of_range for a bad table index or row id (names table, position, value).
  void check_ids(size_t t, std::span<const int64_t> ids) const;

 private:
  std::vector<TableDesc> tables_;
};

// Dequantizes packed rows (as gather_packed writes them): packed [n, row_bytes] -> out [n, width].
void dequantize_packed(const RowFormat& fmt, const std::byte* packed, size_t n, float* out);
void dequantize_packed_bf16(const RowFormat& fmt, const std::byte* packed, size_t n, uint16_t* out);

// ---- File tier --------------------------------------------------------------------------------

struct FileStoreOptions {
  bool use_uring = true;      // io_uring when available, else pread
  bool direct = true;         // O_DIRECT where the filesystem allows it
  unsigned queue_depth = 64;  // io_uring reads in flight per gather
  // f8 tables: read every scale row into memory at open (rows x scale_bytes: 8 bytes a V4.1 row,
  // about 3% of the table), so a gather does one read per row (the data) instead of two.
  bool resident_scales = false;
};

class FileStore final : public RowStore {
 public:
  // Opens every file named by the sources and checks that each table's byte span lies inside
  // its file (Errc::mismatch naming table, file, span and file size), that formats are sane and
  // that f8 tables have a scale source.
  static std::unique_ptr<FileStore> open(std::vector<TableSource> sources,
                                         const FileStoreOptions& options = {});
  ~FileStore() override;

  std::string describe() const override;
  void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) override;

  IoStats io_stats() const;  // summed over the engines
  const TableSource& source(size_t t) const { return sources_[t]; }

 private:
  // Tests inject I/O faults through set_fault_hook (src/store/io_engine.h).
  friend void set_fault_hook(FileStore& store,
                             std::function<int64_t(const ReadRequest&, uint64_t, uint32_t)> hook);
  struct Impl;
  FileStore(std::vector<TableSource> sources, const FileStoreOptions& options);
  std::vector<TableSource> sources_;
  std::unique_ptr<Impl> impl_;
};

// ---- Checkpoint identity ----------------------------------------------------------------------

// What a shared-memory table file records about the checkpoint it was filled from, so that a
// process never serves another checkpoint's rows. Three digests: one over every table's name,
// dtype, width, rows and byte spans (data and scale offsets, and which shard each lies in), one
// over the shard files (sizes, in order of first use, and their safetensors JSON headers; a file
// that is not safetensors counts by its size), and one over 16 evenly spaced rows of each table,
// because two trainings of one architecture have identical headers. Paths are left out: a copied
// checkpoint is the same checkpoint. `origin` (the first shard's folder) and `tables` only make
// messages readable.
struct StoreFingerprint {
  uint64_t table_digest = 0;
  uint64_t shard_digest = 0;
  uint64_t row_digest = 0;
  std::string origin;
  std::vector<TableDesc> tables;

  bool same_checkpoint(const StoreFingerprint& o) const {
    return table_digest == o.table_digest && shard_digest == o.shard_digest &&
           row_digest == o.row_digest;
  }
  // e.g. "tables 3f2a...9c, shards 0b1d...77, rows 5e00...12 (from /models/v41)"
  std::string str() const;
};

// Reads each shard's size and safetensors header and the sampled rows (Errc::io naming a file
// that cannot be read).
StoreFingerprint store_fingerprint(const std::vector<TableSource>& sources);

// ---- DRAM tier --------------------------------------------------------------------------------

struct DramOptions {
  bool huge_pages = true;  // madvise(MADV_HUGEPAGE) on anonymous memory
};

// The permission bits a shared table file gets unless told otherwise: its owner's only.
inline constexpr uint32_t kSharedFileMode = 0600;

// How DramStore::create_shared publishes and attaches.
struct SharedOptions {
  // false: a file already under the name (or one another creator links first) is attached, not
  // replaced. true: a new file is renamed over it; processes attached to the old one keep it.
  bool replace = false;
  // Permission bits of a created file (exactly these: the umask does not apply). Must let the
  // owner read it and hold nothing above 0777 (Errc::invalid_argument).
  uint32_t mode = kSharedFileMode;
  // Attaching another creator's file: also checksum every row byte (one pass over the table).
  bool verify_data = false;
};

class DramStore final : public RowStore {
 public:
  // Anonymous memory filled from `from` (any store: typically a FileStore, read in large
  // sequential chunks when it is one).
  static std::unique_ptr<DramStore> load(RowStore& from, const DramOptions& options = {});

  // The shared-memory file `path` (e.g. /dev/shm/engram-v41) holding `from`'s rows and
  // `fingerprint` (that of the sources `from` serves; Errc::invalid_argument when its tables are
  // not `from`'s). Without options.replace, a file already there is attached as attach_shared
  // does (its fingerprint checked; a bad one reported, never replaced). Otherwise the rows are
  // written to a new unlinked file that appears under `path` only once complete; a creator that
  // finds the name taken when linking (another process won the race) attaches the winner's file
  // and drops its own. Nothing ever writes to a published file. created() tells which happened.
  static std::unique_ptr<DramStore> create_shared(const std::string& path, RowStore& from,
                                                  const StoreFingerprint& fingerprint,
                                                  const SharedOptions& options = {});
  // Attaches read-only to a complete shared file holding the checkpoint `expected` names.
  // Checks magic, version, sizes, header checksum, the complete marker, the fingerprint and,
  // when `verify_data`, the checksum of every row byte (one pass). A missing file is Errc::io;
  // a half-made, truncated or foreign one Errc::parse naming it; another checkpoint's tables
  // Errc::mismatch naming the path, both fingerprints and the first table that differs.
  static std::unique_ptr<DramStore> attach_shared(const std::string& path,
                                                  const StoreFingerprint& expected,
                                                  bool verify_data = false);

  ~DramStore() override;
  std::string describe() const override;
  void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) override;
  void gather_f32(size_t t, std::span<const int64_t> ids, float* out) override;
  void gather_bf16(size_t t, std::span<const int64_t> ids, uint16_t* out) override;

  // Packed rows of table t: [rows, row_bytes], valid while the store lives.
  const std::byte* table_bytes(size_t t) const;
  bool huge_pages() const { return huge_pages_; }
  bool shared() const { return shared_; }
  // A shared store whose file this process wrote and published (false: attached another's).
  bool created() const { return created_; }

 private:
  struct Region;
  DramStore(std::vector<TableDesc> tables, std::unique_ptr<Region> region,
            std::vector<uint64_t> offsets, bool huge_pages, bool shared);
  // attach_shared on an open descriptor of the file (`path` for messages).
  static std::unique_ptr<DramStore> attach_fd(int fd, const std::string& path,
                                              const StoreFingerprint& expected, bool verify_data);
  std::unique_ptr<Region> region_;
  std::vector<uint64_t> offsets_;  // byte offset of each table in the region
  bool huge_pages_ = false;
  bool shared_ = false;
  bool created_ = false;
};

// ---- Cache in front of a tier -----------------------------------------------------------------

class CachedStore final : public RowStore {
 public:
  // capacity_bytes is shared by all tables (one cache; rows are charged at the largest
  // row size). 0 makes the cache a pass-through that still counts misses.
  CachedStore(std::shared_ptr<RowStore> backing, uint64_t capacity_bytes,
              CachePolicy policy = CachePolicy::s3fifo);

  std::string describe() const override;
  void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) override;

  CacheStats cache_stats() const { return cache_.stats(); }
  void reset_cache_counters() { cache_.reset_counters(); }
  RowStore& backing() { return *backing_; }

 private:
  std::shared_ptr<RowStore> backing_;
  RowCache cache_;
};

// ---- The one store builder ---------------------------------------------------------------------
// Every front end (C API, Python, CLI, the generator) opens its tiers here and nowhere else.

enum class StoreTier {
  file,  // rows read in place from the source files (FileStore)
  dram,  // every row in anonymous memory (DramStore::load); with shared_path, a shared file
};

struct StoreOptions {
  StoreTier tier = StoreTier::file;
  // dram tier: a shared-memory file (e.g. /dev/shm/engram-v41) to attach, or to create and fill
  // from the sources when it does not exist. Every attach checks the file's fingerprint against
  // the sources' (Errc::mismatch naming both); empty: private anonymous memory.
  std::string shared_path;
  bool huge_pages = true;  // dram tier without shared_path: madvise(MADV_HUGEPAGE)
  // Attaching a shared file another process made: also checksum every row byte (one pass over
  // the table; see docs/serving.md for its cost). A file this process creates is not re-read.
  bool verify_shared = false;
  uint32_t shared_mode = kSharedFileMode;  // permission bits of a shared file this creates
  uint64_t cache_bytes = 0;  // > 0: a hot-row CachedStore of this size in front of the tier
  CachePolicy cache_policy = CachePolicy::s3fifo;
  // I/O engine, O_DIRECT, queue depth; resident scales only for the file tier (the dram tier
  // reads every row once and ignores them).
  FileStoreOptions file;
};

// What open_store built. `store` is what to gather from (the cache when there is one).
struct OpenedStore {
  std::shared_ptr<RowStore> store;
  std::shared_ptr<FileStore> file;     // the file tier under everything (I/O counters)
  std::shared_ptr<DramStore> dram;     // the dram tier (anonymous or shared); null for file
  std::shared_ptr<CachedStore> cache;  // null without a cache
};

// Opens `sources` as the tiers `options` name. With a shared_path, attaches the file when it
// exists (checking its fingerprint against store_fingerprint(sources)) and creates it otherwise
// (DramStore::create_shared: of several processes doing so at once, one publishes its file and
// the others attach it); a file that is present but bad is reported, never replaced.
// Errc::invalid_argument for inconsistent options, and the errors of FileStore::open,
// DramStore::create_shared / attach_shared otherwise.
OpenedStore open_store(std::vector<TableSource> sources, const StoreOptions& options);

}  // namespace engram
