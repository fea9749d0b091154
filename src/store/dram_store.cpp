// DramStore: every row of every table in memory, packed [rows, row_bytes] per table.
// Anonymous memory (with MADV_HUGEPAGE) or a shared-memory file. Shared file layout:
//   [0, 4096)         ShmHeader (magic, version, sizes, checksums, complete marker, tables,
//                     the fingerprint of the checkpoint the rows came from)
//   [offset_t, ...)   table t's packed rows, each table starting on a 4096-byte boundary
// The creator fills an unlinked file (O_TMPFILE) and links it under its name only when the
// header says complete, so a crash leaves nothing a reader could open under that name. A
// published file is never written, truncated or resized again: a replacement is another file
// renamed over the name, and readers of the old one keep their mapping of its inode. Of two
// creators racing for a name, the one whose link lands first wins; the other attaches that file.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "engram/error.h"
#include "engram/row_gather.h"
#include "engram/store.h"
#include "store/checksum.h"
#include "store/io_engine.h"
#include "util/read_file.h"

namespace engram {

namespace {

// A shared table file is a regular file: anything else at its path (a FIFO, a device) is refused
// before it is read or mapped. The open used O_NONBLOCK so that a FIFO could not block it.
void check_regular(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(Errc::io, path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    fail(Errc::io, path, ": is ", file_type_name(st.st_mode),
         ", not a regular file (a shared table file must be one)");
}

constexpr uint64_t kPage = 4096;
constexpr char kMagic[8] = {'E', 'N', 'G', 'R', 'S', 'H', 'M', '1'};
constexpr uint32_t kVersion = 2;  // 2: the checkpoint fingerprint
constexpr uint32_t kCompleteMarker = 0xC0FFEE01u;
constexpr size_t kMaxTables = 32;

struct ShmTable {
  char name[80];
  uint32_t dtype;
  uint32_t reserved;
  int64_t width;
  int64_t rows;
  uint64_t offset;  // from the start of the file
  uint64_t bytes;   // rows * row_bytes
};
struct ShmHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;
  uint64_t total_bytes;  // the file's size
  uint32_t num_tables;
  uint32_t complete;         // kCompleteMarker once every row is written
  uint64_t data_checksum;    // checksum64 over every table's bytes, in table order
  uint64_t header_checksum;  // checksum64 over this header with this field zero
  ShmTable tables[kMaxTables];
  uint64_t table_digest;  // StoreFingerprint of the checkpoint the rows came from
  uint64_t shard_digest;
  uint64_t row_digest;
  char origin[128];  // its folder, cut to fit: for messages only
};
static_assert(sizeof(ShmHeader) <= kPage);

uint64_t header_checksum(const ShmHeader& h) {
  ShmHeader c = h;
  c.header_checksum = 0;
  return checksum64(reinterpret_cast<const std::byte*>(&c), sizeof(c));
}

uint64_t round_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

std::vector<TableDesc> tables_of(const RowStore& s) {
  std::vector<TableDesc> v;
  for (size_t t = 0; t < s.num_tables(); ++t) v.push_back(s.table(t));
  return v;
}

// Table offsets inside a region that starts with `header` bytes; returns the total size.
uint64_t layout(const std::vector<TableDesc>& tables, uint64_t header,
                std::vector<uint64_t>& offsets) {
  uint64_t pos = header;
  for (auto& d : tables) {
    pos = round_up(pos, kPage);
    offsets.push_back(pos);
    pos += uint64_t(d.rows) * d.row_bytes();
  }
  return std::max<uint64_t>(round_up(pos, kPage), kPage);
}

// Copies every row of `from` into the packed tables at base + offsets[t], in large chunks.
// A FileStore is read in long sequential pieces (data and scale spans) and interleaved here;
// any other store through gather_packed over consecutive ids.
void fill(RowStore& from, std::byte* base, const std::vector<uint64_t>& offsets) {
  auto* fs = dynamic_cast<FileStore*>(&from);
  std::vector<int64_t> ids;
  std::unique_ptr<IoEngine> engine;
  std::vector<std::unique_ptr<ReadFile>> files;
  for (size_t t = 0; t < from.num_tables(); ++t) {
    const TableDesc& d = from.table(t);
    const uint32_t rb = d.row_bytes();
    const int64_t chunk_rows = std::max<int64_t>(1, (8 << 20) / std::max<uint32_t>(rb, 1));
    std::byte* dst = base + offsets[t];
    if (fs) {
      const TableSource& s = fs->source(t);
      const RowFormat& f = d.format;
      if (!engine) engine = make_pread_engine();
      ReadFile df(s.data_path, false);
      std::unique_ptr<ReadFile> sf;
      if (f.scale_bytes > 0) sf = std::make_unique<ReadFile>(s.scale_path, false);
      std::vector<std::byte> data(chunk_rows * f.data_bytes), scale(chunk_rows * f.scale_bytes);
      for (int64_t r0 = 0; r0 < d.rows; r0 += chunk_rows) {
        const int64_t n = std::min(chunk_rows, d.rows - r0);
        std::vector<ReadRequest> reqs{{&df, s.data_offset + uint64_t(r0) * f.data_bytes,
                                       uint32_t(n * f.data_bytes), data.data()}};
        if (sf)
          reqs.push_back({sf.get(), s.scale_offset + uint64_t(r0) * f.scale_bytes,
                          uint32_t(n * f.scale_bytes), scale.data()});
        engine->read(reqs);
        if (!sf && rb == f.data_bytes) {
          std::memcpy(dst + uint64_t(r0) * rb, data.data(), n * rb);
          continue;
        }
        for (int64_t i = 0; i < n; ++i) {
          std::byte* row = dst + uint64_t(r0 + i) * rb;
          std::memcpy(row, data.data() + i * f.data_bytes, f.data_bytes);
          if (sf) std::memcpy(row + f.data_bytes, scale.data() + i * f.scale_bytes, f.scale_bytes);
        }
      }
    } else {
      for (int64_t r0 = 0; r0 < d.rows; r0 += chunk_rows) {
        const int64_t n = std::min(chunk_rows, d.rows - r0);
        ids.resize(n);
        for (int64_t i = 0; i < n; ++i) ids[i] = r0 + i;
        from.gather_packed(t, ids, dst + uint64_t(r0) * rb);
      }
    }
  }
}

std::string errno_text() {
  return std::strerror(errno);
}

// "0640": permission bits as people write them.
std::string octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0%o", mode);
  return buf;
}

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

bool same_table(const TableDesc& a, const TableDesc& b) {
  return a.name == b.name && a.rows == b.rows && a.format.dtype == b.format.dtype &&
         a.format.width == b.format.width;
}

std::string table_text(const TableDesc& d) {
  return str_cat(d.name, " [", d.rows, " x ", d.format.width, " ", row_dtype_name(d.format.dtype),
                 "]");
}

// The first difference between the tables a file holds and those expected, in words.
std::string first_difference(const std::vector<TableDesc>& file,
                             const std::vector<TableDesc>& expected) {
  for (size_t t = 0; t < std::min(file.size(), expected.size()); ++t)
    if (!same_table(file[t], expected[t]))
      return str_cat("table ", t, " is ", table_text(file[t]), " in the file, ",
                     table_text(expected[t]), " in the checkpoint");
  if (file.size() != expected.size())
    return str_cat("the file holds ", file.size(), " tables, the checkpoint ", expected.size());
  return "the tables have the same names and shapes; their byte spans, shard headers or rows "
         "differ";
}

// first_difference() for two fingerprints: which part differs when the tables look alike.
std::string first_difference(const StoreFingerprint& file, const StoreFingerprint& expected) {
  std::string d = first_difference(file.tables, expected.tables);
  if (d.rfind("the tables have", 0) != 0) return d;
  if (file.table_digest != expected.table_digest)
    return "the tables have the same names and shapes but lie at other byte spans";
  if (file.shard_digest != expected.shard_digest)
    return "the tables are alike but the shard files' sizes or headers differ";
  return "the tables and shards are alike but the sampled rows differ (other weights)";
}

}  // namespace

