// The C API (include/engram/engram.h) over the C++ store, prefetcher and hasher.
//
// Every exported function runs its body through guard(), which turns any exception into an
// engram_status plus a thread-local message, so nothing C++ leaks to a C caller. The handles are
// plain structs owning the C++ objects; the contracts (ownership, blocking, errors) are in the
// header and not repeated here.
#include "engram/engram.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "engram/v41_checkpoint.h"

namespace {

using namespace engram;

static_assert(ENGRAM_E_INVALID_ARGUMENT == int(Errc::invalid_argument));
static_assert(ENGRAM_E_PARSE == int(Errc::parse));
static_assert(ENGRAM_E_OUT_OF_RANGE == int(Errc::out_of_range));
static_assert(ENGRAM_E_IO == int(Errc::io));
static_assert(ENGRAM_E_UNSUPPORTED == int(Errc::unsupported));
static_assert(ENGRAM_E_MISMATCH == int(Errc::mismatch));
static_assert(ENGRAM_E_INTERNAL == int(Errc::internal));

// The last error of this thread. A fixed buffer: recording an error never allocates, so it
// cannot fail while reporting an out-of-memory condition. Long messages are cut.
constexpr size_t kErrorCapacity = 2048;
thread_local char t_last_error[kErrorCapacity] = "";

void set_error(const char* message) noexcept {
  std::snprintf(t_last_error, kErrorCapacity, "%s", message);
}

template <typename F>
engram_status guard(F&& body) noexcept {
  try {
    body();
    return ENGRAM_OK;
  } catch (const Error& e) {
    set_error(e.what());
    const int c = int(e.code());
    return c >= 1 && c <= 7 ? engram_status(c) : ENGRAM_E_INTERNAL;
  } catch (const std::bad_alloc&) {
    set_error("out of memory");
    return ENGRAM_E_NO_MEMORY;
  } catch (const std::filesystem::filesystem_error& e) {
    set_error(e.what());
    return ENGRAM_E_IO;
  } catch (const std::exception& e) {
    char buf[kErrorCapacity];
    std::snprintf(buf, sizeof(buf), "internal error: %s", e.what());
    set_error(buf);
    return ENGRAM_E_INTERNAL;
  } catch (...) {
    set_error("internal error: unknown exception");
    return ENGRAM_E_INTERNAL;
  }
}

template <typename T>
T& need(T* p, const char* what) {
  if (!p) fail(Errc::invalid_argument, what, " is NULL");
  return *p;
}

RowOutput row_output(int32_t o) {
  switch (o) {
    case ENGRAM_ROWS_F32:
      return RowOutput::f32;
    case ENGRAM_ROWS_BF16:
      return RowOutput::bf16;
    case ENGRAM_ROWS_PACKED:
      return RowOutput::packed;
  }
  fail(Errc::invalid_argument, "row output ", o, " is not ENGRAM_ROWS_F32, _BF16 or _PACKED");
}

// Bytes of one row in output form `o` for a table of format `f`.
uint64_t row_bytes_of(const RowFormat& f, RowOutput o) {
  switch (o) {
    case RowOutput::f32:
      return uint64_t(f.width) * sizeof(float);
    case RowOutput::bf16:
      return uint64_t(f.width) * sizeof(uint16_t);
    case RowOutput::packed:
      return uint64_t(f.row_bytes());
  }
  return 0;
}

EngramConfig config_at(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path))
    return EngramConfig::from_file((fs::path(path) / "config.json").string());
  return EngramConfig::from_file(path);
}

}  // namespace

// ---- Handles ------------------------------------------------------------------------------------

struct engram_store {
  std::unique_ptr<V41Checkpoint> ck;
  std::vector<LayerHashLayout> layouts;  // [tables], table t = layer ck->layers()[t]
  OpenedStore opened;                    // open_store's tiers: .store is what lookups read
  std::string description;
  unsigned prefetch_threads = 1;
  uint64_t staging_bytes = 0;
  std::mutex mu;  // guards prefetchers' creation
  // One per output form, made on first use. Last member: shut down before the stores go.
  std::unique_ptr<Prefetcher> prefetchers[3];

  size_t table_of(int64_t layer_id) const { return ck->table_of_layer(layer_id); }
  const RowFormat& format() const { return ck->layers()[0].table.desc.format; }
  int64_t columns() const { return ck->config().num_columns(); }

