// The paper/demo-form Engram layer (engram/engram_layer.h): parameter storage, forward,
// backward and decode, composed from the kernels of nn/kernels.h.
//
// Forward for N = B*T positions, H = hc branches, D = hidden, E = cols*row_width:
//   e  = rows of hash ids + column offsets          [N, E]
//   kv = e @ [value_proj; key_projs]^T + bias       [N, (1+H)*D]  (one GEMM)
//   per branch b: nk = norm1_b(key_b), nq = norm2_b(h_b), gate_b = sigmoid(ssqrt(<nk,nq>/sqrt D))
//   v  = gate * value                               [N, H, D]
//   vn = conv_norm_b(v_b);  y = causal dilated depthwise conv(vn);  out = v + silu(y)
#include <algorithm>
#include <cstring>
#include <random>

#include "engram/engram_layer.h"
#include "nn/kernels.h"
#include "engram/error.h"

namespace engram {

int64_t NamedTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t EngramLayerShape::table_rows() const {
  int64_t n = 0;
  for (int64_t p : primes) n += p;
  return n;
}

void EngramLayerShape::validate() const {
  if (hidden <= 0)
    fail(Errc::invalid_argument, "EngramLayer: hidden size must be > 0, got ", hidden);
  if (hc <= 0) fail(Errc::invalid_argument, "EngramLayer: hc_mult must be > 0, got ", hc);
  if (row_width <= 0)
    fail(Errc::invalid_argument, "EngramLayer: row width must be > 0, got ", row_width);
  if (primes.empty()) fail(Errc::invalid_argument, "EngramLayer: no table columns (primes empty)");
  for (size_t c = 0; c < primes.size(); c++)
    if (primes[c] <= 0)
      fail(Errc::invalid_argument, "EngramLayer: column ", c, " has ", primes[c], " rows");
  if (kernel <= 0)
    fail(Errc::invalid_argument, "EngramLayer: kernel size must be > 0, got ", kernel);
  if (dilation <= 0)
    fail(Errc::invalid_argument, "EngramLayer: dilation must be > 0, got ", dilation);
  if (!(norm_eps > 0.0f) || !(conv_norm_eps > 0.0f))
    fail(Errc::invalid_argument, "EngramLayer: RMSNorm eps must be > 0");
}

namespace {
// Lays out the parameter block; returns its size in floats. With base == nullptr only sizes.
int64_t layout_params(const EngramLayerShape& s, float* base, EngramParams& p, bool with_table) {
  const int64_t D = s.hidden, H = s.hc, E = s.emb_dim();
  int64_t off = 0;
  auto take = [&](float*& ptr, int64_t n) {
    ptr = base ? base + off : nullptr;
    off += n;
  };
  if (with_table)
    take(p.table, s.table_rows() * s.row_width);
  else
    p.table = nullptr;
  take(p.w_vk, (1 + H) * D * E);
  take(p.b_vk, (1 + H) * D);
  take(p.norm1, H * D);
  take(p.norm2, H * D);
  take(p.conv_w, H * D * s.kernel);
  take(p.conv_norm, H * D);
  return off;
}

// Merges b into a (both ascending by row, distinct within each): a = a + b.
void merge_row_grads(RowGrads& a, const RowGrads& b) {
  if (a.rows.empty()) {
    a = b;
    return;
  }
  const int64_t W = a.width;
  RowGrads m;
  m.width = W;
  m.rows.reserve(a.rows.size() + b.rows.size());
  m.grads.reserve((a.rows.size() + b.rows.size()) * W);
  size_t i = 0, j = 0;
  while (i < a.rows.size() || j < b.rows.size()) {
    if (j == b.rows.size() || (i < a.rows.size() && a.rows[i] < b.rows[j])) {
      m.rows.push_back(a.rows[i]);
      m.grads.insert(m.grads.end(), a.grads.begin() + i * W, a.grads.begin() + (i + 1) * W);
      i++;
    } else if (i == a.rows.size() || b.rows[j] < a.rows[i]) {
      m.rows.push_back(b.rows[j]);
      m.grads.insert(m.grads.end(), b.grads.begin() + j * W, b.grads.begin() + (j + 1) * W);
      j++;
    } else {
      m.rows.push_back(a.rows[i]);
      for (int64_t k = 0; k < W; k++) m.grads.push_back(a.grads[i * W + k] + b.grads[j * W + k]);
      i++;
      j++;
    }
  }
  a = std::move(m);
}
}  // namespace

EngramLayer::EngramLayer(EngramLayerShape shape, uint64_t seed) : shape_(std::move(shape)) {
  shape_.validate();
  offsets_.resize(shape_.cols());
  int64_t acc = 0;
  for (int64_t c = 0; c < shape_.cols(); c++) {
    offsets_[c] = acc;
    acc += shape_.primes[c];
  }
  EngramParams sizes;
  param_mem_.assign(layout_params(shape_, nullptr, sizes, true), 0.0f);
  layout_params(shape_, param_mem_.data(), p_, true);
  grad_mem_.assign(layout_params(shape_, nullptr, sizes, false), 0.0f);
  layout_params(shape_, grad_mem_.data(), g_, false);
  table_grad_.width = shape_.row_width;

  const int64_t D = shape_.hidden, H = shape_.hc, E = shape_.emb_dim();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (int64_t i = 0; i < shape_.table_rows() * shape_.row_width; i++) p_.table[i] = normal(rng);
  for (int64_t i = 0; i < (1 + H) * D * E; i++) p_.w_vk[i] = normal(rng);
  std::fill(p_.norm1, p_.norm1 + H * D, 1.0f);
  std::fill(p_.norm2, p_.norm2 + H * D, 1.0f);
  std::fill(p_.conv_norm, p_.conv_norm + H * D, 1.0f);
  // b_vk and conv_w stay zero.
}

namespace {
// The reference module's state_dict names over a parameter block (the table only if present).
std::vector<NamedTensor> named_views(const EngramLayerShape& s, const EngramParams& p) {
  const int64_t D = s.hidden, H = s.hc, E = s.emb_dim();
  std::vector<NamedTensor> t;
  if (p.table)
    t.push_back({"multi_head_embedding.embedding.weight", {s.table_rows(), s.row_width}, p.table});
  t.push_back({"short_conv.conv.weight", {H * D, 1, s.kernel}, p.conv_w});
  for (int64_t b = 0; b < H; b++)
    t.push_back({str_cat("short_conv.norms.", b, ".weight"), {D}, p.conv_norm + b * D});
  t.push_back({"value_proj.weight", {D, E}, p.w_vk});
  t.push_back({"value_proj.bias", {D}, p.b_vk});
  for (int64_t b = 0; b < H; b++) {
    t.push_back({str_cat("key_projs.", b, ".weight"), {D, E}, p.w_vk + (1 + b) * D * E});
    t.push_back({str_cat("key_projs.", b, ".bias"), {D}, p.b_vk + (1 + b) * D});
  }
  for (int64_t b = 0; b < H; b++)
    t.push_back({str_cat("norm1.", b, ".weight"), {D}, p.norm1 + b * D});
  for (int64_t b = 0; b < H; b++)
    t.push_back({str_cat("norm2.", b, ".weight"), {D}, p.norm2 + b * D});
  return t;
}
}  // namespace

std::vector<NamedTensor> EngramLayer::named_parameters() {
  return named_views(shape_, p_);
}
std::vector<NamedTensor> EngramLayer::named_grads() {
  return named_views(shape_, g_);
}

void EngramLayer::zero_grad() {
  std::fill(grad_mem_.begin(), grad_mem_.end(), 0.0f);
  table_grad_.rows.clear();
  table_grad_.grads.clear();
}

void EngramLayer::check_hash_ids(const int64_t* hash_ids, int64_t B, int64_t T) const {
  const int64_t cols = shape_.cols();
  for (int64_t n = 0; n < B * T; n++)
    for (int64_t c = 0; c < cols; c++) {
      const int64_t h = hash_ids[n * cols + c];
      if (h < 0 || h >= shape_.primes[c])
        fail(Errc::out_of_range, "EngramLayer: hash id ", h, " at (batch ", n / T, ", position ",
             n % T, ", column ", c, ") is outside [0, ", shape_.primes[c], ")");
    }
}

void EngramLayer::gated_value(const float* hidden, const int64_t* hash_ids, int64_t N) {
  const int64_t E = shape_.emb_dim(), cols = shape_.cols();
  rows_.resize(N * cols);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < cols; c++) rows_[n * cols + c] = hash_ids[n * cols + c] + offsets_[c];
  e_.resize(N * E);
  nn::embedding_gather(e_.data(), p_.table, rows_.data(), N, cols, shape_.row_width);
  gated_value_of_rows(hidden, N);
}

