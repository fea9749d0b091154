// Python bindings of the store area: Engram tables served from a DeepSeek-V4.1 checkpoint.
//
//   engram.TableStore.open(path, tier="dram"|"file", cache_bytes=0, cache_policy="s3fifo",
//                          direct=True, shared_path=None, resident_scales=False,
//                          verify_shared=False, shared_mode=0o600)
//       path: a V4.1 checkpoint directory (config.json + shards). tier "file" reads rows in
//       place (io_uring, O_DIRECT); "dram" loads every row into memory first (or, with
//       shared_path, into a /dev/shm file other processes attach to; a file holding another
//       checkpoint's tables is refused with ValueError). cache_bytes > 0 puts a hot-row cache
//       in front of the tier. resident_scales (file tier only) keeps the f8 scales in memory.
//       verify_shared checksums every row of a shared file made by another process; shared_mode
//       is the permission bits of one this call creates (owner only by default).
//       The tiers are assembled by engram::open_store, as for the C API and the CLI.
//     .lookup(layer_id, hash_ids int64 [..., columns]) -> float32 [..., columns, head_dim]
//       hash_ids are per-column values as NgramHasher.hash returns them (no offsets); the
//       column offsets are added here. A value outside its column's [0, prime) is IndexError.
//     .prefetch({layer_id: hash_ids, ...}, step=0) -> PrefetchTicket, all layers started at once
//     .wait(layer_id) -> float32 rows of the latest prefetch; ticket.wait(layer_id) likewise
//     .stats() -> dict (tier, cache hits / misses / hit_rate / entries, io reads / bytes)
//     .layer_ids, .columns, .head_dim, .rows(layer_id)
//   engram.write_synthetic_v41(dir, layer_ids=[1, 14], vocab_size=1000, max_ngram=4, n_heads=8,
//                              head_dim=256, hidden_size=64, hc_mult=4, shards=3, sparse=False,
//                              seed=0) -> [rows per layer]
// Errors: ValueError (bad arguments, bad checkpoint), IndexError (ids), OSError (I/O).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>

#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "engram/v41_checkpoint.h"
#include "module.h"

namespace pyb = pybind11;

namespace engram::py {
namespace {

using f32_array = pyb::array_t<float, pyb::array::c_style>;

class PyTableStore;

// The rows of one prefetch: keeps the ticket and the shapes to return.
class PyTicket {
 public:
  PyTicket(Ticket t, std::map<int64_t, std::pair<size_t, std::vector<pyb::ssize_t>>> layers)
      : ticket_(std::move(t)), layers_(std::move(layers)) {}
  f32_array wait(int64_t layer_id) {
    auto it = layers_.find(layer_id);
    if (it == layers_.end())
      fail(Errc::out_of_range, "layer ", layer_id, " was not part of this prefetch");
    StagedRows rows;
    {
      pyb::gil_scoped_release release;
      rows = ticket_.wait(it->second.first);
    }
    f32_array out(it->second.second);
    auto src = rows.f32();
    std::memcpy(out.mutable_data(), src.data(), src.size() * sizeof(float));
    return out;
  }
  void cancel() { ticket_.cancel(); }
  std::vector<int64_t> layer_ids() const {
    std::vector<int64_t> ids;
    for (const auto& [id, unused] : layers_) ids.push_back(id);
    return ids;
  }