  // hash_values [n, columns] of layer `t` -> row ids of its table.
  std::vector<int64_t> rows_of(size_t t, const int64_t* values, uint64_t n) const {
    if (n > 0 && !values) fail(Errc::invalid_argument, "hash_values is NULL");
    const LayerHashLayout& lay = layouts[t];
    return hash_values_to_rows(lay, {values, size_t(n * lay.primes.size())});
  }

  Prefetcher& prefetcher(RowOutput o) {
    std::lock_guard<std::mutex> lock(mu);
    auto& p = prefetchers[int(o)];
    if (!p)
      p = std::make_unique<Prefetcher>(opened.store,
                                       PrefetchOptions{prefetch_threads, staging_bytes, o});
    return *p;
  }
};

struct engram_ticket {
  Ticket ticket;
  std::vector<int64_t> layer_ids;  // request i -> layer id
  std::vector<uint64_t> bytes;     // request i -> bytes of its rows in output form
  size_t index_of(int64_t layer_id) const {
    for (size_t i = 0; i < layer_ids.size(); ++i)
      if (layer_ids[i] == layer_id) return i;
    fail(Errc::out_of_range, "step ", ticket.step(), ": layer ", layer_id,
         " was not part of this prefetch");
  }
};

struct engram_hasher {
  std::unique_ptr<NgramHasher> h;
};

struct engram_hash_state {
  HashState s;
};

// ---- Errors -------------------------------------------------------------------------------------

extern "C" const char* engram_last_error(void) {
  return t_last_error;
}

extern "C" const char* engram_status_name(engram_status status) {
  switch (status) {
    case ENGRAM_OK:
      return "ok";
    case ENGRAM_E_INVALID_ARGUMENT:
      return "invalid_argument";
    case ENGRAM_E_PARSE:
      return "parse";
    case ENGRAM_E_OUT_OF_RANGE:
      return "out_of_range";
    case ENGRAM_E_IO:
      return "io";
    case ENGRAM_E_UNSUPPORTED:
      return "unsupported";
    case ENGRAM_E_MISMATCH:
      return "mismatch";
    case ENGRAM_E_INTERNAL:
      return "internal";
    case ENGRAM_E_NO_MEMORY:
      return "no_memory";
  }
  return "unknown";
}

// ---- Store --------------------------------------------------------------------------------------

extern "C" void engram_store_options_init(engram_store_options* opts) {
  if (!opts) return;
  opts->tier = ENGRAM_TIER_DRAM;
  opts->cache_bytes = 0;
  opts->cache_policy = ENGRAM_CACHE_S3FIFO;
  opts->direct = 1;
  opts->use_io_uring = 1;
  opts->queue_depth = 64;
  opts->huge_pages = 1;
  opts->shared_path = nullptr;
  opts->prefetch_threads = 0;
  opts->staging_bytes = 256ull << 20;
  opts->resident_scales = 0;
  opts->verify_shared = 0;
  opts->shared_mode = 0600;
}

extern "C" engram_status engram_store_open(const char* checkpoint_dir,
                                           const engram_store_options* opts, engram_store** out) {
  return guard([&] {
    need(out, "out");
    if (!checkpoint_dir) fail(Errc::invalid_argument, "checkpoint_dir is NULL");
    engram_store_options o;
    engram_store_options_init(&o);
    if (opts) o = *opts;
    if (o.tier != ENGRAM_TIER_DRAM && o.tier != ENGRAM_TIER_FILE)
      fail(Errc::invalid_argument, "options.tier ", o.tier, " is not DRAM (0) or FILE (1)");
    if (o.cache_policy != ENGRAM_CACHE_S3FIFO && o.cache_policy != ENGRAM_CACHE_LRU)
      fail(Errc::invalid_argument, "options.cache_policy ", o.cache_policy,
           " is not S3FIFO (0) or LRU (1)");
    if (o.queue_depth < 1 || o.queue_depth > 4096)
      fail(Errc::invalid_argument, "options.queue_depth ", o.queue_depth, " is not in 1..4096");
    if (o.prefetch_threads > 256)
      fail(Errc::invalid_argument, "options.prefetch_threads ", o.prefetch_threads,
           " is more than 256");
    if (o.staging_bytes == 0) fail(Errc::invalid_argument, "options.staging_bytes is 0");
    if (o.shared_path && o.tier != ENGRAM_TIER_DRAM)
      fail(Errc::invalid_argument, "options.shared_path needs the DRAM tier");

    auto s = std::make_unique<engram_store>();
    s->ck = V41Checkpoint::open(checkpoint_dir);
    const EngramConfig& c = s->ck->config();
    if (!c.compressed_vocab_size)
      fail(Errc::mismatch, checkpoint_dir,
           "/config.json: engram_compressed_vocab_size is required");
    if (s->ck->layers().empty())
      fail(Errc::mismatch, checkpoint_dir, "/config.json: no Engram layers");
    s->layouts = make_hash_layout(c, *c.compressed_vocab_size);
    StoreOptions so;
    so.tier = o.tier == ENGRAM_TIER_FILE ? StoreTier::file : StoreTier::dram;
    if (o.shared_path) so.shared_path = o.shared_path;
    so.huge_pages = o.huge_pages != 0;
    so.cache_bytes = o.cache_bytes;
    so.cache_policy = o.cache_policy == ENGRAM_CACHE_LRU ? CachePolicy::lru : CachePolicy::s3fifo;
    so.file.use_uring = o.use_io_uring != 0;
    so.file.direct = o.direct != 0;
    so.file.queue_depth = o.queue_depth;
    so.file.resident_scales = o.resident_scales != 0;
    so.verify_shared = o.verify_shared != 0;
    so.shared_mode = o.shared_mode;
    s->opened = open_store(s->ck->table_sources(), so);
    s->description = s->opened.store->describe();
    s->prefetch_threads =
        o.prefetch_threads ? o.prefetch_threads : unsigned(s->ck->layers().size());
    s->staging_bytes = o.staging_bytes;
    *out = s.release();
  });
}

