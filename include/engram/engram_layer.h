// engram/engram_layer.h: the Engram layer on fp32 CPU tensors, in its two published forms.
//
//   EngramLayer     the paper / demo form (DESIGN.md 2.4, deepseek-ai/Engram engram_demo_v1.py
//                   class Engram): forward, backward (dense grads for every weight, sparse row
//                   grads for the table) and a one-token decode step with a cached ShortConv state.
//   EngramLayerV41  the DeepSeek-V4.1 form (DESIGN.md 2.5): fp8 rows and fp8 block-scaled wkv,
//                   forward only.
//
// Neither class hashes: they take row ids (per-column hash values, or global rows for V4.1).
// Hashing token ids is engram/hasher.h's job. Inputs are checked (shapes, id ranges) and a bad
// one throws engram::Error naming the tensor and position; kernels are in src/nn/kernels.h.
// Not thread-safe: one forward/backward at a time per object (the kernels use OpenMP inside).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace engram {

// The gradient of the rows a table lookup read, sparse: each distinct row id once (ascending),
// with the sum of the output gradient over every (position, column) that read it.
struct RowGrads {
  int64_t width = 0;
  std::vector<int64_t> rows;  // (n)
  std::vector<float> grads;   // (n, width)
};

// Geometry of the paper-form layer. E = cols * row_width is the width of the concatenated rows.
struct EngramLayerShape {
  int64_t hidden = 0;           // d (backbone hidden size)
  int64_t hc = 1;               // hc_mult: residual branches (1 = a plain residual stream)
  int64_t row_width = 0;        // n_embed_per_ngram / n_head_per_ngram
  std::vector<int64_t> primes;  // rows of each column's table, n-gram-major column order
  int64_t kernel = 4;           // ShortConv kernel size
  int64_t dilation = 3;         // ShortConv dilation = max_ngram_size
  // norm1 / norm2 are `nn.RMSNorm(hidden_size)` with eps=None in the demo, which PyTorch
  // resolves to torch.finfo(float32).eps; ShortConv's norms pass norm_eps=1e-5 explicitly.
  float norm_eps = 1.1920928955078125e-07f;
  float conv_norm_eps = 1e-5f;

  int64_t cols() const { return static_cast<int64_t>(primes.size()); }
  int64_t emb_dim() const { return cols() * row_width; }
  int64_t table_rows() const;
  // Throws Errc::invalid_argument naming the first field that cannot be right.
  void validate() const;
};

// Named views into the layer's one parameter allocation (llm.c's ParameterTensors).
// value_proj and the key projections are stored back to back so that one GEMM computes all:
// w_vk rows [0, d) are value_proj.weight, rows [(1+b)*d, (2+b)*d) are key_projs.{b}.weight.
struct EngramParams {
  float* table = nullptr;      // [table_rows, row_width]  multi_head_embedding.embedding.weight
  float* w_vk = nullptr;       // [(1+hc)*d, E]            value_proj.weight ; key_projs.{b}.weight
  float* b_vk = nullptr;       // [(1+hc)*d]               value_proj.bias ; key_projs.{b}.bias
  float* norm1 = nullptr;      // [hc, d]                  norm1.{b}.weight (key norm)
  float* norm2 = nullptr;      // [hc, d]                  norm2.{b}.weight (query norm)
  float* conv_w = nullptr;     // [hc*d, kernel]           short_conv.conv.weight ([hc*d, 1, K])
  float* conv_norm = nullptr;  // [hc, d]                  short_conv.norms.{b}.weight
};

// A named tensor view with its shape, in the reference module's state_dict naming.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  float* data = nullptr;
  int64_t numel() const;
};

class EngramLayer {
 public:
  // Allocates and initializes the parameters: table and projection weights ~ N(0, 0.02),
  // biases 0, norm weights 1, conv weight 0 (the paper's recipe: the layer starts as identity
  // on v). Deterministic for a given seed. Throws Errc::invalid_argument on a bad shape.
  explicit EngramLayer(EngramLayerShape shape, uint64_t seed = 0);