// An mmap'ed region, unmapped on destruction.
struct DramStore::Region {
  void* base = MAP_FAILED;
  size_t len = 0;
  ~Region() {
    if (base != MAP_FAILED) ::munmap(base, len);
  }
  std::byte* bytes() const { return static_cast<std::byte*>(base); }
};

DramStore::DramStore(std::vector<TableDesc> tables, std::unique_ptr<Region> region,
                     std::vector<uint64_t> offsets, bool huge_pages, bool shared)
    : RowStore(std::move(tables)),
      region_(std::move(region)),
      offsets_(std::move(offsets)),
      huge_pages_(huge_pages),
      shared_(shared) {}

DramStore::~DramStore() = default;

std::unique_ptr<DramStore> DramStore::load(RowStore& from, const DramOptions& options) {
  std::vector<TableDesc> tables = tables_of(from);
  std::vector<uint64_t> offsets;
  const uint64_t total = layout(tables, 0, offsets);
  auto region = std::make_unique<Region>();
  region->len = total;
  region->base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region->base == MAP_FAILED)
    fail(Errc::io, "DramStore: cannot map ", total, " bytes of anonymous memory: ", errno_text());
  bool huge = false;
#ifdef MADV_HUGEPAGE
  if (options.huge_pages) huge = ::madvise(region->base, total, MADV_HUGEPAGE) == 0;