extern "C" void engram_store_close(engram_store* store) {
  // Destruction cannot throw (joins threads, closes files); delete is the owner's release.
  delete store;
}

extern "C" engram_status engram_store_get_info(const engram_store* store, engram_store_info* out) {
  return guard([&] {
    const engram_store& s = need(store, "store");
    need(out, "out");
    const EngramConfig& c = s.ck->config();
    engram_store_info i;
    i.num_layers = int64_t(s.ck->layers().size());
    i.columns = c.num_columns();
    i.head_dim = c.head_dim;
    i.packed_row_bytes = s.format().row_bytes();
    i.max_ngram = c.max_ngram;
    i.compressed_vocab_size = *c.compressed_vocab_size;
    *out = i;
  });
}

extern "C" engram_status engram_store_layer(const engram_store* store, int64_t index,
                                            int64_t* layer_id, int64_t* rows) {
  return guard([&] {
    const engram_store& s = need(store, "store");
    const auto& layers = s.ck->layers();
    if (index < 0 || uint64_t(index) >= layers.size())
      fail(Errc::out_of_range, "layer index ", index, " is outside [0, ", layers.size(), ")");
    if (layer_id) *layer_id = layers[size_t(index)].layer_id;
    if (rows) *rows = layers[size_t(index)].rows;
  });
}

extern "C" engram_status engram_store_token_bytes(const engram_store* store, int32_t output,
                                                  uint64_t* bytes) {
  return guard([&] {
    const engram_store& s = need(store, "store");
    need(bytes, "bytes");
    *bytes = uint64_t(s.columns()) * row_bytes_of(s.format(), row_output(output));
  });
}

extern "C" const char* engram_store_describe(const engram_store* store) {
  return store ? store->description.c_str() : nullptr;
}

extern "C" engram_status engram_store_lookup(engram_store* store, int64_t layer_id,
                                             const int64_t* hash_values, uint64_t n_tokens,
                                             int32_t output, void* out, uint64_t out_bytes) {
  return guard([&] {
    engram_store& s = need(store, "store");
    const RowOutput o = row_output(output);
    const size_t t = s.table_of(layer_id);
    const uint64_t want = n_tokens * uint64_t(s.columns()) * row_bytes_of(s.format(), o);
    if (out_bytes != want)
      fail(Errc::invalid_argument, "layer ", layer_id, ": out_bytes is ", out_bytes, ", ", n_tokens,
           " tokens need ", want);
    if (n_tokens > 0 && !out) fail(Errc::invalid_argument, "out is NULL");
    const std::vector<int64_t> rows = s.rows_of(t, hash_values, n_tokens);
    if (rows.empty()) return;
    switch (o) {
      case RowOutput::f32:
        s.opened.store->gather_f32(t, rows, static_cast<float*>(out));
        break;
      case RowOutput::bf16:
        s.opened.store->gather_bf16(t, rows, static_cast<uint16_t*>(out));
        break;
      case RowOutput::packed:
        s.opened.store->gather_packed(t, rows, static_cast<std::byte*>(out));
        break;
    }
  });
}