 private:
  Ticket ticket_;
  std::map<int64_t, std::pair<size_t, std::vector<pyb::ssize_t>>> layers_;
};

class PyTableStore {
 public:
  static std::unique_ptr<PyTableStore> open(const std::string& path, const std::string& tier,
                                            uint64_t cache_bytes, const std::string& policy,
                                            bool direct, std::optional<std::string> shared_path,
                                            bool resident_scales, bool verify_shared,
                                            uint32_t shared_mode) {
    StoreOptions so;
    if (tier == "file") {
      if (shared_path) fail(Errc::invalid_argument, "shared_path needs tier=\"dram\"");
      so.tier = StoreTier::file;
    } else if (tier == "dram") {
      if (resident_scales)
        fail(Errc::invalid_argument, "resident_scales needs tier=\"file\" (dram holds every row)");
      so.tier = StoreTier::dram;
    } else {
      fail(Errc::invalid_argument, "tier must be \"dram\" or \"file\", got \"", tier, "\"");
    }
    so.shared_path = shared_path.value_or("");
    so.verify_shared = verify_shared;
    so.shared_mode = shared_mode;
    so.cache_bytes = cache_bytes;
    if (cache_bytes > 0) so.cache_policy = parse_cache_policy(policy);
    so.file.direct = direct;
    so.file.resident_scales = resident_scales;

    auto s = std::make_unique<PyTableStore>();
    s->ck_ = V41Checkpoint::open(path);
    const EngramConfig& c = s->ck_->config();
    if (!c.compressed_vocab_size)
      fail(Errc::mismatch, path, "/config.json: engram_compressed_vocab_size is required");
    s->layouts_ = make_hash_layout(c, *c.compressed_vocab_size);
    {
      pyb::gil_scoped_release release;
      s->opened_ = open_store(s->ck_->table_sources(), so);
    }
    s->tier_ = tier;
    return s;
  }

  f32_array lookup(int64_t layer_id, const pyb::array& hash_ids) {
    std::vector<pyb::ssize_t> shape;
    std::vector<int64_t> rows = to_rows(layer_id, hash_ids, shape);
    const size_t t = ck_->table_of_layer(layer_id);
    f32_array out(shape);
    {
      pyb::gil_scoped_release release;
      opened_.store->gather_f32(t, rows, out.mutable_data());
    }
    return out;
  }

  std::shared_ptr<PyTicket> prefetch(const std::map<int64_t, pyb::array>& by_layer, int64_t step) {
    if (!prefetcher_) {
      PrefetchOptions po;
      po.threads = static_cast<unsigned>(std::max<size_t>(1, ck_->layers().size()));
      po.staging_bytes = 1ull << 30;
      po.output = RowOutput::f32;
      prefetcher_ = std::make_unique<Prefetcher>(opened_.store, po);
    }
    // The previous ticket of wait() is replaced: release it first so its staging returns.
    latest_.reset();
    std::vector<LayerRequest> reqs;
    std::map<int64_t, std::pair<size_t, std::vector<pyb::ssize_t>>> layers;
    for (auto& [layer_id, arr] : by_layer) {
      std::vector<pyb::ssize_t> shape;
      std::vector<int64_t> rows = to_rows(layer_id, arr, shape);
      layers[layer_id] = {reqs.size(), shape};
      reqs.push_back({ck_->table_of_layer(layer_id), std::move(rows)});
    }
    Ticket t = prefetcher_->prefetch(step, std::move(reqs));
    latest_ = std::make_shared<PyTicket>(std::move(t), std::move(layers));
    return latest_;
  }

  f32_array wait(int64_t layer_id) {
    if (!latest_) fail(Errc::invalid_argument, "wait() before any prefetch()");
    return latest_->wait(layer_id);
  }

  pyb::dict stats() const {
    pyb::dict d;
    d["tier"] = tier_;
    d["describe"] = opened_.store->describe();
    if (opened_.cache) {
      CacheStats c = opened_.cache->cache_stats();
      d["cache_hits"] = c.hits;
      d["cache_misses"] = c.misses;
      d["cache_hit_rate"] = c.hit_rate();
      d["cache_entries"] = c.entries;
      d["cache_capacity_rows"] = c.capacity_rows;
      d["cache_capped"] = c.capped;  // cache_bytes held more rows than the tables have
      d["cache_evictions"] = c.evictions;
    }
    if (opened_.dram && opened_.dram->shared())
      d["shared_created"] = opened_.dram->created();  // false: attached another's file
    IoStats io = opened_.file->io_stats();
    d["io_reads"] = io.reads;
    d["io_bytes"] = io.bytes;
    d["io_direct_reads"] = io.direct_reads;
    return d;
  }

