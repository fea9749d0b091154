// Training forward and backward of engram::Model (model/model_impl.h): the activation arena
// sized from (B, T), the layer loop (Engram block, attention, FFN), the cross-entropy loss and
// the backward through all of it. Output projections add straight into the residual stream
// (GEMM with beta 1), and the backward keeps one residual-gradient buffer that every branch
// accumulates into. The FFN is ffn.cpp's; the Engram layers are their own (engram_layer.h).
#include <algorithm>
#include <cstring>

#include "engram/error.h"
#include "model/model_impl.h"
#include "nn/attention.h"
#include "nn/kernels.h"

namespace engram {

using namespace nn;

void Model::Impl::plan_acts(Acts& a, int64_t B, int64_t T) {
  const int64_t N = B * T;
  const int64_t A = N * K;
  Arena& ar = a.arena;
  a.B = B;
  a.T = T;
  a.layers.resize(L);
  for (int64_t l = 0; l < L; l++) {
    LayerActs& la = a.layers[l];
    la.x = ar.f(N * C);
    la.xe = engram_of[l] >= 0 ? ar.f(N * C) : la.x;
    la.rstd1 = ar.f(N);
    la.xn1 = ar.f(N * C);
    la.qkv = ar.f(N * QKV);
    la.att = ar.f(B * H * T * T);
    la.atty = ar.f(N * H * D);
    la.h = ar.f(N * C);
    la.rstd2 = ar.f(N);
    la.xn2 = ar.f(N * C);
    la.gateup = moe ? nullptr : ar.f(N * 2 * F);
    la.act = moe ? nullptr : ar.f(N * F);
    la.probs = moe ? ar.f(N * E) : nullptr;
    la.gates = moe ? ar.f(N * K) : nullptr;
    la.topk = moe ? ar.i32(N * K) : nullptr;
    la.slot = moe ? ar.i32(A) : nullptr;
    la.order = moe ? ar.i32(A) : nullptr;
    la.e_start = moe ? ar.i64(E + 1) : nullptr;
    la.e_gateup = moe ? ar.f(A * 2 * Fe) : nullptr;
    la.e_act = moe ? ar.f(A * Fe) : nullptr;
    la.e_out = moe ? ar.f(A * C) : nullptr;
    la.s_gateup = moe && Fs > 0 ? ar.f(N * 2 * Fs) : nullptr;
    la.s_act = moe && Fs > 0 ? ar.f(N * Fs) : nullptr;
  }
  a.xf = ar.f(N * C);
  a.rstdf = ar.f(N);
  a.xnf = ar.f(N * C);
  a.logits = ar.f(N * V);
  a.lse = ar.f(N);
  a.losses = ar.f(N);
  a.dres = ar.f(N * C);
  a.dxn = ar.f(N * C);
  a.dqkv = ar.f(N * QKV);
  a.datty = ar.f(N * H * D);
  const int64_t Fd = moe ? Fs : F;
  a.dgateup = ar.f(N * 2 * Fd);
  a.dact = ar.f(N * Fd);
  a.rlogits = moe ? ar.f(N * E) : nullptr;
  a.dgates = moe ? ar.f(N * K) : nullptr;
  a.dprobs = moe ? ar.f(N * E) : nullptr;
  a.xg = moe ? ar.f(A * C) : nullptr;
  a.dxg = moe ? ar.f(A * C) : nullptr;
  a.de_gateup = moe ? ar.f(A * 2 * Fe) : nullptr;
  a.de_act = moe ? ar.f(A * Fe) : nullptr;
  a.de_out = moe ? ar.f(A * C) : nullptr;
  a.targets = ar.i32(N);
  a.ids = ar.i32(N);
}

void Model::Impl::ensure_acts(Acts& a, int64_t B, int64_t T) {
  if (a.arena.allocated() && a.B == B && a.T == T) return;
  a.arena = Arena();
  plan_acts(a, B, T);
  a.arena.allocate();
  plan_acts(a, B, T);
}

void Model::Impl::check_ids(const int32_t* ids, int64_t N, int64_t T, const char* what) const {
  for (int64_t n = 0; n < N; n++) {
    if (ids[n] < 0 || ids[n] >= V) {
      fail(Errc::out_of_range, what, "[", n / T, ", ", n % T, "] = ", ids[n],
           " is outside the vocabulary [0, ", V, ")");
    }
  }
}

void Model::Impl::forward_body(const int32_t* ids, int64_t B, int64_t T) {
  if (B <= 0 || T <= 0) fail(Errc::invalid_argument, "forward: B and T must be positive");
  if (T > cfg.max_seq_len) {
    fail(Errc::invalid_argument, "forward: T = ", T, " exceeds max_seq_len ", cfg.max_seq_len);
  }
  const int64_t N = B * T;
  check_ids(ids, N, T, "ids");
  ensure_acts(acts, B, T);
  Acts& a = acts;
  std::memcpy(a.ids, ids, N * sizeof(int32_t));
  if (!engrams.empty()) {
    raw_ids.assign(ids, ids + N);
    for (EngramSlot& s : engrams) {
      s.hash.resize(N * hasher->num_columns());
      s.out.resize(N * C);
      hasher->hash(s.layer, raw_ids, B, T, s.hash);
    }
  }
  embedding_forward(a.layers[0].x, a.ids, p.wte, N, C);
  aux_loss = 0.0f;
  for (int64_t l = 0; l < L; l++) {
    LayerActs& la = a.layers[l];
    const LayerParams& w = p.layers[l];
    float* next = l + 1 < L ? a.layers[l + 1].x : a.xf;
    if (engram_of[l] >= 0) {
      EngramSlot& s = engrams[engram_of[l]];
      s.mod->forward(s.out.data(), la.x, s.hash.data(), B, T);
#pragma omp parallel for schedule(static) if (N * C >= (1 << 14))
      for (int64_t i = 0; i < N * C; i++) la.xe[i] = la.x[i] + s.out[i];
    }
    rmsnorm_forward(la.xn1, C, la.rstd1, la.xe, C, w.attn_norm, N, C, cfg.norm_eps);
    linear_forward(la.qkv, la.xn1, w.wqkv, nullptr, N, C, QKV);
    rope_forward(la.qkv, rope_cos.data(), rope_sin.data(), B, T, H, D, QKV);
    rope_forward(la.qkv + H * D, rope_cos.data(), rope_sin.data(), B, T, KV, D, QKV);
    attention_forward(la.atty, la.att, la.qkv, B, T, H, KV, D);
    std::memcpy(la.h, la.xe, N * C * sizeof(float));
    linear_forward(la.h, la.atty, w.wo, nullptr, N, H * D, C, true);
    rmsnorm_forward(la.xn2, C, la.rstd2, la.h, C, w.mlp_norm, N, C, cfg.norm_eps);
    std::memcpy(next, la.h, N * C * sizeof(float));
    ffn_forward(l, la, a, next, N);
    aux_loss += la.aux;
  }
  rmsnorm_forward(a.xnf, C, a.rstdf, a.xf, C, p.norm, N, C, cfg.norm_eps);
  linear_forward(a.logits, a.xnf, p.lm_head, nullptr, N, C, V);
}

float Model::Impl::forward_train(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T) {
  have_train_forward = false;
  const int64_t N = B * T;
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] >= V) {
      fail(Errc::out_of_range, "targets[", n / T, ", ", n % T, "] = ", targets[n],
           " is outside the vocabulary [0, ", V, ")");
    }
  }
  forward_body(ids, B, T);
  Acts& a = acts;
  std::memcpy(a.targets, targets, N * sizeof(int32_t));
  crossentropy_forward(a.losses, a.lse, a.logits, a.targets, N, V);
  double sum = 0.0;
  counted = 0;
  for (int64_t n = 0; n < N; n++) {
    if (a.targets[n] >= 0) {
      sum += a.losses[n];
      counted++;
    }
  }
  ce_loss = counted > 0 ? static_cast<float>(sum / double(counted)) : 0.0f;
  have_train_forward = true;
  return ce_loss + aux_loss;
}