extern "C" engram_status engram_store_get_stats(const engram_store* store,
                                                engram_store_stats* out) {
  return guard([&] {
    const engram_store& s = need(store, "store");
    need(out, "out");
    engram_store_stats st{};
    if (s.opened.cache) {
      const CacheStats c = s.opened.cache->cache_stats();
      st.cache_hits = c.hits;
      st.cache_misses = c.misses;
      st.cache_entries = c.entries;
      st.cache_capacity_rows = c.capacity_rows;
      st.cache_evictions = c.evictions;
    }
    const IoStats io = s.opened.file->io_stats();
    st.io_reads = io.reads;
    st.io_bytes = io.bytes;
    st.io_direct_reads = io.direct_reads;
    *out = st;
  });
}

// ---- Prefetch -----------------------------------------------------------------------------------

extern "C" engram_status engram_prefetch(engram_store* store, int64_t step,
                                         const engram_layer_request* requests, uint64_t n_requests,
                                         int32_t output, engram_ticket** out) {
  return guard([&] {
    engram_store& s = need(store, "store");
    need(out, "out");
    if (n_requests > 0 && !requests) fail(Errc::invalid_argument, "requests is NULL");
    const RowOutput o = row_output(output);
    const uint64_t token_bytes = uint64_t(s.columns()) * row_bytes_of(s.format(), o);
    auto t = std::make_unique<engram_ticket>();
    std::vector<LayerRequest> reqs;
    for (uint64_t i = 0; i < n_requests; ++i) {
      const engram_layer_request& r = requests[i];
      if (std::find(t->layer_ids.begin(), t->layer_ids.end(), r.layer_id) != t->layer_ids.end())
        fail(Errc::invalid_argument, "step ", step, ": layer ", r.layer_id, " is requested twice");
      const size_t table = s.table_of(r.layer_id);
      reqs.push_back({table, s.rows_of(table, r.hash_values, r.n_tokens)});
      t->layer_ids.push_back(r.layer_id);
      t->bytes.push_back(r.n_tokens * token_bytes);
    }
    t->ticket = s.prefetcher(o).prefetch(step, std::move(reqs));
    *out = t.release();
  });
}

extern "C" engram_status engram_ticket_wait(engram_ticket* ticket, int64_t layer_id) {
  return guard([&] {
    engram_ticket& t = need(ticket, "ticket");
    t.ticket.wait(t.index_of(layer_id));
  });
}

extern "C" engram_status engram_ticket_copy(engram_ticket* ticket, int64_t layer_id, void* out,
                                            uint64_t out_bytes) {
  return guard([&] {
    engram_ticket& t = need(ticket, "ticket");
    const size_t i = t.index_of(layer_id);
    if (out_bytes != t.bytes[i])
      fail(Errc::invalid_argument, "step ", t.ticket.step(), " layer ", layer_id, ": out_bytes is ",
           out_bytes, ", its rows take ", t.bytes[i]);
    if (out_bytes > 0 && !out) fail(Errc::invalid_argument, "out is NULL");
    const StagedRows rows = t.ticket.wait(i);
    if (rows.n * rows.row_bytes != out_bytes)
      fail(Errc::internal, "staged rows of layer ", layer_id, " take ", rows.n * rows.row_bytes,
           " bytes, expected ", out_bytes);
    if (out_bytes > 0) std::memcpy(out, rows.data, out_bytes);
  });
}

extern "C" engram_status engram_ticket_ready(const engram_ticket* ticket, int64_t layer_id,
                                             int32_t* ready) {
  return guard([&] {
    const engram_ticket& t = need(ticket, "ticket");
    need(ready, "ready");
    *ready = t.ticket.ready(t.index_of(layer_id)) ? 1 : 0;
  });
}

extern "C" engram_status engram_ticket_timing(const engram_ticket* ticket, int64_t layer_id,
                                              int64_t* fetch_ns, int64_t* wait_ns) {
  return guard([&] {
    const engram_ticket& t = need(ticket, "ticket");
    const LayerTiming lt = t.ticket.timing(t.index_of(layer_id));
    if (fetch_ns) *fetch_ns = lt.fetch_ns;
    if (wait_ns) *wait_ns = lt.wait_ns;
  });
}

extern "C" void engram_ticket_free(engram_ticket* ticket) {
  delete ticket;  // ~Ticket cancels what has not started; it does not block
}