  std::vector<int64_t> layer_ids() const { return ck_->config().layer_ids; }
  int64_t columns() const { return ck_->config().num_columns(); }
  int64_t head_dim() const { return ck_->config().head_dim; }
  int64_t rows(int64_t layer_id) const { return ck_->layers()[ck_->table_of_layer(layer_id)].rows; }

 private:
  // hash_ids [..., columns] -> flat rows (hash_values_to_rows); `shape` gets the output shape
  // [..., columns, head_dim].
  std::vector<int64_t> to_rows(int64_t layer_id, const pyb::array& hash_ids,
                               std::vector<pyb::ssize_t>& shape) {
    const size_t t = ck_->table_of_layer(layer_id);
    const LayerHashLayout& lay = layouts_[t];
    const char kind = hash_ids.dtype().kind();
    if (kind != 'i' && kind != 'u')
      fail(Errc::invalid_argument, "hash_ids: expected an integer array, got dtype ",
           std::string(pyb::str(hash_ids.dtype())));
    auto a = pyb::array_t<int64_t, pyb::array::c_style | pyb::array::forcecast>::ensure(hash_ids);
    const int64_t C = static_cast<int64_t>(lay.primes.size());
    if (a.ndim() < 1 || a.shape(a.ndim() - 1) != C)
      fail(Errc::invalid_argument, "hash_ids: last dimension must be the ", C,
           " hash columns of layer ", layer_id);
    shape.assign(a.shape(), a.shape() + a.ndim());
    shape.push_back(ck_->config().head_dim);
    return hash_values_to_rows(lay, {a.data(), static_cast<size_t>(a.size())});
  }