#endif
  if (!options.huge_pages) {
#ifdef MADV_NOHUGEPAGE
    ::madvise(region->base, total, MADV_NOHUGEPAGE);  // for a fair with/without comparison
#endif
  }
  fill(from, region->bytes(), offsets);
  ::mprotect(region->base, total, PROT_READ);  // nothing writes rows after loading
  return std::unique_ptr<DramStore>(
      new DramStore(std::move(tables), std::move(region), std::move(offsets), huge, false));
}

std::unique_ptr<DramStore> DramStore::create_shared(const std::string& path, RowStore& from,
                                                    const StoreFingerprint& fingerprint,
                                                    const SharedOptions& options) {
  if (options.mode > 0777 || !(options.mode & 0400))
    fail(Errc::invalid_argument, path, ": shared file mode ", octal(options.mode),
         " must let its owner read it and hold only permission bits (at most 0777)");
  std::vector<TableDesc> tables = tables_of(from);
  bool same = fingerprint.tables.size() == tables.size();
  for (size_t t = 0; same && t < tables.size(); ++t)
    same = same_table(fingerprint.tables[t], tables[t]);
  if (!same)
    fail(Errc::invalid_argument, path, ": the fingerprint (", fingerprint.str(),
         ") is not of the tables to be shared: ", first_difference(tables, fingerprint.tables));
  if (tables.size() > kMaxTables)
    fail(Errc::unsupported, path, ": a shared table file holds at most ", kMaxTables, " tables");
  for (auto& d : tables)
    if (d.name.size() >= sizeof(ShmTable::name))
      fail(Errc::unsupported, path, ": table name '", d.name, "' is too long");
  // The file under `path` attached, or null when there is none.
  auto published = [&]() -> std::unique_ptr<DramStore> {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) return nullptr;
    if (fd < 0) fail(Errc::io, path, ": cannot open shared table file: ", errno_text());
    FdCloser closer{fd};
    check_regular(fd, path);
    return attach_fd(fd, path, fingerprint, options.verify_data);
  };
  // Already published: attach it rather than fill a copy that could only lose.
  if (!options.replace)
    if (auto s = published()) return s;
  std::vector<uint64_t> offsets;
  const uint64_t total = layout(tables, kPage, offsets);

  const std::string dir = std::filesystem::path(path).parent_path().string();
  // An unlinked file: if this process dies before linking it, nothing is left behind.
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) fail(Errc::io, path, ": cannot create an unlinked file in ", dir, ": ", errno_text());
  FdCloser closer{fd};
  // Exactly the mode asked for, whatever the umask.
  if (::fchmod(fd, static_cast<mode_t>(options.mode)) != 0)
    fail(Errc::io, path, ": cannot set mode ", octal(options.mode), ": ", errno_text());
  if (::ftruncate(fd, static_cast<off_t>(total)) != 0)
    fail(Errc::io, path, ": cannot size to ", total, " bytes: ", errno_text());
  Region rw;
  rw.len = total;
  rw.base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (rw.base == MAP_FAILED) fail(Errc::io, path, ": mmap of ", total, " bytes: ", errno_text());
#ifdef MADV_HUGEPAGE
  ::madvise(rw.base, total, MADV_HUGEPAGE);  // honoured by tmpfs with huge=within_size/advise
