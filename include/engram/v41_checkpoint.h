// engram/v41_checkpoint.h: DeepSeek-V4.1 checkpoints as row stores, and synthetic ones.
//
// open_v41_checkpoint(dir) reads dir/config.json (V4.1 form, engram/config.h) and the weights
// (dir/model.safetensors.index.json with its shards, or a single dir/model.safetensors), then for
// every Engram layer L finds and validates, before any row is served:
//   layers.{L}.engram.embed.weight  F8_E4M3 [rows, head_dim]        rows = engram_num_embeddings
//   layers.{L}.engram.embed.scale   F8_E8M0 [rows, head_dim / 32]
//   layers.{L}.engram.wkv.weight    F8_E4M3 [(hc + 1) * hidden, columns * head_dim]
//   layers.{L}.engram.wkv.scale     F8_E8M0 [ceil(out / 32), ceil(in / 32)]
//   layers.{L}.engram.q_weight, .k_weight  F32 or BF16 [hc, hidden]
// (dtype, shape, byte span inside its shard, shard named by the index). A missing or wrong
// tensor is Errc::mismatch naming tensor, shard and what was expected. Rows are then served by
// a FileStore over the embed tensors in place (ids checked against rows on every gather).
//
// write_synthetic_v41(dir, ...) writes a checkpoint with exactly these names, dtypes and layout
// at reduced size (values random but deterministic per seed), optionally sharded with a layer's
// weight and scale in different shards; `sparse` leaves the embed tensors as holes of a sparse
// file, so the full V4.1 row count (~384M rows a layer) costs no disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engram/config.h"
#include "engram/safetensors.h"
#include "engram/store.h"

namespace engram {

struct V41Layer {
  int64_t layer_id = 0;
  int64_t rows = 0;
  TableSource table;  // embed.weight (data) and embed.scale (scale), as a row table
  const TensorInfo* wkv_weight = nullptr;
  const TensorInfo* wkv_scale = nullptr;
  const TensorInfo* q_weight = nullptr;
  const TensorInfo* k_weight = nullptr;
};

class V41Checkpoint {
 public:
  // Errc::io for unreadable files, Errc::parse for malformed ones, Errc::mismatch when a
  // tensor is missing or disagrees with config.json.
  static std::unique_ptr<V41Checkpoint> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const EngramConfig& config() const { return config_; }
  const SafetensorsCheckpoint& weights() const { return weights_; }
  const std::vector<V41Layer>& layers() const { return layers_; }
  // Table index of Engram layer `layer_id` in table_sources() / a store opened from them.
  size_t table_of_layer(int64_t layer_id) const;
  std::vector<TableSource> table_sources() const;

 private:
  std::string dir_;
  EngramConfig config_;
  SafetensorsCheckpoint weights_;
  std::vector<V41Layer> layers_;
};

struct SyntheticV41Options {
  std::vector<int64_t> layer_ids{1, 14};
  int64_t vocab_size = 1000;  // engram_vocab_size: prime-search start (V4.1: 16,000,000)
  int max_ngram = 4;
  int64_t n_heads = 8;
  int64_t head_dim = 256;
  int64_t hidden_size = 64;  // V4.1's is far larger; only wkv / q / k depend on it
  int64_t hc_mult = 4;
  int64_t compressed_vocab_size = 99092;
  int shards = 3;  // 1 writes model.safetensors without an index
  bool sparse = false;
  uint64_t seed = 0;
};

// Writes config.json, the shards and the index into `dir` (created if needed). Returns the rows
// of each layer (sum of its column primes, as NgramHasher lays them out).
std::vector<int64_t> write_synthetic_v41(const std::string& dir, const SyntheticV41Options& opt);

}  // namespace engram