  const EngramLayerShape& shape() const { return shape_; }
  const EngramParams& params() const { return p_; }
  // Parameters by reference name, in the demo's state_dict order:
  // multi_head_embedding.embedding.weight, short_conv.conv.weight, short_conv.norms.{b}.weight,
  // value_proj.weight, value_proj.bias, key_projs.{b}.weight, key_projs.{b}.bias,
  // norm1.{b}.weight, norm2.{b}.weight. (The demo's state_dict also holds the int64 buffer
  // multi_head_embedding.offsets, which is derived from the primes, not a parameter.)
  std::vector<NamedTensor> named_parameters();
  // The dense gradients by the same names, table excluded (its gradient is sparse: table_grad()).
  std::vector<NamedTensor> named_grads();

  // hidden: [B, T, hc, d]; hash_ids: [B, T, cols], column c's value in [0, primes[c]) (before
  // the column offset, like the demo's MultiHeadEmbedding input); out: [B, T, hc, d], the
  // layer's output BEFORE the residual add (v + ShortConv(v); the demo's block adds hidden).
  // Keeps what backward needs, and leaves the ShortConv decode state at position T.
  // Throws Errc::out_of_range naming (b, t, column) for a hash id outside its column.
  void forward(float* out, const float* hidden, const int64_t* hash_ids, int64_t B, int64_t T);
  // After forward: dhidden [B, T, hc, d] += d loss / d hidden given dout [B, T, hc, d];
  // every parameter gradient += its contribution (zero_grad() clears them).
  // Throws Errc::invalid_argument if no forward preceded it.
  void backward(float* dhidden, const float* dout);
  void zero_grad();
  // The table's gradient accumulated since zero_grad(): distinct global rows, ascending.
  const RowGrads& table_grad() const { return table_grad_; }
  // The same, writable in place (global-norm clipping scales it with the dense gradients).
  RowGrads& table_grad() { return table_grad_; }

  // Decoding: forward() over a prompt leaves the state of each of its B sequences; then each
  // decode_step consumes one new token per sequence and gives exactly what forward over the
  // whole sequence gives at that position. reset_decode(B) starts B empty sequences.
  // hidden, out: [B, hc, d]; hash_ids: [B, cols]. Throws Errc::invalid_argument if B differs
  // from the state's batch. A decode step replaces the kept activations, so backward needs a
  // new forward after it.
  void reset_decode(int64_t B);
  void decode_step(float* out, const float* hidden, const int64_t* hash_ids, int64_t B);
  // decode_step with the rows already gathered (e.g. prefetched from a row store): rows [B, E],
  // position b's cols rows of row_width back to back in column order, i.e. table rows
  // hash_ids[b, c] + column offset c. Same result, bit for bit, as decode_step on those ids.
  void decode_step_rows(float* out, const float* hidden, const float* rows, int64_t B);

 private:
  void check_hash_ids(const int64_t* hash_ids, int64_t B, int64_t T) const;
  // Rows -> gate and gated value for N positions (shared by forward and decode_step).
  void gated_value(const float* hidden, const int64_t* hash_ids, int64_t N);
  // The part of gated_value after the gather: e_ [N, E] holds the rows.
  void gated_value_of_rows(const float* hidden, int64_t N);
  // The decode step after gated_value: ShortConv on v_ with the cached state -> out [B, H*D].
  void decode_conv(float* out, int64_t B);
  void check_decode_batch(int64_t B, const char* what) const;

  EngramLayerShape shape_;
  std::vector<int64_t> offsets_;  // [cols] exclusive prefix sums of primes
  std::vector<float> param_mem_;  // every parameter, one allocation
  std::vector<float> grad_mem_;   // every dense gradient (table excluded), one allocation
  EngramParams p_;
  EngramParams g_;  // g_.table stays null
  RowGrads table_grad_;