#endif
  // tmpfs allocates pages on first touch; fill() failing with SIGBUS on a full /dev/shm is
  // avoided by reserving the space now.
  if (int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(total)); rc != 0 && rc != EOPNOTSUPP) {
    // Racing creators each hold a copy until one links its own: out of room, a winner's
    // file, if one has appeared, serves as well.
    if (rc == ENOSPC && !options.replace)
      if (auto s = published()) return s;
    fail(Errc::io, path, ": cannot reserve ", total, " bytes: ", std::strerror(rc));
  }

  fill(from, rw.bytes(), offsets);

  ShmHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.header_bytes = kPage;
  h.total_bytes = total;
  h.num_tables = static_cast<uint32_t>(tables.size());
  uint64_t cs = 0x9E3779B97F4A7C15ull;
  for (size_t t = 0; t < tables.size(); ++t) {
    ShmTable& e = h.tables[t];
    std::strncpy(e.name, tables[t].name.c_str(), sizeof(e.name) - 1);
    e.dtype = static_cast<uint32_t>(tables[t].format.dtype);
    e.width = tables[t].format.width;
    e.rows = tables[t].rows;
    e.offset = offsets[t];
    e.bytes = uint64_t(tables[t].rows) * tables[t].row_bytes();
    cs = checksum64(rw.bytes() + e.offset, e.bytes, cs);
  }
  h.data_checksum = cs;
  h.table_digest = fingerprint.table_digest;
  h.shard_digest = fingerprint.shard_digest;
  h.row_digest = fingerprint.row_digest;
  std::strncpy(h.origin, fingerprint.origin.c_str(), sizeof(h.origin) - 1);
  h.complete = kCompleteMarker;
  h.header_checksum = header_checksum(h);
  std::memcpy(rw.bytes(), &h, sizeof(h));
  if (::msync(rw.base, total, MS_SYNC) != 0) fail(Errc::io, path, ": msync failed: ", errno_text());

  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (!options.replace) {
    // Another creator published first: theirs is complete (only complete files are linked), so
    // attach it. A name taken and freed again in between is tried again, a few times at most.
    for (int attempt = 0;; ++attempt) {
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) break;
      const int err = errno;
      if (err == EEXIST)
        if (auto s = published()) return s;
      if (err != EEXIST || attempt == 3)
        fail(Errc::io, path, ": cannot publish the shared table file: ", std::strerror(err));
    }
  } else {
    // Link under a private name, then rename over `path`: readers see the old or the new file.
    std::string tmp =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(std::random_device{}());
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0)
      fail(Errc::io, tmp, ": cannot link the shared table file: ", errno_text());
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      std::string err = errno_text();
      ::unlink(tmp.c_str());
      fail(Errc::io, path, ": cannot publish the shared table file: ", err);
    }
  }
  // The creator keeps a read-only view of its own file (not whatever the name holds by now),
  // like every other process; its rows were just checksummed, so they are not read again.
  auto store = attach_fd(fd, path, fingerprint, false);
  store->created_ = true;
  return store;
}

std::unique_ptr<DramStore> DramStore::attach_shared(const std::string& path,
                                                    const StoreFingerprint& expected,
                                                    bool verify_data) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(Errc::io, path, ": cannot open shared table file: ", errno_text());
  FdCloser closer{fd};
  check_regular(fd, path);
  return attach_fd(fd, path, expected, verify_data);
}

