// FileStore: rows read in place from their files. One read per row part (data, then scale for
// f8 unless the scales were made resident at open), all of a gather's reads submitted together
// through an IoEngine taken from a pool (one engine per concurrent gather, since an io_uring
// instance is single-threaded).
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "engram/error.h"
#include "engram/store.h"
#include "store/io_engine.h"

namespace engram {

struct FileStore::Impl {
  FileStoreOptions options;
  std::map<std::string, std::unique_ptr<ReadFile>> files;  // by path
  std::vector<const ReadFile*> data_file, scale_file;      // per table
  std::vector<std::vector<std::byte>> scales;  // per table: [rows, scale_bytes] when resident
  std::mutex mu;
  std::vector<std::unique_ptr<IoEngine>> idle;  // engines not in use
  IoFaultHook hook;
  IoStats totals;  // stats of engines returned to the pool

  std::unique_ptr<IoEngine> make_engine() {
    UringOptions u{options.queue_depth, options.direct};
    auto e = options.use_uring ? make_default_engine(u) : make_pread_engine();
    std::lock_guard<std::mutex> lock(mu);
    e->set_fault_hook(hook);
    return e;
  }
  std::unique_ptr<IoEngine> acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        auto e = std::move(idle.back());
        idle.pop_back();
        e->set_fault_hook(hook);
        return e;
      }
    }
    return make_engine();
  }
  // Returns an engine to the pool, or drops it after a failure (a fresh ring is cheap, and a
  // ring that failed as a whole must not be reused).
  void release(std::unique_ptr<IoEngine> e, bool keep = true) {
    std::lock_guard<std::mutex> lock(mu);
    const IoStats& s = e->stats();
    totals.requests += s.requests;
    totals.reads += s.reads;
    totals.bytes += s.bytes;
    totals.direct_reads += s.direct_reads;
    totals.short_reads += s.short_reads;
    totals.retries += s.retries;
    e->reset_stats();
    if (keep) idle.push_back(std::move(e));
  }
};

namespace {

std::vector<TableDesc> descs_of(const std::vector<TableSource>& sources) {
  std::vector<TableDesc> v;
  for (auto& s : sources) v.push_back(s.desc);
  return v;
}

void check_span(const TableSource& s, const char* part, const ReadFile& f, uint64_t offset,
                int64_t row_bytes) {
  const uint64_t rows = static_cast<uint64_t>(s.desc.rows);
  const uint64_t rb = static_cast<uint64_t>(row_bytes);
  if (rb != 0 && rows > (UINT64_MAX - offset) / rb)
    fail(Errc::mismatch, "table ", s.desc.name, ": ", part, " span overflows (", rows, " rows of ",
         rb, " bytes at offset ", offset, ")");
  const uint64_t end = offset + rows * rb;
  if (end > f.size())
    fail(Errc::mismatch, "table ", s.desc.name, ": ", part, " bytes [", offset, ", ", end,
         ") pass the end of ", f.path(), " (", f.size(), " bytes)");
}

}  // namespace

FileStore::FileStore(std::vector<TableSource> sources, const FileStoreOptions& options)
    : RowStore(descs_of(sources)), sources_(std::move(sources)), impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}

FileStore::~FileStore() = default;