  std::unique_ptr<V41Checkpoint> ck_;
  std::vector<LayerHashLayout> layouts_;
  OpenedStore opened_;
  std::string tier_;
  std::shared_ptr<PyTicket> latest_;
  std::unique_ptr<Prefetcher> prefetcher_;  // last: shut down before the store goes
};

}  // namespace

void bind_store(pyb::module_& m) {
  pyb::class_<PyTicket, std::shared_ptr<PyTicket>>(
      m, "PrefetchTicket",
      "The rows of one TableStore.prefetch, started for several layers at once.")
      .def("__repr__",
           [](const PyTicket& t) {
             return pyb::str("PrefetchTicket(layer_ids={})").format(t.layer_ids());
           })
      .def("wait", &PyTicket::wait, pyb::arg("layer_id"),
           "Blocks until layer_id's rows are in -> float32 [..., columns, head_dim] (the shape of "
           "that layer's hash_ids plus head_dim). IndexError for a layer not in this prefetch.")
      .def("cancel", &PyTicket::cancel, "Stops the reads not yet started; wait() then fails.");

  pyb::class_<PyTableStore>(m, "TableStore",
                            "Engram tables served from a DeepSeek-V4.1 checkpoint by a storage "
                            "tier (DRAM or file), optionally behind a hot-row cache.")
      .def_static(
          "open", &PyTableStore::open, pyb::arg("path"), pyb::arg("tier") = "dram",
          pyb::arg("cache_bytes") = 0, pyb::arg("cache_policy") = "s3fifo",
          pyb::arg("direct") = true, pyb::arg("shared_path") = pyb::none(), pyb::kw_only(),
          pyb::arg("resident_scales") = false, pyb::arg("verify_shared") = false,
          pyb::arg("shared_mode") = kSharedFileMode,
          "path: a V4.1 checkpoint directory (config.json + shards); tier: \"dram\" "
          "loads every row into memory, \"file\" reads rows in place; cache_bytes: > 0 "
          "puts a hot-row cache of that size in front of the tier; cache_policy: its "
          "eviction policy (\"s3fifo\" or \"lru\"); direct: O_DIRECT reads for the file "
          "tier; shared_path: a /dev/shm file holding the DRAM tier for several processes "
          "(created when absent, attached when present; a file made from another checkpoint is "
          "refused); resident_scales: file tier only, keep the f8 scale rows in memory so "
          "a row is one read; verify_shared: when attaching another process's shared "
          "file, checksum every row byte (one pass over the table); shared_mode: "
          "permission bits of a shared file this call creates (default 0o600, owner "
          "only).")
      .def("__repr__",
           [](PyTableStore& s) {
             return pyb::str("TableStore(tier={!r}, layer_ids={}, columns={}, head_dim={})")
                 .format(s.stats()["tier"], s.layer_ids(), s.columns(), s.head_dim());
           })
      .def("lookup", &PyTableStore::lookup, pyb::arg("layer_id"), pyb::arg("hash_ids"),
           "hash_ids int [..., columns]: per-column hash values as NgramHasher.hash returns them "
           "(no offsets) -> float32 rows [..., columns, head_dim] of layer_id. IndexError for a "
           "value outside its column's table.")
      .def("prefetch", &PyTableStore::prefetch, pyb::arg("hash_ids"), pyb::arg("step") = 0,
           "hash_ids: {layer_id: int [..., columns]}; starts every layer's reads at once and "
           "returns a PrefetchTicket (also kept for wait()); step: the decode step it serves.")
      .def("wait", &PyTableStore::wait, pyb::arg("layer_id"),
           "The rows of layer_id from the latest prefetch (see PrefetchTicket.wait).")
      .def("stats", &PyTableStore::stats,
           "{tier, describe, cache_hits, cache_misses, cache_hit_rate, cache_entries, "
           "cache_capacity_rows, cache_capped, cache_evictions (with a cache), shared_created "
           "(with a shared_path: whether this call made the file), io_reads, io_bytes, "
           "io_direct_reads}.")
      .def("rows", &PyTableStore::rows, pyb::arg("layer_id"),
           "Rows of layer_id's table (all columns).")
      .def_property_readonly("layer_ids", &PyTableStore::layer_ids, "Layers with an Engram table.")
      .def_property_readonly("columns", &PyTableStore::columns, "Hash columns per layer.")
      .def_property_readonly("head_dim", &PyTableStore::head_dim, "Width of one row.");

  m.def(
      "write_synthetic_v41",
      [](const std::string& dir, std::vector<int64_t> layer_ids, int64_t vocab_size, int max_ngram,
         int64_t n_heads, int64_t head_dim, int64_t hidden_size, int64_t hc_mult, int shards,
         bool sparse, uint64_t seed) {
        SyntheticV41Options o;
        o.layer_ids = std::move(layer_ids);
        o.vocab_size = vocab_size;
        o.max_ngram = max_ngram;
        o.n_heads = n_heads;
        o.head_dim = head_dim;
        o.hidden_size = hidden_size;
        o.hc_mult = hc_mult;
        o.shards = shards;
        o.sparse = sparse;
        o.seed = seed;
        pyb::gil_scoped_release release;
        return write_synthetic_v41(dir, o);
      },
      pyb::arg("dir"), pyb::arg("layer_ids") = std::vector<int64_t>{1, 14},
      pyb::arg("vocab_size") = 1000, pyb::arg("max_ngram") = 4, pyb::arg("n_heads") = 8,
      pyb::arg("head_dim") = 256, pyb::arg("hidden_size") = 64, pyb::arg("hc_mult") = 4,
      pyb::arg("shards") = 3, pyb::arg("sparse") = false, pyb::arg("seed") = 0,
      "Writes a small random V4.1 checkpoint (config.json, shards of safetensors with e4m3fn "
      "tables) into dir, for tests and benchmarks -> rows of each layer's table. sparse: the "
      "tables are holes of a sparse file (full V4.1 row counts cost no disk).");
}

}  // namespace engram::py