void EngramLayer::gated_value_of_rows(const float* hidden, int64_t N) {
  const int64_t D = shape_.hidden, H = shape_.hc, E = shape_.emb_dim();
  const int64_t KV = (1 + H) * D;
  hidden_.assign(hidden, hidden + N * H * D);
  kv_.resize(N * KV);
  nk_.resize(N * H * D);
  nq_.resize(N * H * D);
  rstd_k_.resize(H * N);
  rstd_q_.resize(H * N);
  score_.resize(N * H);
  gate_.resize(N * H);
  v_.resize(N * H * D);
  nn::linear_forward(kv_.data(), e_.data(), p_.w_vk, p_.b_vk, N, E, KV);
  for (int64_t b = 0; b < H; b++) {
    nn::rmsnorm_forward(nk_.data() + b * D, H * D, rstd_k_.data() + b * N, kv_.data() + (1 + b) * D,
                        KV, p_.norm1 + b * D, N, D, shape_.norm_eps);
    nn::rmsnorm_forward(nq_.data() + b * D, H * D, rstd_q_.data() + b * N, hidden + b * D, H * D,
                        p_.norm2 + b * D, N, D, shape_.norm_eps);
    nn::gate_forward(gate_.data() + b, score_.data() + b, H, nk_.data() + b * D, H * D,
                     nq_.data() + b * D, H * D, N, D, nn::GateSign::torch_sign);
  }
  nn::gated_value_forward(v_.data(), gate_.data(), kv_.data(), KV, N, H, D);
}

