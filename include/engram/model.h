// engram/model.h: a decoder-only transformer for fp32 training and generation on CPU.
//
// Architecture (Llama-style): token embedding -> n_layers x [RMSNorm -> causal multi-head
// attention with RoPE (rotate-half convention, grouped KV heads allowed) -> residual add ->
// RMSNorm -> SwiGLU MLP or mixture-of-experts FFN -> residual add] -> RMSNorm -> LM head (tied to
// the embedding or not) -> cross-entropy. Linear layers have no bias.
//
// Parameters live in one contiguous fp32 allocation (gradients in a second one with the same
// layout) and are addressed by Hugging Face-style names, e.g. `model.embed_tokens.weight`,
// `model.layers.{i}.self_attn.q_proj.weight` [H*D, C], `model.layers.{i}.mlp.gate_proj.weight`
// [F, C], `model.norm.weight`, `lm_head.weight` (absent when tied). Activations for training
// live in one arena sized from (B, T) at the first forward and re-sized when (B, T) changes.
//
// Mixture of experts (config.moe.n_experts > 0, every layer): router logits = x W_r^T (E, C),
// p = softmax(logits), the top-k experts by p are run (gates = their p, renormalized to sum 1
// if moe.norm_topk_prob), plus an always-on shared expert when moe.shared_ffn_hidden > 0:
//   y = shared(x) + sum_{s<k} gate_s * expert_{idx_s}(x).
// Load-balancing loss (Switch Transformer / DeepSeekMoE expert-level balance), per layer:
//   aux = alpha * E * sum_e f_e * P_e,  f_e = (#(token, slot) pairs routed to e) / (N * k),
//   P_e = (1/N) sum_n p[n, e];  f is treated as a constant (no gradient), as in both papers.
// The training loss is mean cross-entropy + sum of the layers' aux losses.
//
// Engram layers (config.engram: the demo-form Engram config of engram/config.h, whose layer_ids
// pick the layers): in layer l, before attention, x <- x + Engram_l(x, hash_l(ids)) (the demo's
// block; hc_mult 1). Token ids are hashed after vocabulary compression: with
// "compress_tokens": true in the engram object, through the tokenizer's TokenCompressor lookup
// (engram/compressor.h: NFKC, accents, case and spacing folded), which the model keeps as the
// I64 tensor `model.engram.compress_lookup` [vocab_size] in model.safetensors; without it, the
// identity (compressed id = token id). Engram parameters are named
// `model.layers.{l}.engram.<demo state_dict name>`; they live in each layer's own allocation
// (ParamInfo.offset = -1), and the table's gradient is sparse (engram_tables()).
//
// Errors: bad config JSON, token ids outside [0, vocab), T > max_seq_len, unknown parameter names
// and shape mismatches throw engram::Error naming what and where. Not thread-safe: one model,
// one caller at a time (the kernels parallelize internally with OpenMP and OpenBLAS threads).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engram/model_config.h"

namespace engram {

class RowStore;
struct PrefetchOptions;
struct TableSource;

// One named tensor inside the parameter allocation.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // in floats, into params() and grads(); -1 for Engram tensors
  int64_t numel = 0;
  bool weight_decay = false;  // AdamW rule: 2-D projection matrices decay; norms, embeddings don't
};

// A parameter tensor and its gradient, as the optimizer sees them.
struct ParamSpan {
  float* param;
  float* grad;
  int64_t numel;
  bool weight_decay;
};

// Where decode time went while Engram rows came from a store (Model::serve_engram_from), summed
// over the decode steps since the last reset_decode_stats().
struct DecodeStats {
  int64_t steps = 0;
  int64_t step_ns = 0;   // wall time inside decode_step
  int64_t wait_ns = 0;   // blocked waiting for rows (every Engram layer)
  int64_t fetch_ns = 0;  // prefetch() to rows in, summed over Engram layers
  int64_t ahead_ns = 0;  // prefetch() to the first Engram layer's wait: compute the fetch overlaps
};

// An Engram table and the sparse gradient of the last backward (rows ascending, distinct).
struct EngramTableView {
  int64_t layer;     // the model layer it belongs to
  std::string name;  // engram_table_param_name(layer)
  float* table;      // (rows, width)
  int64_t rows, width;
  std::span<const int64_t> grad_rows;  // (n)
  std::span<float> grad_values;        // (n, width)
};

// Name of Engram layer `layer`'s table in files and stores: "layers.{layer}.engram.table".
std::string engram_store_table_name(int64_t layer);
// Its parameter name: "model.layers.{layer}.engram.multi_head_embedding.embedding.weight".
std::string engram_table_param_name(int64_t layer);

class Model {
 public:
  // Initializes weights deterministically from `seed`: projections ~ N(0, 0.02), the output
  // projections (o_proj, down_proj) ~ N(0, 0.02 / sqrt(2 n_layers)), norms = 1.
  explicit Model(const ModelConfig& config, uint64_t seed = 0);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // A Hugging Face-style directory: config.json and model.safetensors (F32, every parameter by
  // name). save() creates the directory and replaces both files atomically; load() refuses a
  // missing, extra, mis-shaped or non-F32 tensor (Errc::mismatch / unsupported, naming it) and
  // unreadable files (Errc::io). tokenizer.json is the caller's to copy alongside.
  void save(const std::string& dir);
  static Model load(const std::string& dir);

