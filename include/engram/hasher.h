// engram/hasher.h: Engram's n-gram hashing, bit-exact with the public demo's NgramHashMapping
// and DeepSeek-V4.1's dead-token rule (DESIGN.md 2.2, 2.3).
//
// Data flow: raw token ids [B, T] -> compressed ids (a lookup table built by TokenCompressor;
// negative ids pass through) -> per layer, per position, one value per hash column:
//   x = compressed ids, pad' = lookup[pad_id]; lookback s uses x[t-s], or pad' once the walk
//   back from s = 0 has met a position before the start or a dead one (V4.1 image spans);
//   mix_n = (x[t]*m0) ^ (x[t-1]*m1) ^ ... ^ (x[t-n+1]*m_{n-1})   (int64)
//   column (n, h) = mix_n mod prime[n][h], non-negative (NumPy's floor modulo).
// Columns are n-gram-major: [(n=2, h=0..H-1), (n=3, h=0..H-1), ...].
// hash() returns those per-column values (the demo's hash()); hash_rows() adds each column's
// offset, giving rows of the layer's flat table [total_rows(layer), row_dim].
//
// Streaming: HashState carries the last max_ngram-1 compressed ids and dead flags of one
// sequence, so hashing a sequence chunk by chunk (decode, chunked prefill) gives the same values
// as hashing it whole; a HashState is a small value, so copying it is the snapshot for
// speculative decoding rollback.
//
// This header does not depend on the tokenizer: the caller passes the compressed lookup.
// Thread safety: a constructed NgramHasher is immutable except set_num_threads(); hash calls
// may run concurrently. Large inputs are split over OpenMP threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engram/config.h"

namespace engram {

// One Engram layer's tables (DESIGN.md 2.2). C = (max_ngram - 1) * n_head columns.
struct LayerHashLayout {
  int64_t layer_id = 0;
  std::vector<int64_t> primes;       // [C] rows of each column's table, n-gram-major
  std::vector<int64_t> offsets;      // [C] first row of each column: exclusive prefix sums
  std::vector<int64_t> multipliers;  // [max_ngram] odd multiplier of lookback s = 0..N-1
  int64_t total_rows = 0;            // sum of primes: rows of the layer's flat table
};

// The layout of every layer, in config order. Primes: one set shared by all layers; for each
// layer and order n the search starts at vocab_size_per_ngram[n-2] - 1 and each head takes the
// smallest unused prime above the previous one. Multipliers: default_rng(seed + 10007 * layer)
// .integers(0, max(1, ((2^63-1) // V') // 2), size=N) * 2 + 1 with V' = compressed_vocab_size.
// Throws Errc::mismatch when a V4.1 config's engram_num_embeddings disagree with the primes,
// Errc::invalid_argument when compressed_vocab_size < 1.
std::vector<LayerHashLayout> make_hash_layout(const EngramConfig& config,
                                              int64_t compressed_vocab_size);

// Per-column hash values of one layer -> rows of its flat table: values [n, C] (as hash()
// returns them) -> rows [n, C], rows[i, c] = values[i, c] + offsets[c]. Every front end that takes
// hash values (C API, Python, the CLI) converts them here. A value outside [0, primes[c]) throws
// Errc::out_of_range naming the layer, the token i and the column c; values.size() not a multiple
// of C, or rows.size() != values.size(), throws Errc::invalid_argument.
void hash_values_to_rows(const LayerHashLayout& layout, std::span<const int64_t> values,
                         std::span<int64_t> rows);
std::vector<int64_t> hash_values_to_rows(const LayerHashLayout& layout,
                                         std::span<const int64_t> values);

// Per-sequence streaming state. ids[k] / dead[k] describe position seen-1-k (k = 0 is the most
// recent), valid for k < min(seen, max_ngram - 1).
struct HashState {
  static constexpr int kHistory = EngramConfig::kMaxNgram - 1;
  std::array<int64_t, kHistory> ids{};  // compressed ids
  std::array<uint8_t, kHistory> dead{};
  int64_t seen = 0;  // positions consumed so far
};

namespace hash_detail {
struct LayerKernel;
}

class NgramHasher {
 public:
  // lookup: raw id -> compressed id, every value in [0, compressed_vocab_size).
  // Throws Errc::mismatch when config.compressed_vocab_size disagrees with
  // compressed_vocab_size, Errc::out_of_range when config.pad_id is not a raw id of lookup,
  // Errc::invalid_argument for a bad lookup.
  NgramHasher(EngramConfig config, std::vector<int64_t> lookup, int64_t compressed_vocab_size);
  NgramHasher(NgramHasher&&) noexcept;
  NgramHasher& operator=(NgramHasher&&) noexcept;
  ~NgramHasher();