std::unique_ptr<FileStore> FileStore::open(std::vector<TableSource> sources,
                                           const FileStoreOptions& options) {
  for (auto& s : sources) {
    const TableDesc& d = s.desc;
    if (d.rows < 0) fail(Errc::invalid_argument, "table ", d.name, ": negative row count");
    RowFormat expect = RowFormat::make(d.format.dtype, d.format.width);
    if (expect.data_bytes != d.format.data_bytes || expect.scale_bytes != d.format.scale_bytes)
      fail(Errc::invalid_argument, "table ", d.name, ": row format sizes do not match ",
           row_dtype_name(d.format.dtype), " x ", d.format.width);
    if (d.format.scale_bytes > 0 && s.scale_path.empty())
      fail(Errc::invalid_argument, "table ", d.name, ": f8 rows need a scale source");
  }
  std::unique_ptr<FileStore> store(new FileStore(std::move(sources), options));
  Impl& im = *store->impl_;
  auto file_for = [&](const std::string& path) -> const ReadFile* {
    auto it = im.files.find(path);
    if (it == im.files.end())
      it = im.files.emplace(path, std::make_unique<ReadFile>(path, options.direct)).first;
    return it->second.get();
  };
  for (auto& s : store->sources_) {
    const ReadFile* df = file_for(s.data_path);
    check_span(s, "data", *df, s.data_offset, s.desc.format.data_bytes);
    const ReadFile* sf = nullptr;
    if (s.desc.format.scale_bytes > 0) {
      sf = file_for(s.scale_path);
      check_span(s, "scale", *sf, s.scale_offset, s.desc.format.scale_bytes);
    }
    im.data_file.push_back(df);
    im.scale_file.push_back(sf);
    im.scales.emplace_back();
    if (sf && options.resident_scales) {
      // One sequential pass in large pieces; counted in io_stats like any other read.
      const uint64_t total = uint64_t(s.desc.rows) * uint64_t(s.desc.format.scale_bytes);
      std::vector<std::byte>& dst = im.scales.back();
      dst.resize(total);
      std::vector<ReadRequest> reqs;
      constexpr uint64_t kPiece = 64ull << 20;
      for (uint64_t off = 0; off < total; off += kPiece)
        reqs.push_back(
            {sf, s.scale_offset + off, uint32_t(std::min(kPiece, total - off)), dst.data() + off});
      auto engine = make_pread_engine();
      engine->read(reqs);
      const IoStats& st = engine->stats();
      im.totals.requests += st.requests;
      im.totals.reads += st.reads;
      im.totals.bytes += st.bytes;
    }
  }
  // Fail at open, not at the first gather, when io_uring is wanted but refused.
  im.release(im.make_engine());
  return store;
}

std::string FileStore::describe() const {
  bool direct = impl_->options.direct;
  for (auto& [path, f] : impl_->files) direct = direct && f->direct();
  const bool uring = impl_->options.use_uring && uring_available();
  return str_cat("file(", uring ? "io_uring" : "pread", direct ? ", O_DIRECT" : ", buffered", ", ",
                 impl_->files.size(), " files)");
}

void FileStore::gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) {
  check_ids(t, ids);
  if (ids.empty()) return;
  const TableSource& s = sources_[t];
  const RowFormat& f = s.desc.format;
  const uint32_t rb = s.desc.row_bytes();
  const std::vector<std::byte>& resident = impl_->scales[t];
  const bool scaled = f.scale_bytes > 0 && resident.empty();
  std::vector<ReadRequest> reqs;
  reqs.reserve(ids.size() * (scaled ? 2 : 1));
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint64_t row = static_cast<uint64_t>(ids[i]);
    std::byte* dst = out + i * rb;
    reqs.push_back({impl_->data_file[t], s.data_offset + row * f.data_bytes,
                    static_cast<uint32_t>(f.data_bytes), dst});
    if (!resident.empty())
      std::memcpy(dst + f.data_bytes, resident.data() + row * f.scale_bytes, f.scale_bytes);
    else if (scaled)
      reqs.push_back({impl_->scale_file[t], s.scale_offset + row * f.scale_bytes,
                      static_cast<uint32_t>(f.scale_bytes), dst + f.data_bytes});
  }
  std::unique_ptr<IoEngine> engine = impl_->acquire();
  try {
    engine->read(reqs);
  } catch (const Error& e) {
    impl_->release(std::move(engine), /*keep=*/false);
    fail(e.code(), "table ", s.desc.name, ": ", e.what());
  }
  impl_->release(std::move(engine));
}

void set_fault_hook(FileStore& store, IoFaultHook hook) {
  std::lock_guard<std::mutex> lock(store.impl_->mu);
  store.impl_->hook = std::move(hook);
}

IoStats FileStore::io_stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->totals;
}

}  // namespace engram