// ---- Hashing ------------------------------------------------------------------------------------

extern "C" engram_status engram_hasher_open(const char* config_path, const char* tokenizer_path,
                                            engram_hasher** out) {
  return guard([&] {
    need(out, "out");
    if (!config_path) fail(Errc::invalid_argument, "config_path is NULL");
    if (!tokenizer_path) fail(Errc::invalid_argument, "tokenizer_path is NULL");
    EngramConfig c = config_at(config_path);
    TokenCompressor comp = TokenCompressor::from_tokenizer_file(tokenizer_path);
    c.check_compressed_vocab_size(comp.compressed_vocab_size(), tokenizer_path);
    auto h = std::make_unique<engram_hasher>();
    const int64_t cvs = comp.compressed_vocab_size();
    h->h = std::make_unique<NgramHasher>(std::move(c), comp.lookup(), cvs);
    *out = h.release();
  });
}

extern "C" engram_status engram_hasher_from_lookup(const char* config_path, const int64_t* lookup,
                                                   uint64_t lookup_size, engram_hasher** out) {
  return guard([&] {
    need(out, "out");
    if (!config_path) fail(Errc::invalid_argument, "config_path is NULL");
    if (!lookup || lookup_size == 0) fail(Errc::invalid_argument, "lookup is NULL or empty");
    EngramConfig c = config_at(config_path);
    TokenCompressor comp =
        TokenCompressor::from_lookup(std::vector<int64_t>(lookup, lookup + lookup_size));
    c.check_compressed_vocab_size(comp.compressed_vocab_size(), "the lookup");
    auto h = std::make_unique<engram_hasher>();
    const int64_t cvs = comp.compressed_vocab_size();
    h->h = std::make_unique<NgramHasher>(std::move(c), comp.lookup(), cvs);
    *out = h.release();
  });
}

extern "C" void engram_hasher_free(engram_hasher* hasher) {
  delete hasher;
}

extern "C" engram_status engram_hasher_get_info(const engram_hasher* hasher,
                                                engram_hasher_info* out) {
  return guard([&] {
    const NgramHasher& h = *need(hasher, "hasher").h;
    need(out, "out");
    engram_hasher_info i;
    i.num_layers = int64_t(h.layer_ids().size());
    i.columns = h.num_columns();
    i.max_ngram = h.max_ngram();
    i.vocab_size = h.vocab_size();
    i.compressed_vocab_size = h.compressed_vocab_size();
    *out = i;
  });
}

extern "C" engram_status engram_hasher_layer_id(const engram_hasher* hasher, int64_t index,
                                                int64_t* layer_id) {
  return guard([&] {
    const NgramHasher& h = *need(hasher, "hasher").h;
    need(layer_id, "layer_id");
    const auto& ids = h.layer_ids();
    if (index < 0 || uint64_t(index) >= ids.size())
      fail(Errc::out_of_range, "layer index ", index, " is outside [0, ", ids.size(), ")");
    *layer_id = ids[size_t(index)];
  });
}

extern "C" engram_status engram_hash_state_create(engram_hash_state** out) {
  return guard([&] {
    need(out, "out");
    *out = std::make_unique<engram_hash_state>().release();
  });
}

extern "C" void engram_hash_state_reset(engram_hash_state* state) {
  if (state) state->s = HashState{};
}

extern "C" engram_status engram_hash_state_copy(engram_hash_state* dst,
                                                const engram_hash_state* src) {
  return guard([&] { need(dst, "dst").s = need(src, "src").s; });
}

extern "C" engram_status engram_hash_state_position(const engram_hash_state* state,
                                                    int64_t* position) {
  return guard([&] { need(position, "position") = need(state, "state").s.seen; });
}

extern "C" void engram_hash_state_free(engram_hash_state* state) {
  delete state;
}

namespace {

void check_chunk(const int64_t* ids, uint64_t n, const int64_t* out, uint64_t out_len,
                 uint64_t want) {
  if (n > 0 && !ids) fail(Errc::invalid_argument, "ids is NULL");
  if (out_len != want)
    fail(Errc::invalid_argument, "out_len is ", out_len, ", a chunk of ", n, " tokens needs ",
         want);
  if (want > 0 && !out) fail(Errc::invalid_argument, "out is NULL");
}

std::span<const uint8_t> dead_span(const uint8_t* dead, uint64_t n) {
  return dead ? std::span<const uint8_t>(dead, n) : std::span<const uint8_t>();
}

}  // namespace

