// Hash layout (primes, offsets, multipliers) and NgramHasher: input checks, id compression,
// OpenMP split of the fast kernel, and the streaming state.
#include "engram/hasher.h"

#include <algorithm>
#include <unordered_set>

#include "engram/error.h"
#include "hash/hash_kernels.h"
#include "hash/numpy_rng.h"
#include "hash/primes.h"
#include "util/token_ids.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace engram {

using hash_detail::History;
using hash_detail::LayerKernel;

namespace {

// Below this many positions a call stays on the calling thread.
[[maybe_unused]] constexpr int64_t kParallelMinPositions = 8192;
// Positions per OpenMP work item: enough to amortize the scheduling, small enough to balance.
constexpr int64_t kChunkPositions = 2048;

void check_size(const char* what, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) != want) {
    fail(Errc::invalid_argument, "NgramHasher: ", what, " has ", got, " elements, expected ", want);
  }
}

int64_t checked_product(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
    fail(Errc::invalid_argument, "NgramHasher: bad ", what, " shape ", a, " x ", b);
  }
  return r;
}

int thread_count(int requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

}  // namespace

void hash_values_to_rows(const LayerHashLayout& layout, std::span<const int64_t> values,
                         std::span<int64_t> rows) {
  const size_t C = layout.primes.size();
  if (C == 0 || values.size() % C != 0)
    fail(Errc::invalid_argument, "layer ", layout.layer_id, ": ", values.size(),
         " hash values are not whole tokens of ", C, " columns");
  if (rows.size() != values.size())
    fail(Errc::invalid_argument, "layer ", layout.layer_id, ": ", values.size(),
         " hash values need as many rows, got room for ", rows.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t c = i % C;
    const int64_t v = values[i];
    if (v < 0 || v >= layout.primes[c])
      fail(Errc::out_of_range, "layer ", layout.layer_id, ": hash value ", v, " of token ", i / C,
           ", column ", c, " is outside [0, ", layout.primes[c], ")");
    rows[i] = v + layout.offsets[c];
  }
}

std::vector<int64_t> hash_values_to_rows(const LayerHashLayout& layout,
                                         std::span<const int64_t> values) {
  std::vector<int64_t> rows(values.size());
  hash_values_to_rows(layout, values, rows);
  return rows;
}

std::vector<LayerHashLayout> make_hash_layout(const EngramConfig& config,
                                              int64_t compressed_vocab_size) {
  if (compressed_vocab_size < 1) {
    fail(Errc::invalid_argument, "hash layout: compressed vocabulary size ", compressed_vocab_size,
         " < 1");
  }
  const int n = config.max_ngram;
  if (n < 2 || n > EngramConfig::kMaxNgram || config.n_head < 1 ||
      config.vocab_size_per_ngram.size() != static_cast<size_t>(n - 1)) {
    fail(Errc::invalid_argument, config.origin, ": inconsistent Engram config (max_ngram ", n, ", ",
         config.vocab_size_per_ngram.size(), " vocab sizes, ", config.n_head, " heads)");
  }
  // Multiplier bound: odd m = 2r + 1 <= (2^63-1) // V', so x * m cannot overflow for x < V'.
  const int64_t half_bound = std::max<int64_t>(1, (INT64_MAX / compressed_vocab_size) / 2);
  std::vector<LayerHashLayout> layouts;
  std::unordered_set<int64_t> used;
  for (size_t li = 0; li < config.layer_ids.size(); ++li) {
    LayerHashLayout layer;
    layer.layer_id = config.layer_ids[li];
    for (int order = 2; order <= n; ++order) {
      int64_t start = config.vocab_size_per_ngram[static_cast<size_t>(order - 2)] - 1;
      for (int64_t h = 0; h < config.n_head; ++h) {
        const int64_t prime = hash_detail::next_unused_prime(start, used);
        used.insert(prime);
        layer.primes.push_back(prime);
        start = prime;
      }
    }
    int64_t total = 0;
    for (int64_t p : layer.primes) {
      layer.offsets.push_back(total);
      if (__builtin_add_overflow(total, p, &total)) {
        fail(Errc::out_of_range, config.origin, ": layer ", layer.layer_id,
             " needs more than 2^63 table rows");
      }
    }
    layer.total_rows = total;
    if (!config.num_embeddings.empty() && config.num_embeddings[li] != total) {
      fail(Errc::mismatch, config.origin, ": engram_num_embeddings[", li, "] for layer ",
           layer.layer_id, " is ", config.num_embeddings[li], " but the prime layout gives ", total,
           " rows (engram_vocab_size, engram_n_heads or engram_max_ngram_size disagree with the "
           "checkpoint)");
    }
    const unsigned __int128 seed =
        static_cast<unsigned __int128>(config.seed) +
        static_cast<unsigned __int128>(10007) * static_cast<unsigned __int128>(layer.layer_id);
    Pcg64 rng = Pcg64::from_seed(seed);
    for (int64_t r : integers_i64(rng, 0, half_bound, n)) layer.multipliers.push_back(r * 2 + 1);
    layouts.push_back(std::move(layer));
  }
  return layouts;
}

