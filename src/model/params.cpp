// The parameter layout of engram::Model (model/model_impl.h): every backbone tensor by name in
// one allocation (gradients in a second with the same layout), the named views into both, the
// deterministic initialization, and the accessors by name. The Engram layers keep their own
// parameters (engram_block.cpp); the accessors reach them by name too.
//
// Layout choices for speed: q_proj, k_proj and v_proj of a layer are stored back to back, so one
// GEMM against the stacked (H*D + 2*KV*D, C) matrix computes all three; likewise gate_proj and
// up_proj (2F, C).
#include <algorithm>
#include <cmath>
#include <random>

#include "engram/error.h"
#include "model/model_impl.h"
#include "nn/attention.h"

namespace engram {

namespace {

double normal_pair_sample(std::mt19937_64& rng, double& spare, bool& has_spare) {
  // Box-Muller written out, so the stream does not depend on the standard library's
  // normal_distribution.
  if (has_spare) {
    has_spare = false;
    return spare;
  }
  constexpr double two_pi = 6.283185307179586;
  double u1, u2;
  do {
    u1 = double(rng() >> 11) * 0x1.0p-53;
  } while (u1 <= 0.0);
  u2 = double(rng() >> 11) * 0x1.0p-53;
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare = r * std::sin(two_pi * u2);
  has_spare = true;
  return r * std::cos(two_pi * u2);
}

}  // namespace

Model::Impl::Impl(const ModelConfig& c) : cfg(c) {
  cfg.validate();
  V = cfg.vocab_size;
  C = cfg.hidden_size;
  L = cfg.n_layers;
  H = cfg.n_heads;
  KV = cfg.n_kv_heads;
  D = cfg.head_dim();
  QKV = (H + 2 * KV) * D;
  F = cfg.ffn_hidden;
  moe = cfg.moe.n_experts > 0;
  E = cfg.moe.n_experts;
  K = moe ? cfg.moe.top_k : 0;
  Fe = cfg.moe.expert_ffn_hidden;
  Fs = cfg.moe.shared_ffn_hidden;
  layout();
  engram_of.assign(L, -1);
  rope_cos.resize(cfg.max_seq_len * D / 2);
  rope_sin.resize(cfg.max_seq_len * D / 2);
  nn::rope_tables(rope_cos.data(), rope_sin.data(), cfg.max_seq_len, D, cfg.rope_theta);
}

void Model::Impl::layout() {
  int64_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    infos.push_back(ParamInfo{name, std::move(shape), off, n, decay});
    off += n;
    return infos.back().offset;
  };
  // Pass 1: offsets. Sub-tensors that are stored back to back (q/k/v, gate/up) are registered
  // one by one under their own names in that order.
  struct LayerOffsets {
    int64_t attn_norm, wqkv, wo, mlp_norm, w_gateup, w_down, router, e_gateup, e_down, s_gateup,
        s_down;
  };
  const int64_t o_wte = add("model.embed_tokens.weight", {V, C}, false);
  std::vector<LayerOffsets> lo(L);
  for (int64_t l = 0; l < L; l++) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    LayerOffsets& o = lo[l];
    o.attn_norm = add(pre + "input_layernorm.weight", {C}, false);
    o.wqkv = add(pre + "self_attn.q_proj.weight", {H * D, C}, true);
    add(pre + "self_attn.k_proj.weight", {KV * D, C}, true);
    add(pre + "self_attn.v_proj.weight", {KV * D, C}, true);
    o.wo = add(pre + "self_attn.o_proj.weight", {C, H * D}, true);
    o.mlp_norm = add(pre + "post_attention_layernorm.weight", {C}, false);
    o.w_gateup = o.w_down = o.router = o.e_gateup = o.e_down = o.s_gateup = o.s_down = -1;
    if (!moe) {
      o.w_gateup = add(pre + "mlp.gate_proj.weight", {F, C}, true);
      add(pre + "mlp.up_proj.weight", {F, C}, true);
      o.w_down = add(pre + "mlp.down_proj.weight", {C, F}, true);
    } else {
      o.router = add(pre + "mlp.gate.weight", {E, C}, true);
      for (int64_t e = 0; e < E; e++) {
        const std::string ep = pre + "mlp.experts." + std::to_string(e) + ".";
        const int64_t gu = add(ep + "gate_proj.weight", {Fe, C}, true);
        add(ep + "up_proj.weight", {Fe, C}, true);
        if (e == 0) o.e_gateup = gu;
      }
      for (int64_t e = 0; e < E; e++) {
        const std::string ep = pre + "mlp.experts." + std::to_string(e) + ".";
        const int64_t dn = add(ep + "down_proj.weight", {C, Fe}, true);
        if (e == 0) o.e_down = dn;
      }
      if (Fs > 0) {
        o.s_gateup = add(pre + "mlp.shared_expert.gate_proj.weight", {Fs, C}, true);
        add(pre + "mlp.shared_expert.up_proj.weight", {Fs, C}, true);
        o.s_down = add(pre + "mlp.shared_expert.down_proj.weight", {C, Fs}, true);
      }
    }
  }
  const int64_t o_norm = add("model.norm.weight", {C}, false);
  const int64_t o_lm = cfg.tie_word_embeddings ? o_wte : add("lm_head.weight", {V, C}, true);
  param_mem.assign(off, 0.0f);
  grad_mem.assign(off, 0.0f);
  auto bind = [&](ParamTensors& t, float* base) {
    auto at = [&](int64_t o) { return o < 0 ? nullptr : base + o; };
    t.wte = at(o_wte);
    t.norm = at(o_norm);
    t.lm_head = at(o_lm);
    t.layers.resize(L);
    for (int64_t l = 0; l < L; l++) {
      const LayerOffsets& o = lo[l];
      t.layers[l] = LayerParams{at(o.attn_norm), at(o.wqkv),     at(o.wo),     at(o.mlp_norm),
                                at(o.w_gateup),  at(o.w_down),   at(o.router), at(o.e_gateup),
                                at(o.e_down),    at(o.s_gateup), at(o.s_down)};
    }
  };
  bind(p, param_mem.data());
  bind(g, grad_mem.data());
}