void Model::Impl::backward() {
  if (!have_train_forward) {
    fail(Errc::invalid_argument, "backward: no training forward (with targets) precedes it");
  }
  have_train_forward = false;  // the logits are consumed below
  Acts& a = acts;
  const int64_t B = a.B, T = a.T, N = B * T;
  const float dloss = counted > 0 ? 1.0f / static_cast<float>(counted) : 0.0f;
  crossentropy_backward_inplace(a.logits, a.lse, a.targets, N, V, dloss);
  std::fill(a.dxn, a.dxn + N * C, 0.0f);
  linear_backward(a.dxn, g.lm_head, nullptr, a.logits, a.xnf, p.lm_head, N, C, V);
  std::fill(a.dres, a.dres + N * C, 0.0f);
  rmsnorm_backward(a.dres, C, g.norm, a.dxn, C, a.xf, C, p.norm, a.rstdf, N, C);
  for (int64_t l = L - 1; l >= 0; l--) {
    LayerActs& la = a.layers[l];
    const LayerParams& w = p.layers[l];
    const LayerParams& gw = g.layers[l];
    // FFN branch: dres is d loss / d (h + ffn(norm2(h))).
    std::fill(a.dxn, a.dxn + N * C, 0.0f);
    ffn_backward(l, la, a, a.dxn, a.dres, N);
    rmsnorm_backward(a.dres, C, gw.mlp_norm, a.dxn, C, la.h, C, w.mlp_norm, la.rstd2, N, C);
    // Attention branch: dres is now d loss / d h.
    std::fill(a.datty, a.datty + N * H * D, 0.0f);
    linear_backward(a.datty, gw.wo, nullptr, a.dres, la.atty, w.wo, N, H * D, C);
    std::fill(a.dqkv, a.dqkv + N * QKV, 0.0f);
    attention_backward(a.dqkv, a.datty, la.qkv, la.att, B, T, H, KV, D);
    rope_backward(a.dqkv, rope_cos.data(), rope_sin.data(), B, T, H, D, QKV);
    rope_backward(a.dqkv + H * D, rope_cos.data(), rope_sin.data(), B, T, KV, D, QKV);
    std::fill(a.dxn, a.dxn + N * C, 0.0f);
    linear_backward(a.dxn, gw.wqkv, nullptr, a.dqkv, la.xn1, w.wqkv, N, C, QKV);
    rmsnorm_backward(a.dres, C, gw.attn_norm, a.dxn, C, la.xe, C, w.attn_norm, la.rstd1, N, C);
    if (engram_of[l] >= 0) {
      // x_e = x + Engram(x): d x = d x_e + Engram'(x)^T d x_e (dxn holds a copy of d x_e).
      std::memcpy(a.dxn, a.dres, N * C * sizeof(float));
      engrams[engram_of[l]].mod->backward(a.dres, a.dxn);
    }
  }
  embedding_backward(g.wte, a.dres, a.ids, N, C);
}