void EngramLayer::forward(float* out, const float* hidden, const int64_t* hash_ids, int64_t B,
                          int64_t T) {
  if (B <= 0 || T <= 0)
    fail(Errc::invalid_argument, "EngramLayer.forward: empty batch (B=", B, ", T=", T, ")");
  check_hash_ids(hash_ids, B, T);
  have_forward_ = false;
  const int64_t N = B * T, D = shape_.hidden, H = shape_.hc;
  gated_value(hidden, hash_ids, N);
  rstd_v_.resize(H * N);
  vn_.resize(N * H * D);
  y_.resize(N * H * D);
  for (int64_t b = 0; b < H; b++)
    nn::rmsnorm_forward(vn_.data() + b * D, H * D, rstd_v_.data() + b * N, v_.data() + b * D, H * D,
                        p_.conv_norm + b * D, N, D, shape_.conv_norm_eps);
  nn::causal_conv_forward(y_.data(), vn_.data(), p_.conv_w, B, T, H * D, shape_.kernel,
                          shape_.dilation);
  nn::residual_silu_forward(out, v_.data(), y_.data(), N * H * D);
  B_ = B;
  T_ = T;
  have_forward_ = true;
  // Decode state: the last (kernel-1)*dilation normalized inputs of each sequence.
  dec_B_ = B;
  conv_state_.resize(B * (shape_.kernel - 1) * shape_.dilation * H * D);
  nn::causal_conv_state_from_prefix(conv_state_.data(), vn_.data(), B, T, H * D, shape_.kernel,
                                    shape_.dilation);
}