NgramHasher::NgramHasher(EngramConfig config, std::vector<int64_t> lookup,
                         int64_t compressed_vocab_size)
    : config_(std::move(config)),
      lookup_(std::move(lookup)),
      compressed_vocab_size_(compressed_vocab_size) {
  if (compressed_vocab_size_ < 1) {
    fail(Errc::invalid_argument, "NgramHasher: compressed vocabulary size ", compressed_vocab_size_,
         " < 1");
  }
  config_.check_compressed_vocab_size(compressed_vocab_size_, "lookup table");
  for (size_t i = 0; i < lookup_.size(); ++i) {
    if (lookup_[i] < 0 || lookup_[i] >= compressed_vocab_size_) {
      fail(Errc::invalid_argument, "NgramHasher: lookup[", i, "] = ", lookup_[i],
           " is outside the compressed vocabulary [0, ", compressed_vocab_size_, ")");
    }
  }
  if (config_.pad_id >= static_cast<int64_t>(lookup_.size())) {
    fail(Errc::out_of_range, config_.origin, ": pad id ", config_.pad_id,
         " is not a token of the tokenizer (", lookup_.size(), " ids)");
  }
  pad_ = lookup_[static_cast<size_t>(config_.pad_id)];
  layouts_ = make_hash_layout(config_, compressed_vocab_size_);
  for (const LayerHashLayout& layout : layouts_) {
    kernels_.push_back(
        std::make_unique<LayerKernel>(layout, config_.max_ngram, config_.n_head, pad_));
  }
}

NgramHasher::NgramHasher(NgramHasher&&) noexcept = default;
NgramHasher& NgramHasher::operator=(NgramHasher&&) noexcept = default;
NgramHasher::~NgramHasher() = default;

size_t NgramHasher::layer_index(int64_t layer_id) const {
  const auto& ids = config_.layer_ids;
  const auto it = std::lower_bound(ids.begin(), ids.end(), layer_id);
  if (it == ids.end() || *it != layer_id) {
    std::string known;
    for (int64_t id : ids) known += (known.empty() ? "" : ", ") + std::to_string(id);
    fail(Errc::out_of_range, "layer ", layer_id, " is not an Engram layer (layers: ", known, ")");
  }
  return static_cast<size_t>(it - ids.begin());
}

const LayerHashLayout& NgramHasher::layout(int64_t layer_id) const {
  return layouts_[layer_index(layer_id)];
}

void NgramHasher::set_num_threads(int n) {
  if (n < 0) fail(Errc::invalid_argument, "NgramHasher: negative thread count ", n);
  num_threads_ = n;
}

void NgramHasher::compress(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                           std::span<int64_t> out, std::span<const uint8_t> dead) const {
  const int64_t total = checked_product(batch, time, "input");
  check_size("raw_ids", raw_ids.size(), total);
  check_size("compressed output", out.size(), total);
  if (!dead.empty()) check_size("dead mask", dead.size(), total);
  const int64_t vocab = vocab_size();
  const int64_t* lookup = lookup_.data();
  const int64_t* in = raw_ids.data();
  const uint8_t* dm = dead.empty() ? nullptr : dead.data();
  int64_t* dst = out.data();
  int64_t first_bad = total;  // smallest flat index of an id >= vocab at a live position
  [[maybe_unused]] const int threads = thread_count(num_threads_);
#pragma omp parallel for schedule(static)                                                 \
    num_threads(threads) if (threads > 1 && total >= kParallelMinPositions) reduction(min \
                                                                                      : first_bad)
  for (int64_t i = 0; i < total; ++i) {
    const int64_t id = in[i];
    if (dm != nullptr && dm[i]) {
      dst[i] = pad_;
    } else if (id < 0) {
      dst[i] = id;  // padding / mask ids pass through, as in the demo
    } else if (id < vocab) {
      dst[i] = lookup[id];
    } else {
      dst[i] = 0;
      first_bad = std::min(first_bad, i);
    }
  }
  if (first_bad < total) {
    fail_token_id(in[first_bad], batch_position(first_bad, time), vocab, IdUse::hash);
  }
}

