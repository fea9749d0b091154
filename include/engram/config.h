// engram/config.h: Engram's hyper-parameters, read from JSON in either of two forms.
//
//  - demo form: the public demo's EngramConfig dataclass written as JSON
//      {"engram_vocab_size": [V2, V3, ...], "max_ngram_size": N, "n_embed_per_ngram": E,
//       "n_head_per_ngram": H, "layer_ids": [...], "pad_id": P, "seed": S, "kernel_size": K}
//    plus, optionally, the demo's backbone keys "hidden_size", "hc_mult", "vocab_size",
//    "num_layers", and "tokenizer_name_or_path" (ignored). Any other key is refused.
//  - DeepSeek-V4.1 form: a model config.json (top level or under "text_config") with
//      engram_layer_ids, engram_num_embeddings, engram_max_ngram_size, engram_vocab_size (one
//      prime-search start shared by every n-gram order), engram_n_heads, engram_head_dim,
//      engram_pad_token_id (engram_pad_id accepted), engram_compressed_vocab_size,
//      engram_seed (optional; the reference has no key and seeds with 0), and, optionally
//      (hashing never reads them; the layer loaders require them), hc_mult, hidden_size,
//      rms_norm_eps (norm_eps accepted). Unrelated model keys are ignored.
// Every field is validated; errors are Errc::parse naming the file and the key.
// Not here: the prime layout and multipliers (hasher.h), the tokenizer (compressor.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

struct EngramConfig {
  enum class Form { demo, deepseek_v41 };

  // Limits that keep a hostile file from asking for absurd work; real configs are far below.
  static constexpr int kMaxNgram = 16;             // max_ngram_size <= 16
  static constexpr int64_t kMaxHeads = 256;        // heads per n-gram order
  static constexpr int64_t kMaxLayers = 1024;      // number of Engram layers
  static constexpr int64_t kMaxVocab = 1LL << 56;  // prime-search start (table rows per column)
  // layers x (N-1) x heads: hash tables, one prime search each. The table size of one layer
  // (rows x row width, in bytes) must also fit int64; both are checked by from_json.
  static constexpr int64_t kMaxPrimes = 1LL << 16;

  Form form = Form::demo;
  std::string origin;  // file path (or "<memory>") the config came from, for error messages

  // Hashing geometry, common to both forms.
  std::vector<int64_t> layer_ids;             // sorted, unique, >= 0
  int max_ngram = 0;                          // N: orders 2..N are hashed
  int64_t n_head = 0;                         // hash heads per n-gram order
  std::vector<int64_t> vocab_size_per_ngram;  // [N-1] prime-search start + 1, per order 2..N
  int64_t pad_id = 0;                         // raw token id used before the start / after dead
  int64_t seed = 0;                           // layer L draws from default_rng(seed + 10007 L)

  // Demo form.
  int64_t n_embed_per_ngram = 0;  // width of one n-gram order's rows, all heads together
  int64_t kernel_size = 0;        // ShortConv kernel

  // DeepSeek-V4.1 form.
  int64_t head_dim = 0;                          // row width of every head
  std::vector<int64_t> num_embeddings;           // [layers] total rows per layer (checked)
  std::optional<int64_t> compressed_vocab_size;  // must equal the tokenizer's

  // Backbone: optional in both forms (checked when present; hashing never reads them).
  std::optional<int64_t> hidden_size;
  std::optional<int64_t> hc_mult;
  std::optional<double> norm_eps;
  std::optional<int64_t> vocab_size;  // demo backbone only
  std::optional<int64_t> num_layers;  // demo backbone only / V4.1 num_hidden_layers

  // Throws Errc::io when the file cannot be read, Errc::parse for malformed JSON or a bad field.
  static EngramConfig from_file(const std::string& path);
  static EngramConfig from_json(std::string_view json_text, const std::string& origin = "<memory>");

  // (N-1) * H: hash columns per position and layer.
  int64_t num_columns() const { return static_cast<int64_t>(max_ngram - 1) * n_head; }
  // Width of one table row: n_embed_per_ngram / n_head (demo) or head_dim (V4.1).
  int64_t row_dim() const;

  // Refuses (Errc::mismatch) a tokenizer whose compressed vocabulary differs from
  // engram_compressed_vocab_size: every multiplier depends on it. No-op when the config has none.
  void check_compressed_vocab_size(int64_t tokenizer_compressed_vocab_size,
                                   const std::string& tokenizer_origin) const;
};

const char* form_name(EngramConfig::Form form);

}  // namespace engram