void Model::Impl::init_weights(uint64_t seed) {
  std::mt19937_64 rng(seed);
  double spare = 0.0;
  bool has_spare = false;
  const double out_std = 0.02 / std::sqrt(2.0 * double(L));
  for (const ParamInfo& info : infos) {
    if (info.offset < 0) continue;  // Engram layers initialize their own
    float* w = param_mem.data() + info.offset;
    if (info.shape.size() == 1) {
      std::fill(w, w + info.numel, 1.0f);
      continue;
    }
    const bool out_proj =
        info.name.ends_with("o_proj.weight") || info.name.ends_with("down_proj.weight");
    const double sd = out_proj ? out_std : 0.02;
    for (int64_t i = 0; i < info.numel; i++) {
      w[i] = static_cast<float>(sd * normal_pair_sample(rng, spare, has_spare));
    }
  }
}

const ModelConfig& Model::config() const {
  return impl_->cfg;
}

const std::vector<ParamInfo>& Model::param_infos() const {
  return impl_->infos;
}

const ParamInfo& Model::param_info(const std::string& name) const {
  for (const ParamInfo& info : impl_->infos) {
    if (info.name == name) return info;
  }
  fail(Errc::out_of_range, "no parameter named \"", name, "\" in this model");
}

std::span<float> Model::params() {
  return impl_->param_mem;
}

std::span<float> Model::grads() {
  return impl_->grad_mem;
}

std::span<float> Model::param(const std::string& name) {
  const ParamInfo& info = param_info(name);
  if (info.offset < 0) return {impl_->engram_tensor(name).first, static_cast<size_t>(info.numel)};
  return {impl_->param_mem.data() + info.offset, static_cast<size_t>(info.numel)};
}

std::span<float> Model::grad(const std::string& name) {
  const ParamInfo& info = param_info(name);
  if (info.offset < 0) {
    float* g = impl_->engram_tensor(name).second;
    if (g == nullptr) {
      fail(Errc::invalid_argument, name, " has a sparse gradient: read it from engram_tables()");
    }
    return {g, static_cast<size_t>(info.numel)};
  }
  return {impl_->grad_mem.data() + info.offset, static_cast<size_t>(info.numel)};
}

std::vector<ParamSpan> Model::param_spans() {
  std::vector<ParamSpan> out;
  for (const ParamInfo& info : impl_->infos) {
    if (info.offset < 0) {
      auto [w, g] = impl_->engram_tensor(info.name);
      if (g != nullptr) out.push_back(ParamSpan{w, g, info.numel, info.weight_decay});
      continue;
    }
    out.push_back(ParamSpan{impl_->param_mem.data() + info.offset,
                            impl_->grad_mem.data() + info.offset, info.numel, info.weight_decay});
  }
  return out;
}

}  // namespace engram