void NgramHasher::hash_compressed(int64_t layer_id, std::span<const int64_t> compressed,
                                  int64_t batch, int64_t time, std::span<int64_t> out,
                                  std::span<const uint8_t> dead, bool add_offsets) const {
  const LayerKernel& kernel = *kernels_[layer_index(layer_id)];
  const int64_t total = checked_product(batch, time, "input");
  const int64_t columns = num_columns();
  check_size("compressed ids", compressed.size(), total);
  check_size("hash output", out.size(), checked_product(total, columns, "output"));
  if (!dead.empty()) check_size("dead mask", dead.size(), total);
  if (total == 0) return;
  const int64_t chunks_per_row = (time + kChunkPositions - 1) / kChunkPositions;
  const int64_t items = batch * chunks_per_row;
  [[maybe_unused]] const int threads = thread_count(num_threads_);
  const int64_t* x = compressed.data();
  const uint8_t* dm = dead.empty() ? nullptr : dead.data();
  int64_t* dst = out.data();
#pragma omp parallel for schedule(static) \
    num_threads(threads) if (threads > 1 && total >= kParallelMinPositions)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t b = item / chunks_per_row;
    const int64_t t0 = (item % chunks_per_row) * kChunkPositions;
    const int64_t t1 = std::min(time, t0 + kChunkPositions);
    hash_detail::hash_row_fast(kernel, x + b * time, dm ? dm + b * time : nullptr, t0, t1,
                               History{}, dst + b * time * columns, add_offsets);
  }
}

void NgramHasher::hash_layers(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                              std::span<const std::span<int64_t>> outs,
                              std::span<const uint8_t> dead, bool add_offsets) const {
  check_size("output list", outs.size(), static_cast<int64_t>(layouts_.size()));
  std::vector<size_t> all(layouts_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  hash_fused(raw_ids, batch, time, all, outs, dead, add_offsets);
}

void NgramHasher::hash_fused(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                             std::span<const size_t> layers,
                             std::span<const std::span<int64_t>> outs,
                             std::span<const uint8_t> dead, bool add_offsets) const {
  const int64_t total = checked_product(batch, time, "input");
  const int64_t columns = num_columns();
  check_size("raw_ids", raw_ids.size(), total);
  for (const auto& out : outs) {
    check_size("hash output", out.size(), checked_product(total, columns, "output"));
  }
  if (!dead.empty()) check_size("dead mask", dead.size(), total);
  if (total == 0) return;
  // Work items are chunks of one row. Each compresses its chunk plus the max_ngram-1 positions
  // before it into a private buffer, then hashes every layer from there: no barrier, and the
  // ids stay in L1 across layers.
  const int64_t history = config_.max_ngram - 1;
  const int64_t chunks_per_row = (time + kChunkPositions - 1) / kChunkPositions;
  const int64_t items = batch * chunks_per_row;
  const int64_t vocab = vocab_size();
  const int64_t* lookup = lookup_.data();
  const int64_t* in = raw_ids.data();
  const uint8_t* dm = dead.empty() ? nullptr : dead.data();
  int64_t first_bad = total;  // smallest flat index of an id >= vocab at a live position
  [[maybe_unused]] const int threads = thread_count(num_threads_);
#pragma omp parallel num_threads(threads) if (threads > 1 && total >= kParallelMinPositions)
  {
    std::vector<int64_t> local(static_cast<size_t>(kChunkPositions + history));
#pragma omp for schedule(static) reduction(min : first_bad)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / chunks_per_row;
      const int64_t t0 = (item % chunks_per_row) * kChunkPositions;
      const int64_t t1 = std::min(time, t0 + kChunkPositions);
      const int64_t lead = std::min(t0, history);  // positions before t0 kept for lookbacks
      const int64_t begin = b * time + t0 - lead, count = t1 - t0 + lead;
      bool ok = true;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t id = in[begin + i];
        if (dm != nullptr && dm[begin + i]) {
          local[static_cast<size_t>(i)] = pad_;
        } else if (id < 0) {
          local[static_cast<size_t>(i)] = id;  // padding / mask ids pass through, as in the demo
        } else if (id < vocab) {
          local[static_cast<size_t>(i)] = lookup[id];
        } else {
          first_bad = std::min(first_bad, begin + i);
          ok = false;
        }
      }
      if (!ok) continue;
      // Local position i is row position t0 - lead + i; when lead < history, local 0 is the row
      // start and the kernel pads before it.
      for (size_t li = 0; li < layers.size(); ++li) {
        hash_detail::hash_row_fast(*kernels_[layers[li]], local.data(), dm ? dm + begin : nullptr,
                                   lead, count, History{}, outs[li].data() + begin * columns,
                                   add_offsets);
      }
    }
  }
  if (first_bad < total) {
    fail_token_id(in[first_bad], batch_position(first_bad, time), vocab, IdUse::hash);
  }
}