  const ModelConfig& config() const;
  const std::vector<ParamInfo>& param_infos() const;
  const ParamInfo& param_info(const std::string& name) const;  // throws Errc::out_of_range
  std::span<float> params();  // all backbone parameters, contiguous (Engram's are separate)
  std::span<float> grads();   // all backbone gradients, same layout
  std::span<float> param(const std::string& name);
  // Dense gradient; throws Errc::invalid_argument for an Engram table (see engram_tables()).
  std::span<float> grad(const std::string& name);
  // One per dense tensor (backbone and Engram, tables excluded), for AdamW.
  std::vector<ParamSpan> param_spans();
  std::vector<EngramTableView> engram_tables();
  // Engram hash ids of layer `layer` for ids (B, T): out (B, T, columns), per-column values
  // before the column offsets (what the torch reference's MultiHeadEmbedding takes).
  std::vector<int64_t> engram_hash_ids(int64_t layer, const int32_t* ids, int64_t B, int64_t T);
  // Global L2 norm of every gradient of a trained parameter (backbone, Engram dense, Engram table
  // rows); when above max_norm, every one of them is scaled in place by max_norm / (norm + 1e-6)
  // (torch.nn.utils.clip_grad_norm_ over all the model's parameters). Returns the norm before.
  float clip_grad_norm(float max_norm);

  // Training forward: ids, targets (B, T) row-major; a negative target is ignored. Returns the
  // training loss (mean cross-entropy over counted positions + MoE aux losses); keeps what
  // backward() needs.
  float forward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T);
  // Inference forward: fills logits() (B, T, V).
  void forward(const int32_t* ids, int64_t B, int64_t T);
  // (B, T, V) logits of the last forward; invalid after backward() (reused for gradients).
  std::span<const float> logits() const;
  float last_ce_loss() const;   // mean cross-entropy of the last training forward
  float last_aux_loss() const;  // sum of MoE load-balancing losses of the last forward

  void zero_grad();
  // Accumulates (+=) the gradient of the last training forward's loss into grads().
  void backward();

  // Generation with a KV cache, batch 1: feeds one token at position cache_length() and returns
  // its logits (V), valid until the next call. Throws once max_seq_len positions are used.
  std::span<const float> decode_step(int32_t token);
  void reset_cache();
  int64_t cache_length() const;
  // decode_step over tokens in turn (same state, same logits bit for bit); returns the last
  // one's logits. When Engram rows come from a store, the rows of all the tokens are fetched at
  // once before the first step. Checks every token and the room left in the cache first.
  std::span<const float> decode_prompt(std::span<const int32_t> tokens);

  // ---- Engram tables served from a row store while decoding ----------------------------------
  // Writes every Engram table (F32) to the safetensors file `path`, atomically (see
  // save_safetensors): tensor "layers.{l}.engram.table" [rows, row_width] for each Engram layer
  // l, row = hash id + column offset (the flat table of the hasher's layout).
  // Errc::invalid_argument if the model has no Engram layer; Errc::io on a write error (no file
  // left behind).
  void export_engram_tables(const std::string& path);
  // One TableSource per Engram layer, in layer order, over a file export_engram_tables wrote
  // (for FileStore::open). Each tensor is checked against this model: missing, not F32 or
  // mis-shaped is Errc::mismatch naming the file and tensor.
  std::vector<TableSource> engram_table_sources(const std::string& path) const;
  // From the next decode_step on, Engram rows come from `store` (tables named as above, checked
  // now: Errc::mismatch naming the table) through a Prefetcher: at step entry the token is hashed
  // (streamed, with the lookback state), every Engram layer's fetch starts at once, the layers
  // before the first Engram layer run, and each Engram layer waits only for its own rows. Logits
  // are bit-identical to the resident tables'. A store error (I/O, id out of range) is thrown by
  // decode_step as engram::Error; the sequence is then lost: decode_step refuses to continue it
  // (Errc::invalid_argument) until reset_cache(). Training forward/backward never use the store.
  // options.threads == 0 gathers inline instead, on the calling thread at step entry, with no
  // Prefetcher: for tiers whose gather costs less than handing it to a worker (DRAM).
  void serve_engram_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options);
  void serve_engram_resident();  // back to the layers' own tables
  bool engram_served() const;
  DecodeStats decode_stats() const;
  void reset_decode_stats();

  // Matmul FLOPs of one training step (forward + backward) over B*T tokens: 6 * (active
  // projection parameters, Engram's value/key projections included) * tokens + attention's
  // 6 * L * B * H * D * T * (T+1) (QK^T and PV over the causal half, backward twice forward).
  double train_flops(int64_t B, int64_t T) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engram