  const EngramConfig& config() const { return config_; }
  const std::vector<int64_t>& layer_ids() const { return config_.layer_ids; }
  int max_ngram() const { return config_.max_ngram; }
  int64_t n_head() const { return config_.n_head; }
  int64_t num_columns() const { return config_.num_columns(); }
  int64_t vocab_size() const { return static_cast<int64_t>(lookup_.size()); }
  int64_t compressed_vocab_size() const { return compressed_vocab_size_; }
  int64_t pad_compressed() const { return pad_; }  // pad' = lookup[pad_id]
  const std::vector<int64_t>& lookup() const { return lookup_; }

  // Per layer; an id that is not an Engram layer throws Errc::out_of_range.
  const LayerHashLayout& layout(int64_t layer_id) const;
  std::span<const int64_t> primes(int64_t layer_id) const { return layout(layer_id).primes; }
  std::span<const int64_t> offsets(int64_t layer_id) const { return layout(layer_id).offsets; }
  std::span<const int64_t> multipliers(int64_t layer_id) const {
    return layout(layer_id).multipliers;
  }
  int64_t total_rows(int64_t layer_id) const { return layout(layer_id).total_rows; }

  // Whole sequences. raw_ids [B, T] row-major; dead [B, T] (nonzero = dead) or empty;
  // out [B, T, C]. A raw id >= vocab_size() at a live position throws Errc::out_of_range naming
  // (batch, position, value); negative ids pass through uncompressed, as in the demo; raw ids
  // at dead positions are not read. Spans of the wrong size throw Errc::invalid_argument.
  void hash(int64_t layer_id, std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
            std::span<int64_t> out, std::span<const uint8_t> dead = {}) const;
  void hash_rows(int64_t layer_id, std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                 std::span<int64_t> out, std::span<const uint8_t> dead = {}) const;

  // Every layer at once (one pass over the ids, one OpenMP region): outs[i] receives layer
  // layer_ids()[i], [B, T, C] each; add_offsets as in hash_rows(). The fastest way to hash a
  // step's ids for all layers; errors as in hash() (outs are then partly written).
  void hash_layers(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                   std::span<const std::span<int64_t>> outs, std::span<const uint8_t> dead,
                   bool add_offsets) const;

  // Compression and hashing as separate steps, for callers that keep compressed ids:
  // compress(): out [B, T] compressed ids (dead positions get pad').
  void compress(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                std::span<int64_t> out, std::span<const uint8_t> dead = {}) const;
  // hash_compressed(): compressed [B, T] -> out [B, T, C], with offsets when add_offsets.
  void hash_compressed(int64_t layer_id, std::span<const int64_t> compressed, int64_t batch,
                       int64_t time, std::span<int64_t> out, std::span<const uint8_t> dead,
                       bool add_offsets) const;

  // Streaming, one sequence. hash_chunk(): the chunk's positions continue state's sequence;
  // raw_ids [T], dead [T] or empty, out [T, C]. It does not change state: call advance() with the
  // same chunk once every layer is hashed. Error positions count from the sequence start.
  // advance() reads (and checks) only the chunk's last max_ngram-1 ids.
  void hash_chunk(const HashState& state, int64_t layer_id, std::span<const int64_t> raw_ids,
                  std::span<int64_t> out, std::span<const uint8_t> dead = {},
                  bool add_offsets = false) const;
  void advance(HashState& state, std::span<const int64_t> raw_ids,
               std::span<const uint8_t> dead = {}) const;

  // Threads for large inputs; 0 (the default) leaves the choice to OpenMP. Not to be changed
  // while another thread is hashing with this object.
  void set_num_threads(int n);
  int num_threads() const { return num_threads_; }

 private:
  size_t layer_index(int64_t layer_id) const;
  // hash_layers() for the kernels of `layers` (indices into layer_ids()), outs[i] for layers[i].
  void hash_fused(std::span<const int64_t> raw_ids, int64_t batch, int64_t time,
                  std::span<const size_t> layers, std::span<const std::span<int64_t>> outs,
                  std::span<const uint8_t> dead, bool add_offsets) const;
  // compress() for one streamed chunk; errors name the position in the whole sequence.
  void compress_chunk(std::span<const int64_t> raw_ids, std::span<const uint8_t> dead,
                      int64_t first_position, std::span<int64_t> out) const;

  EngramConfig config_;
  std::vector<int64_t> lookup_;
  int64_t compressed_vocab_size_ = 0;
  int64_t pad_ = 0;
  std::vector<LayerHashLayout> layouts_;
  std::vector<std::unique_ptr<hash_detail::LayerKernel>> kernels_;
  int num_threads_ = 0;
};

}  // namespace engram