void NgramHasher::hash(int64_t layer_id, std::span<const int64_t> raw_ids, int64_t batch,
                       int64_t time, std::span<int64_t> out, std::span<const uint8_t> dead) const {
  const size_t layer = layer_index(layer_id);
  const std::span<int64_t> outs[] = {out};
  hash_fused(raw_ids, batch, time, {&layer, 1}, outs, dead, /*add_offsets=*/false);
}

void NgramHasher::hash_rows(int64_t layer_id, std::span<const int64_t> raw_ids, int64_t batch,
                            int64_t time, std::span<int64_t> out,
                            std::span<const uint8_t> dead) const {
  const size_t layer = layer_index(layer_id);
  const std::span<int64_t> outs[] = {out};
  hash_fused(raw_ids, batch, time, {&layer, 1}, outs, dead, /*add_offsets=*/true);
}

void NgramHasher::compress_chunk(std::span<const int64_t> raw_ids, std::span<const uint8_t> dead,
                                 int64_t first_position, std::span<int64_t> out) const {
  const int64_t vocab = vocab_size();
  for (size_t t = 0; t < raw_ids.size(); ++t) {
    const int64_t id = raw_ids[t];
    if (!dead.empty() && dead[t]) {
      out[t] = pad_;
    } else if (id < 0) {
      out[t] = id;
    } else if (id < vocab) {
      out[t] = lookup_[static_cast<size_t>(id)];
    } else {
      fail_token_id(id,
                    "sequence position " + std::to_string(first_position + static_cast<int64_t>(t)),
                    vocab, IdUse::hash);
    }
  }
}

void NgramHasher::hash_chunk(const HashState& state, int64_t layer_id,
                             std::span<const int64_t> raw_ids, std::span<int64_t> out,
                             std::span<const uint8_t> dead, bool add_offsets) const {
  const LayerKernel& kernel = *kernels_[layer_index(layer_id)];
  const int64_t time = static_cast<int64_t>(raw_ids.size());
  check_size("hash output", out.size(), checked_product(time, num_columns(), "output"));
  if (!dead.empty()) check_size("dead mask", dead.size(), time);
  std::vector<int64_t> compressed(raw_ids.size());
  compress_chunk(raw_ids, dead, state.seen, compressed);
  const History history{state.ids.data(), state.dead.data(),
                        std::min<int64_t>(state.seen, config_.max_ngram - 1)};
  hash_detail::hash_row_fast(kernel, compressed.data(), dead.empty() ? nullptr : dead.data(), 0,
                             time, history, out.data(), add_offsets);
}

void NgramHasher::advance(HashState& state, std::span<const int64_t> raw_ids,
                          std::span<const uint8_t> dead) const {
  const int64_t time = static_cast<int64_t>(raw_ids.size());
  if (!dead.empty()) check_size("dead mask", dead.size(), time);
  const int keep = config_.max_ngram - 1;
  // Only the last `keep` positions of the chunk can matter; compress just those (validated).
  const int64_t tail = std::min<int64_t>(time, keep);
  std::vector<int64_t> compressed(static_cast<size_t>(tail));
  std::span<const uint8_t> tail_dead = dead.empty() ? dead : dead.subspan(time - tail);
  compress_chunk(raw_ids.subspan(time - tail), tail_dead, state.seen + time - tail, compressed);
  // Shift the history by tail positions, then write the new ones (most recent at index 0).
  for (int k = keep - 1; k >= tail; --k) {
    state.ids[k] = state.ids[k - tail];
    state.dead[k] = state.dead[k - tail];
  }
  for (int64_t k = 0; k < tail; ++k) {
    const size_t src = static_cast<size_t>(tail - 1 - k);
    state.ids[k] = compressed[src];
    state.dead[k] = tail_dead.empty() ? 0 : (tail_dead[src] != 0);
  }
  state.seen += time;
}

}  // namespace engram