  // Activations of the last forward (N = B*T positions, H = hc, D = d, E = emb_dim).
  int64_t B_ = 0, T_ = 0;
  bool have_forward_ = false;
  std::vector<int64_t> rows_;  // [N, cols] global row ids
  std::vector<float> hidden_;  // [N, H, D] copy of the input
  std::vector<float> e_;       // [N, E]
  std::vector<float> kv_;      // [N, (1+H)*D] value ; keys
  std::vector<float> nk_;      // [N, H, D] normed keys
  std::vector<float> nq_;      // [N, H, D] normed queries
  std::vector<float> rstd_k_;  // [H, N]
  std::vector<float> rstd_q_;  // [H, N]
  std::vector<float> rstd_v_;  // [H, N]
  std::vector<float> score_;   // [N, H]
  std::vector<float> gate_;    // [N, H]
  std::vector<float> v_;       // [N, H, D] gated value
  std::vector<float> vn_;      // [N, H, D] ShortConv's normalized input
  std::vector<float> y_;       // [N, H, D] conv output before SiLU

  // ShortConv decode state: [dec_B, (kernel-1)*dilation, H*D].
  int64_t dec_B_ = 0;
  std::vector<float> conv_state_;
};

// ---- DeepSeek-V4.1 form --------------------------------------------------------------------

struct EngramV41Shape {
  int64_t hidden = 0;      // d
  int64_t hc = 4;          // hc_mult
  int64_t cols = 24;       // (max_ngram - 1) * n_heads
  int64_t head_dim = 256;  // row width
  float norm_eps = 1e-20f;
  int64_t emb_dim() const { return cols * head_dim; }
  void validate() const;
};

// An fp8 table the caller keeps alive: data [rows, head_dim] e4m3fn, scale [rows, head_dim/32]
// e8m0 (the checkpoint's embed.weight / embed.scale, e.g. memory-mapped).
struct Fp8TableView {
  const uint8_t* data = nullptr;
  const uint8_t* scale = nullptr;
  int64_t rows = 0;
};

class EngramLayerV41 {
 public:
  // wkv_weight: [(hc+1)*d, E] e4m3fn; wkv_scale: [ceil((hc+1)*d/32), ceil(E/32)] e8m0;
  // q_weight, k_weight: [hc, d] fp32. wkv is dequantized ONCE here into fp32: every token runs
  // a GEMM against all of it, so dequantizing per call would cost as much as the GEMM itself
  // at decode batch sizes; fp32 costs 4x the fp8 bytes (about 0.5 GB a layer at d = 4096),
  // which a CPU host affords. Throws Errc::invalid_argument on a size mismatch.
  EngramLayerV41(EngramV41Shape shape, std::span<const uint8_t> wkv_weight,
                 std::span<const uint8_t> wkv_scale, std::span<const float> q_weight,
                 std::span<const float> k_weight);

  const EngramV41Shape& shape() const { return shape_; }
  const std::vector<float>& wkv() const { return wkv_; }  // [(hc+1)*d, E] dequantized

  // The table rows are read from (not owned; must outlive the calls that use it).
  void attach_table(Fp8TableView table);

  // hidden, out: [N, hc, d] (out may not alias hidden); rows: [N, E] fp32 (already gathered and
  // dequantized); token_mask: [N] (nonzero = on) or null (all on). out = hidden + gate * value,
  // the NEW residual streams (not a delta): the reference returns h + gate*value, and masked
  // tokens get out = hidden.
  void forward_rows(float* out, const float* hidden, const float* rows, const uint8_t* token_mask,
                    int64_t N);
  // Same, gathering rows from the attached table: row_ids [N, cols] global row ids (hash value
  // plus column offset). Throws Errc::out_of_range for an id outside the table.
  void forward(float* out, const float* hidden, const int64_t* row_ids, const uint8_t* token_mask,
               int64_t N);

 private:
  EngramV41Shape shape_;
  std::vector<float> wkv_;  // [(hc+1)*d, E]
  std::vector<float> qk_;   // [hc, d] q_weight * k_weight
  Fp8TableView table_;
  std::vector<float> rows_;  // scratch [N, E]
  std::vector<float> kv_;    // scratch [N, (hc+1)*d]
};

}  // namespace engram