void EngramLayer::backward(float* dhidden, const float* dout) {
  if (!have_forward_)
    fail(Errc::invalid_argument, "EngramLayer.backward: call forward first (no activations kept)");
  const int64_t N = B_ * T_, D = shape_.hidden, H = shape_.hc, E = shape_.emb_dim();
  const int64_t KV = (1 + H) * D, HD = H * D;

  // out = v + silu(y): dv = dout, dy = dout * silu'(y)
  std::vector<float> dv(dout, dout + N * HD);
  std::vector<float> dy(N * HD, 0.0f);
  nn::silu_backward(dy.data(), dout, y_.data(), N * HD);
  std::vector<float> dvn(N * HD, 0.0f);
  nn::causal_conv_backward(dvn.data(), g_.conv_w, dy.data(), vn_.data(), p_.conv_w, B_, T_, HD,
                           shape_.kernel, shape_.dilation);
  for (int64_t b = 0; b < H; b++)
    nn::rmsnorm_backward(dv.data() + b * D, HD, g_.conv_norm + b * D, dvn.data() + b * D, HD,
                         v_.data() + b * D, HD, p_.conv_norm + b * D, rstd_v_.data() + b * N, N, D);
  // v = gate * value
  std::vector<float> dkv(N * KV, 0.0f);
  std::vector<float> dgate(N * H, 0.0f);
  nn::gated_value_backward(dgate.data(), dkv.data(), KV, dv.data(), gate_.data(), kv_.data(), KV, N,
                           H, D);
  // gates, norms
  std::vector<float> dnk(N * HD, 0.0f), dnq(N * HD, 0.0f);
  for (int64_t b = 0; b < H; b++) {
    nn::gate_backward(dnk.data() + b * D, HD, dnq.data() + b * D, HD, dgate.data() + b,
                      score_.data() + b, gate_.data() + b, H, nk_.data() + b * D, HD,
                      nq_.data() + b * D, HD, N, D);
    nn::rmsnorm_backward(dkv.data() + (1 + b) * D, KV, g_.norm1 + b * D, dnk.data() + b * D, HD,
                         kv_.data() + (1 + b) * D, KV, p_.norm1 + b * D, rstd_k_.data() + b * N, N,
                         D);
    nn::rmsnorm_backward(dhidden ? dhidden + b * D : nullptr, HD, g_.norm2 + b * D,
                         dnq.data() + b * D, HD, hidden_.data() + b * D, HD, p_.norm2 + b * D,
                         rstd_q_.data() + b * N, N, D);
  }
  // projections and rows
  std::vector<float> de(N * E, 0.0f);
  nn::linear_backward(de.data(), g_.w_vk, g_.b_vk, dkv.data(), e_.data(), p_.w_vk, N, E, KV);
  RowGrads rg;
  nn::embedding_backward_sparse(rg, de.data(), rows_.data(), N, shape_.cols(), shape_.row_width);
  merge_row_grads(table_grad_, rg);
}

void EngramLayer::reset_decode(int64_t B) {
  if (B <= 0) fail(Errc::invalid_argument, "EngramLayer.reset_decode: batch must be > 0, got ", B);
  dec_B_ = B;
  conv_state_.assign(B * (shape_.kernel - 1) * shape_.dilation * shape_.hc * shape_.hidden, 0.0f);
}

void EngramLayer::check_decode_batch(int64_t B, const char* what) const {
  if (B != dec_B_ || dec_B_ == 0)
    fail(Errc::invalid_argument, "EngramLayer.", what, ": batch ", B,
         " does not match the decode state's batch ", dec_B_, " (run forward or reset_decode)");
}

void EngramLayer::decode_step(float* out, const float* hidden, const int64_t* hash_ids, int64_t B) {
  check_decode_batch(B, "decode_step");
  check_hash_ids(hash_ids, B, 1);
  have_forward_ = false;  // the activations are now those of one step, not of a forward
  gated_value(hidden, hash_ids, B);
  decode_conv(out, B);
}

void EngramLayer::decode_step_rows(float* out, const float* hidden, const float* rows, int64_t B) {
  check_decode_batch(B, "decode_step_rows");
  if (rows == nullptr) fail(Errc::invalid_argument, "EngramLayer.decode_step_rows: rows is null");
  have_forward_ = false;
  e_.assign(rows, rows + B * shape_.emb_dim());
  gated_value_of_rows(hidden, B);
  decode_conv(out, B);
}

void EngramLayer::decode_conv(float* out, int64_t B) {
  const int64_t D = shape_.hidden, H = shape_.hc, HD = H * D;
  std::vector<float> rstd(H * B), vn(B * HD), y(B * HD);
  for (int64_t b = 0; b < H; b++)
    nn::rmsnorm_forward(vn.data() + b * D, HD, rstd.data() + b * B, v_.data() + b * D, HD,
                        p_.conv_norm + b * D, B, D, shape_.conv_norm_eps);
  nn::causal_conv_decode_step(y.data(), conv_state_.data(), vn.data(), p_.conv_w, B, HD,
                              shape_.kernel, shape_.dilation);
  nn::residual_silu_forward(out, v_.data(), y.data(), B * HD);
}

}  // namespace engram