double Model::Impl::train_flops(int64_t B, int64_t T) const {
  const double tokens = double(B) * double(T);
  double proj = double(QKV) * C + double(H * D) * C;  // per layer
  if (!moe) {
    proj += 3.0 * double(F) * C;
  } else {
    proj += double(E) * C + double(K) * 3.0 * Fe * C + 3.0 * double(Fs) * C;
  }
  double per_token = double(L) * proj + double(V) * C;
  for (const EngramSlot& s : engrams) {  // value and key projections of the gathered rows
    per_token += 2.0 * double(C) * double(s.mod->shape().emb_dim());
  }
  // Causal attention: QK^T and PV each 2*D flops per (query, key<=query) pair, x3 for backward.
  const double attn = 3.0 * 2.0 * 2.0 * double(L) * B * H * D * (double(T) * (T + 1) / 2.0);
  return 6.0 * per_token * tokens + attn;
}

float Model::forward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T) {
  return impl_->forward_train(ids, targets, B, T);
}

void Model::forward(const int32_t* ids, int64_t B, int64_t T) {
  impl_->have_train_forward = false;
  impl_->forward_body(ids, B, T);
}

std::span<const float> Model::logits() const {
  const Impl::Acts& a = impl_->acts;
  if (!a.arena.allocated()) return {};
  return {a.logits, static_cast<size_t>(a.B * a.T * impl_->V)};
}

float Model::last_ce_loss() const {
  return impl_->ce_loss;
}

float Model::last_aux_loss() const {
  return impl_->aux_loss;
}

void Model::zero_grad() {
  std::fill(impl_->grad_mem.begin(), impl_->grad_mem.end(), 0.0f);
  for (Impl::EngramSlot& s : impl_->engrams) s.mod->zero_grad();
}

void Model::backward() {
  impl_->backward();
}

double Model::train_flops(int64_t B, int64_t T) const {
  return impl_->train_flops(B, T);
}

}  // namespace engram