extern "C" engram_status engram_hash_chunk(const engram_hasher* hasher, engram_hash_state* state,
                                           const int64_t* ids, const uint8_t* dead, uint64_t n,
                                           int64_t* out, uint64_t out_len) {
  return guard([&] {
    const NgramHasher& h = *need(hasher, "hasher").h;
    HashState& st = need(state, "state").s;
    const uint64_t per_layer = n * uint64_t(h.num_columns());
    check_chunk(ids, n, out, out_len, per_layer * h.layer_ids().size());
    if (n == 0) return;
    std::span<const int64_t> raw(ids, n);
    for (size_t l = 0; l < h.layer_ids().size(); ++l)
      h.hash_chunk(st, h.layer_ids()[l], raw, std::span<int64_t>(out + l * per_layer, per_layer),
                   dead_span(dead, n));
    h.advance(st, raw, dead_span(dead, n));
  });
}

extern "C" engram_status engram_hash_chunk_layer(const engram_hasher* hasher,
                                                 const engram_hash_state* state, int64_t layer_id,
                                                 const int64_t* ids, const uint8_t* dead,
                                                 uint64_t n, int64_t* out, uint64_t out_len) {
  return guard([&] {
    const NgramHasher& h = *need(hasher, "hasher").h;
    const HashState& st = need(state, "state").s;
    h.layout(layer_id);  // an unknown layer fails before the sizes are judged
    check_chunk(ids, n, out, out_len, n * uint64_t(h.num_columns()));
    if (n == 0) return;
    h.hash_chunk(st, layer_id, std::span<const int64_t>(ids, n), std::span<int64_t>(out, out_len),
                 dead_span(dead, n));
  });
}

extern "C" engram_status engram_hash_advance(const engram_hasher* hasher, engram_hash_state* state,
                                             const int64_t* ids, const uint8_t* dead, uint64_t n) {
  return guard([&] {
    const NgramHasher& h = *need(hasher, "hasher").h;
    HashState& st = need(state, "state").s;
    if (n > 0 && !ids) fail(Errc::invalid_argument, "ids is NULL");
    if (n == 0) return;
    h.advance(st, std::span<const int64_t>(ids, n), dead_span(dead, n));
  });
}

// ---- Synthetic checkpoints ----------------------------------------------------------------------

extern "C" void engram_synthetic_options_init(engram_synthetic_options* opts) {
  if (!opts) return;
  const SyntheticV41Options d;
  opts->layer_ids = nullptr;
  opts->num_layer_ids = 0;
  opts->vocab_size = d.vocab_size;
  opts->compressed_vocab_size = d.compressed_vocab_size;
  opts->max_ngram = d.max_ngram;
  opts->n_heads = d.n_heads;
  opts->head_dim = d.head_dim;
  opts->hidden_size = d.hidden_size;
  opts->hc_mult = d.hc_mult;
  opts->shards = d.shards;
  opts->seed = d.seed;
}

extern "C" engram_status engram_write_synthetic_v41(const char* dir,
                                                    const engram_synthetic_options* opts) {
  return guard([&] {
    if (!dir) fail(Errc::invalid_argument, "dir is NULL");
    engram_synthetic_options o;
    engram_synthetic_options_init(&o);
    if (opts) o = *opts;
    SyntheticV41Options so;
    if (o.layer_ids) {
      if (o.num_layer_ids == 0) fail(Errc::invalid_argument, "layer_ids given with count 0");
      so.layer_ids.assign(o.layer_ids, o.layer_ids + o.num_layer_ids);
    }
    so.vocab_size = o.vocab_size;
    so.compressed_vocab_size = o.compressed_vocab_size;
    so.max_ngram = o.max_ngram;
    so.n_heads = o.n_heads;
    so.head_dim = o.head_dim;
    so.hidden_size = o.hidden_size;
    so.hc_mult = o.hc_mult;
    so.shards = o.shards;
    so.seed = o.seed;
    if (so.head_dim <= 0 || so.head_dim % kScaleBlock != 0)
      fail(Errc::invalid_argument, "head_dim ", so.head_dim, " is not a positive multiple of 32");
    if (so.hidden_size <= 0 || so.hc_mult <= 0 || so.n_heads <= 0)
      fail(Errc::invalid_argument, "hidden_size, hc_mult and n_heads must be positive");
    write_synthetic_v41(dir, so);
  });
}
