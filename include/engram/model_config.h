// engram/model_config.h: the configuration of engram::Model (engram/model.h): backbone sizes,
// the mixture of experts, and the Engram layers as a typed config, read from and written to the
// model's config.json (ModelConfig::from_json / to_json; the keys are the field names, "moe" and
// "engram" nested objects, "engram" in the demo form of engram/config.h plus "compress_tokens").
// Errors: bad JSON, unknown keys, wrong types and inconsistent sizes throw engram::Error naming
// the key and the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engram/config.h"

namespace engram {

struct MoeOptions {
  int64_t n_experts = 0;          // 0: dense SwiGLU MLP
  int64_t top_k = 2;              // experts per token
  int64_t expert_ffn_hidden = 0;  // hidden size of each routed expert
  int64_t shared_ffn_hidden = 0;  // hidden size of the shared expert; 0: none
  bool norm_topk_prob = false;    // renormalize the k gates to sum 1
  float aux_loss_coef = 0.01f;    // alpha of the load-balancing loss
};

// The "engram" object of a model config: the demo-form Engram config of engram/config.h (its
// layer_ids pick the layers; empty: no Engram) plus the model's own compression settings.
// Parsed once by ModelConfig::from_json, written back by to_json in the same form.
struct EngramOptions : EngramConfig {
  bool compress_tokens = false;  // JSON "compress_tokens": hash compressed ids (see above)
  // Raw id -> compressed id, vocab_size entries (not JSON: from tokenizer_compress_lookup() for a
  // new model, from model.safetensors on load). Required when compress_tokens is set.
  std::vector<int64_t> compress_lookup;
};

class Tokenizer;
// The tokenizer's compression lookup (TokenCompressor) extended to vocab_size ids: ids the
// tokenizer does not have (vocab_size may round it up) get compressed ids of their own.
// Errc::mismatch when the tokenizer has more ids than vocab_size.
std::vector<int64_t> tokenizer_compress_lookup(const Tokenizer& tokenizer, int64_t vocab_size);

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;  // C
  int64_t n_layers = 0;
  int64_t n_heads = 0;     // H; head_dim D = hidden_size / n_heads
  int64_t n_kv_heads = 0;  // KV; divides n_heads; 0 in JSON means n_heads
  int64_t ffn_hidden = 0;  // F of the dense SwiGLU MLP
  int64_t max_seq_len = 0;
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  bool tie_word_embeddings = false;
  MoeOptions moe;
  EngramOptions engram;

  // Limits on single sizes, far above any real model, so that a hostile or mistyped config is
  // refused by name before any product of sizes is formed.
  static constexpr int64_t kMaxDim = int64_t{1} << 24;      // hidden_size, ffn_hidden, ...
  static constexpr int64_t kMaxLayers = int64_t{1} << 16;   // n_layers
  static constexpr int64_t kMaxSeqLen = int64_t{1} << 24;   // max_seq_len
  static constexpr int64_t kMaxExperts = int64_t{1} << 16;  // moe.n_experts

  int64_t head_dim() const { return hidden_size / n_heads; }

  // Parameters the config implies (Engram tables and projections included), in checked
  // arithmetic: Errc::invalid_argument naming the keys of a product that overflows.
  int64_t param_count(const std::string& where = "config") const;
  // Estimated bytes a Model of this config holds (weights, gradients, RoPE tables).
  int64_t model_bytes(const std::string& where = "config") const;
  // Estimated bytes training needs at `batch` windows of `seq` tokens: model_bytes() plus the
  // AdamW state and the activations kept for the backward pass.
  int64_t train_bytes(int64_t batch, int64_t seq, const std::string& where = "config") const;
  // Estimated bytes of the activations a forward and backward pass over `batch` windows of `seq`
  // tokens keeps (part of train_bytes(); evaluation needs no more).
  int64_t activation_bytes(int64_t batch, int64_t seq, const std::string& where = "config") const;
  // Refuses (Errc::invalid_argument) an estimate above the machine's physical memory, naming
  // the estimate, the memory and the keys of the largest term. `what` says what is estimated.
  void check_memory(int64_t bytes, const std::string& what, const std::string& where) const;

  // validate() also bounds every size (kMax* above) and refuses a model whose estimated
  // model_bytes() exceed the machine's physical memory.
  // Parses the JSON object described in docs (keys as the fields above; "moe" and "engram" are
  // nested objects, "engram" in the demo form of engram/config.h plus "compress_tokens").
  // Unknown keys, wrong types and inconsistent sizes throw Errc::parse /
  // Errc::invalid_argument naming the key; `where` names the source (a file path) in messages.
  static ModelConfig from_json(const std::string& json_text, const std::string& where = "config");
  std::string to_json() const;
  void validate(const std::string& where = "config") const;
};

// A new model's config from the JSON file at `path`, with engram.compress_lookup built from
// `tokenizer` when the config sets compress_tokens (what Model(config, seed) then needs).
ModelConfig new_model_config(const std::string& path, const Tokenizer& tokenizer);

}  // namespace engram