std::unique_ptr<DramStore> DramStore::attach_fd(int fd, const std::string& path,
                                                const StoreFingerprint& expected,
                                                bool verify_data) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(Errc::io, path, ": fstat failed: ", errno_text());
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kPage)
    fail(Errc::parse, path, ": ", size, " bytes, too small for an engram shared table file");
  ShmHeader h{};
  if (::pread(fd, &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h)))
    fail(Errc::io, path, ": cannot read the header: ", errno_text());
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0)
    fail(Errc::parse, path, ": not an engram shared table file (bad magic)");
  if (h.version != kVersion)
    fail(Errc::unsupported, path, ": shared table file version ", h.version, ", expected ",
         kVersion);
  if (h.complete != kCompleteMarker)
    fail(Errc::parse, path, ": shared table file is incomplete (its creator did not finish)");
  if (h.header_checksum != header_checksum(h))
    fail(Errc::parse, path, ": header checksum mismatch");
  if (h.header_bytes != kPage || h.total_bytes != size)
    fail(Errc::parse, path, ": header says ", h.total_bytes, " bytes, the file has ", size);
  if (h.num_tables > kMaxTables)
    fail(Errc::parse, path, ": header lists ", h.num_tables, " tables (at most ", kMaxTables, ")");

  std::vector<TableDesc> tables;
  std::vector<uint64_t> offsets;
  for (uint32_t t = 0; t < h.num_tables; ++t) {
    const ShmTable& e = h.tables[t];
    TableDesc d;
    d.name.assign(e.name, strnlen(e.name, sizeof(e.name)));
    if (e.dtype > static_cast<uint32_t>(RowDtype::f8_e4m3))
      fail(Errc::parse, path, ": table ", d.name, " has unknown dtype ", e.dtype);
    try {
      d.format = RowFormat::make(static_cast<RowDtype>(e.dtype), e.width);
    } catch (const Error& err) {
      fail(Errc::parse, path, ": table ", d.name, ": ", err.what());
    }
    d.rows = e.rows;
    const uint64_t rb = d.row_bytes();
    if (e.rows < 0 || (rb && uint64_t(e.rows) > UINT64_MAX / rb) ||
        e.bytes != uint64_t(e.rows) * rb || e.offset < kPage || e.offset > size ||
        e.bytes > size - e.offset)
      fail(Errc::parse, path, ": table ", d.name, " span [", e.offset, ", +", e.bytes,
           ") does not fit the file (", size, " bytes)");
    tables.push_back(d);
    offsets.push_back(e.offset);
  }
  StoreFingerprint found;
  found.table_digest = h.table_digest;
  found.shard_digest = h.shard_digest;
  found.row_digest = h.row_digest;
  found.origin.assign(h.origin, strnlen(h.origin, sizeof(h.origin)));
  found.tables = tables;
  if (!found.same_checkpoint(expected))
    fail(Errc::mismatch, path, ": holds another checkpoint's tables: the file's fingerprint is ",
         found.str(), ", this checkpoint's is ", expected.str(), "; ",
         first_difference(found, expected));
  auto region = std::make_unique<Region>();
  region->len = size;
  region->base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (region->base == MAP_FAILED) fail(Errc::io, path, ": mmap failed: ", errno_text());
  if (verify_data) {
    uint64_t cs = 0x9E3779B97F4A7C15ull;
    for (uint32_t t = 0; t < h.num_tables; ++t)
      cs = checksum64(region->bytes() + h.tables[t].offset, h.tables[t].bytes, cs);
    if (cs != h.data_checksum)
      fail(Errc::parse, path,
           ": row data checksum mismatch (a row byte changed after the file was published)");
  }
  return std::unique_ptr<DramStore>(
      new DramStore(std::move(tables), std::move(region), std::move(offsets), false, true));
}

std::string DramStore::describe() const {
  return str_cat("dram(", shared_ ? "shared" : "anonymous", huge_pages_ ? ", huge pages" : "", ")");
}

const std::byte* DramStore::table_bytes(size_t t) const {
  table(t);  // range check
  return region_->bytes() + offsets_[t];
}

void DramStore::gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) {
  check_ids(t, ids);
  const uint32_t rb = table(t).row_bytes();
  const std::byte* base = region_->bytes() + offsets_[t];
  for (size_t i = 0; i < ids.size(); ++i)
    std::memcpy(out + i * rb, base + uint64_t(ids[i]) * rb, rb);
}

void DramStore::gather_f32(size_t t, std::span<const int64_t> ids, float* out) {
  check_ids(t, ids);
  const TableDesc& d = table(t);
  const auto* base = reinterpret_cast<const uint8_t*>(region_->bytes() + offsets_[t]);
  const uint64_t rb = d.row_bytes();
  std::vector<const uint8_t*> data(ids.size()), scale;
  if (d.format.scale_bytes > 0) scale.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    data[i] = base + uint64_t(ids[i]) * rb;
    if (!scale.empty()) scale[i] = data[i] + d.format.data_bytes;
  }
  dequantize_row_ptrs(d.format, data, scale, out);
}

void DramStore::gather_bf16(size_t t, std::span<const int64_t> ids, uint16_t* out) {
  check_ids(t, ids);
  const TableDesc& d = table(t);
  const auto* base = reinterpret_cast<const uint8_t*>(region_->bytes() + offsets_[t]);
  const uint64_t rb = d.row_bytes();
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint8_t* row = base + uint64_t(ids[i]) * rb;
    dequantize_rows_bf16(d.format, row, row + d.format.data_bytes, 1, out + i * d.format.width);
  }
}

}  // namespace engram
