// The transformer of engram/model.h: parameter layout, forward, backward and KV-cache decoding,
// built from the kernels of kernels.h.
//
// Layout choices for speed: q_proj, k_proj and v_proj of a layer are stored back to back, so one
// GEMM against the stacked (H*D + 2*KV*D, C) matrix computes all three; likewise gate_proj and
// up_proj (2F, C). Output projections add straight into the residual stream (GEMM with beta 1),
// and the backward keeps one residual-gradient buffer that every branch accumulates into.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/engram_layer.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/model.h"
#include "engram/optim.h"
#include "engram/prefetch.h"
#include "engram/row_gather.h"
#include "engram/store.h"
#include "nn/attention.h"
#include "nn/kernels.h"
#include "nn/moe.h"
#include "util/clock.h"

namespace engram {

using namespace nn;

namespace {

// Named views into the parameter (or gradient) allocation.
struct LayerParams {
  float* attn_norm;  // (C)              input_layernorm.weight
  float* wqkv;       // (QKV, C)         q_proj (H*D, C) ; k_proj (KV*D, C) ; v_proj (KV*D, C)
  float* wo;         // (C, H*D)         o_proj
  float* mlp_norm;   // (C)              post_attention_layernorm.weight
  float* w_gateup;   // (2F, C)          mlp.gate_proj ; mlp.up_proj          (dense)
  float* w_down;     // (C, F)           mlp.down_proj                        (dense)
  float* router;     // (E, C)           mlp.gate                             (MoE)
  float* e_gateup;   // (E, 2Fe, C)      mlp.experts.{e}.gate_proj ; up_proj  (MoE)
  float* e_down;     // (E, C, Fe)       mlp.experts.{e}.down_proj            (MoE)
  float* s_gateup;   // (2Fs, C)         mlp.shared_expert.gate_proj ; up_proj (MoE, Fs > 0)
  float* s_down;     // (C, Fs)          mlp.shared_expert.down_proj           (MoE, Fs > 0)
};

struct ParamTensors {
  float* wte;  // (V, C)  model.embed_tokens.weight
  std::vector<LayerParams> layers;
  float* norm;     // (C)     model.norm.weight
  float* lm_head;  // (V, C)  lm_head.weight, or wte when tied
};

// Activations of one layer for N = B*T rows (MoE: A = N*k routed (token, slot) assignments).
struct LayerActs {
  float* x;          // (N, C)    residual stream entering the layer
  float* xe;         // (N, C)    x + Engram(x) in Engram layers, else x itself
  float* rstd1;      // (N)
  float* xn1;        // (N, C)
  float* qkv;        // (N, QKV)  q and k after RoPE
  float* att;        // (B, H, T, T) attention probabilities
  float* atty;       // (N, H*D)
  float* h;          // (N, C)    residual after attention
  float* rstd2;      // (N)
  float* xn2;        // (N, C)
  float* gateup;     // (N, 2F)   dense
  float* act;        // (N, F)    dense
  float* probs;      // (N, E)   router softmax
  float* gates;      // (N, k)
  int32_t* topk;     // (N, k)
  int32_t* slot;     // (N*k)    position of assignment n*k+s in expert order
  int32_t* order;    // (N*k)    token of each assignment in expert order
  int64_t* e_start;  // (E+1)    first assignment of each expert
  float* e_gateup;   // (A, 2Fe)
  float* e_act;      // (A, Fe)
  float* e_out;      // (A, C)   expert outputs before gating
  float* s_gateup;   // (N, 2Fs)
  float* s_act;      // (N, Fs)
  float aux = 0.0f;  // load-balancing loss of this layer
};

// Bump allocator over one float vector / one int vector: first pass measures, second assigns.
class Arena {
 public:
  float* f(int64_t n) {
    float* p = fbuf_.empty() ? nullptr : fbuf_.data() + fsize_;
    fsize_ += n;
    return p;
  }
  int32_t* i32(int64_t n) {
    int32_t* p = ibuf_.empty() ? nullptr : ibuf_.data() + isize_;
    isize_ += n;
    return p;
  }
  int64_t* i64(int64_t n) {
    int64_t* p = lbuf_.empty() ? nullptr : lbuf_.data() + lsize_;
    lsize_ += n;
    return p;
  }
  // After a measuring pass: allocate and rewind for the assigning pass.
  void allocate() {
    fbuf_.assign(fsize_, 0.0f);
    ibuf_.assign(isize_, 0);
    lbuf_.assign(lsize_, 0);
    fsize_ = isize_ = lsize_ = 0;
  }
  bool allocated() const { return !fbuf_.empty() || !ibuf_.empty(); }

 private:
  std::vector<float> fbuf_;
  std::vector<int32_t> ibuf_;
  std::vector<int64_t> lbuf_;
  int64_t fsize_ = 0, isize_ = 0, lsize_ = 0;
};

struct Acts {
  int64_t B = 0, T = 0;
  std::vector<LayerActs> layers;
  float* xf;      // (N, C) residual after the last layer
  float* rstdf;   // (N)
  float* xnf;     // (N, C)
  float* logits;  // (N, V), dlogits after backward
  float* lse;     // (N)
  float* losses;  // (N)
  // backward / shared scratch
  float* dres;       // (N, C)
  float* dxn;        // (N, C)
  float* dqkv;       // (N, QKV)
  float* datty;      // (N, H*D)
  float* dgateup;    // (N, 2F) dense, or (N, 2Fs) shared expert
  float* dact;       // (N, F) / (N, Fs)
  float* rlogits;    // (N, E) router logits, then their gradient
  float* dgates;     // (N, k)
  float* dprobs;     // (N, E) the load-balancing loss's gradient
  float* xg;         // (A, C) gathered expert inputs, then their gradient
  float* dxg;        // (A, C)
  float* de_gateup;  // (A, 2Fe)
  float* de_act;     // (A, Fe)
  float* de_out;     // (A, C)
  int32_t* targets;  // (N)
  int32_t* ids;      // (N)
  Arena arena;
};

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

struct Model::Impl {
  ModelConfig cfg;
  int64_t V, C, L, H, KV, D, QKV, F, E, K, Fe, Fs;
  bool moe;
  std::vector<ParamInfo> infos;
  std::vector<float> param_mem, grad_mem;
  ParamTensors p, g;
  std::vector<float> rope_cos, rope_sin;  // (max_seq_len, D/2)

  Acts acts;
  bool have_train_forward = false;
  float ce_loss = 0.0f, aux_loss = 0.0f;
  int64_t counted = 0;

  // Engram layers: engram_of[l] indexes `engrams`, -1 for a layer without one.
  struct EngramSlot {
    int64_t layer;
    std::unique_ptr<EngramLayer> mod;
    std::vector<int64_t> hash;               // (N, cols) of the last forward
    std::vector<float> out;                  // (N, C)
    std::vector<NamedTensor> params, grads;  // grads: table excluded
    HashState dec_state;
  };
  std::unique_ptr<NgramHasher> hasher;
  std::vector<EngramSlot> engrams;
  std::vector<int64_t> engram_of;
  std::vector<int64_t> raw_ids;  // (N) int64 copy of the last forward's ids, for hashing

  // decode state
  Acts dec;
  std::vector<float> kcache, vcache;  // (L, max_seq_len, KV*D)
  std::vector<float> dec_scratch;     // (max_seq_len)
  int64_t cache_len = 0;
  // Engram rows from a row store while decoding (serve_engram_from); null: the layers' tables.
  std::unique_ptr<Prefetcher> prefetcher;  // null when fetching inline
  std::shared_ptr<RowStore> row_store;
  std::vector<std::vector<float>> inline_rows;  // (engrams.size()) (E) rows of the step
  // Served with PrefetchOptions.threads == 0: the decoding thread gathers at step entry.
  bool fetch_inline() const { return row_store && !prefetcher; }
  std::vector<size_t> store_table;  // (engrams.size()) store table of each Engram layer
  DecodeStats dec_stats;
  bool dec_broken = false;  // a step failed half-way: the sequence's state is inconsistent

  explicit Impl(const ModelConfig& c) : cfg(c) {
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
    rope_tables(rope_cos.data(), rope_sin.data(), cfg.max_seq_len, D, cfg.rope_theta);
  }

  // Registers every tensor (name, shape, offset) and sets the named pointers of p and g.
  void layout() {
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

  // Builds the Engram layers (after init_weights, so the backbone's random stream does not
  // depend on whether Engram is on).
  void build_engram(uint64_t seed) {
    if (cfg.engram.layer_ids.empty()) return;
    const EngramConfig& ec = cfg.engram;  // checked by cfg.validate()
    std::vector<int64_t> lookup(V);
    int64_t compressed_vocab = V;
    if (cfg.engram.compress_tokens) {
      if (int64_t(cfg.engram.compress_lookup.size()) != V) {
        fail(Errc::invalid_argument, "config.engram.compress_tokens: the compression lookup has ",
             cfg.engram.compress_lookup.size(), " entries, vocab_size is ", V,
             " (build it with tokenizer_compress_lookup)");
      }
      // Validates that the values are a dense range [0, V').
      const TokenCompressor tc = TokenCompressor::from_lookup(cfg.engram.compress_lookup);
      lookup = tc.lookup();
      compressed_vocab = tc.compressed_vocab_size();
    } else {
      for (int64_t i = 0; i < V; i++) lookup[i] = i;  // identity compression
    }
    hasher = std::make_unique<NgramHasher>(ec, std::move(lookup), compressed_vocab);
    for (int64_t l : ec.layer_ids) {
      if (l >= L) {
        fail(Errc::invalid_argument, "config.engram.layer_ids: layer ", l, " is outside [0, ", L,
             ")");
      }
      EngramLayerShape shape;
      shape.hidden = C;
      shape.hc = 1;
      shape.row_width = ec.row_dim();
      auto primes = hasher->primes(l);
      shape.primes.assign(primes.begin(), primes.end());
      shape.kernel = ec.kernel_size > 0 ? ec.kernel_size : 4;
      shape.dilation = ec.max_ngram;
      EngramSlot slot;
      slot.layer = l;
      slot.mod = std::make_unique<EngramLayer>(shape, seed * 1000003 + 7919 * (l + 1));
      slot.params = slot.mod->named_parameters();
      slot.grads = slot.mod->named_grads();
      const std::string pre = "model.layers." + std::to_string(l) + ".engram.";
      for (const NamedTensor& t : slot.params) {
        const bool is_table = t.name == "multi_head_embedding.embedding.weight";
        infos.push_back(
            ParamInfo{pre + t.name, t.shape, -1, t.numel(), !is_table && t.shape.size() == 2});
      }
      engram_of[l] = static_cast<int64_t>(engrams.size());
      engrams.push_back(std::move(slot));
    }
  }

  // Engram tensor by full name: its data and (dense) gradient, or nulls when not an Engram name.
  std::pair<float*, float*> engram_tensor(const std::string& name) {
    for (EngramSlot& s : engrams) {
      const std::string pre = "model.layers." + std::to_string(s.layer) + ".engram.";
      if (name.rfind(pre, 0) != 0) continue;
      const std::string rest = name.substr(pre.size());
      for (const NamedTensor& t : s.params) {
        if (t.name != rest) continue;
        float* g = nullptr;
        for (const NamedTensor& gt : s.grads) {
          if (gt.name == rest) g = gt.data;
        }
        return {t.data, g};
      }
    }
    return {nullptr, nullptr};
  }

  void init_weights(uint64_t seed) {
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

  // Measures (first call) or assigns (second call) the activation buffers for (B, T).
  void plan_acts(Acts& a, int64_t B, int64_t T) {
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

  void ensure_acts(Acts& a, int64_t B, int64_t T) {
    if (a.arena.allocated() && a.B == B && a.T == T) return;
    a.arena = Arena();
    plan_acts(a, B, T);
    a.arena.allocate();
    plan_acts(a, B, T);
  }

  void check_ids(const int32_t* ids, int64_t N, int64_t T, const char* what) const {
    for (int64_t n = 0; n < N; n++) {
      if (ids[n] < 0 || ids[n] >= V) {
        fail(Errc::out_of_range, what, "[", n / T, ", ", n % T, "] = ", ids[n],
             " is outside the vocabulary [0, ", V, ")");
      }
    }
  }

  // ---- FFN (dense or MoE) -----------------------------------------------------------------------

  // out (N, C) += FFN(la.xn2). Uses a's shared scratch for the MoE gather.
  void ffn_forward(int64_t l, LayerActs& la, Acts& a, float* out, int64_t N) {
    const LayerParams& w = p.layers[l];
    if (!moe) {
      linear_forward(la.gateup, la.xn2, w.w_gateup, nullptr, N, C, 2 * F);
      swiglu_forward(la.act, la.gateup, N, F);
      linear_forward(out, la.act, w.w_down, nullptr, N, F, C, true);
      return;
    }
    // Router and top-k.
    linear_forward(a.rlogits, la.xn2, w.router, nullptr, N, C, E);
    moe_route_forward(la.probs, la.topk, la.gates, a.rlogits, N, E, K, cfg.moe.norm_topk_prob);
    moe_dispatch_plan(la.slot, la.order, la.e_start, la.topk, N, E, K);
    la.aux = moe_aux_loss_forward(la.probs, la.topk, N, E, K, cfg.moe.aux_loss_coef);
    // Experts over their gathered rows.
    const int64_t* start = la.e_start;
    moe_dispatch_forward(a.xg, la.xn2, la.order, N * K, C);
    for (int64_t e = 0; e < E; e++) {
      const int64_t s0 = start[e], cnt = start[e + 1] - start[e];
      linear_forward(la.e_gateup + s0 * 2 * Fe, a.xg + s0 * C, w.e_gateup + e * 2 * Fe * C, nullptr,
                     cnt, C, 2 * Fe);
      swiglu_forward(la.e_act + s0 * Fe, la.e_gateup + s0 * 2 * Fe, cnt, Fe);
      linear_forward(la.e_out + s0 * C, la.e_act + s0 * Fe, w.e_down + e * C * Fe, nullptr, cnt, Fe,
                     C);
    }
    if (Fs > 0) {
      linear_forward(la.s_gateup, la.xn2, w.s_gateup, nullptr, N, C, 2 * Fs);
      swiglu_forward(la.s_act, la.s_gateup, N, Fs);
      linear_forward(out, la.s_act, w.s_down, nullptr, N, Fs, C, true);
    }
    moe_combine_forward(out, la.e_out, la.gates, la.slot, N, K, C);
  }

  // dxn (N, C) += d FFN / d xn2 given dout (N, C); parameter gradients +=.
  void ffn_backward(int64_t l, LayerActs& la, Acts& a, float* dxn, const float* dout, int64_t N) {
    const LayerParams& w = p.layers[l];
    const LayerParams& gw = g.layers[l];
    if (!moe) {
      std::fill(a.dact, a.dact + N * F, 0.0f);
      std::fill(a.dgateup, a.dgateup + N * 2 * F, 0.0f);
      linear_backward(a.dact, gw.w_down, nullptr, dout, la.act, w.w_down, N, F, C);
      swiglu_backward(a.dgateup, a.dact, la.gateup, N, F);
      linear_backward(dxn, gw.w_gateup, nullptr, a.dgateup, la.xn2, w.w_gateup, N, C, 2 * F);
      return;
    }
    const int64_t A = N * K;
    if (Fs > 0) {
      std::fill(a.dact, a.dact + N * Fs, 0.0f);
      std::fill(a.dgateup, a.dgateup + N * 2 * Fs, 0.0f);
      linear_backward(a.dact, gw.s_down, nullptr, dout, la.s_act, w.s_down, N, Fs, C);
      swiglu_backward(a.dgateup, a.dact, la.s_gateup, N, Fs);
      linear_backward(dxn, gw.s_gateup, nullptr, a.dgateup, la.xn2, w.s_gateup, N, C, 2 * Fs);
    }
    std::fill(a.de_out, a.de_out + A * C, 0.0f);
    std::fill(a.dgates, a.dgates + N * K, 0.0f);
    moe_combine_backward(a.de_out, a.dgates, dout, la.e_out, la.gates, la.slot, N, K, C);
    moe_dispatch_forward(a.xg, la.xn2, la.order, A, C);
    std::fill(a.de_act, a.de_act + A * Fe, 0.0f);
    std::fill(a.de_gateup, a.de_gateup + A * 2 * Fe, 0.0f);
    std::fill(a.dxg, a.dxg + A * C, 0.0f);
    const int64_t* start = la.e_start;
    for (int64_t e = 0; e < E; e++) {
      const int64_t s0 = start[e], cnt = start[e + 1] - start[e];
      linear_backward(a.de_act + s0 * Fe, gw.e_down + e * C * Fe, nullptr, a.de_out + s0 * C,
                      la.e_act + s0 * Fe, w.e_down + e * C * Fe, cnt, Fe, C);
      swiglu_backward(a.de_gateup + s0 * 2 * Fe, a.de_act + s0 * Fe, la.e_gateup + s0 * 2 * Fe, cnt,
                      Fe);
      linear_backward(a.dxg + s0 * C, gw.e_gateup + e * 2 * Fe * C, nullptr,
                      a.de_gateup + s0 * 2 * Fe, a.xg + s0 * C, w.e_gateup + e * 2 * Fe * C, cnt, C,
                      2 * Fe);
    }
    moe_dispatch_backward(dxn, a.dxg, la.slot, N, K, C);
    // Router: the gates' and the load-balancing loss's gradients -> probs -> logits.
    std::fill(a.dprobs, a.dprobs + N * E, 0.0f);
    moe_aux_loss_backward(a.dprobs, la.topk, N, E, K, cfg.moe.aux_loss_coef, 1.0f);
    float* dlogits = a.rlogits;  // reuse: (N, E)
    std::fill(dlogits, dlogits + N * E, 0.0f);
    moe_route_backward(dlogits, a.dgates, a.dprobs, la.probs, la.topk, la.gates, N, E, K,
                       cfg.moe.norm_topk_prob);
    linear_backward(dxn, gw.router, nullptr, dlogits, la.xn2, w.router, N, C, E);
  }

  // ---- training forward / backward ------------------------------------------------------------

  void forward_body(const int32_t* ids, int64_t B, int64_t T) {
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

  float forward_train(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T) {
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

  void backward() {
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

  // ---- decoding -------------------------------------------------------------------------------

  void check_not_broken(const char* who) const {
    if (dec_broken && cache_len > 0) {
      fail(Errc::invalid_argument, who, ": an earlier step of this sequence failed at position ",
           cache_len, ", so its state is lost; call reset_cache() first");
    }
  }

  // One decode step. With a store, the step's rows come from `staged` (a ticket holding rows for
  // several positions, this one at `staged_pos`) when given, else from a fetch issued here.
  const float* decode(int32_t token, Ticket* staged = nullptr, size_t staged_pos = 0) {
    if (cache_len >= cfg.max_seq_len) {
      fail(Errc::out_of_range, "decode_step: the KV cache is full (max_seq_len ", cfg.max_seq_len,
           ")");
    }
    check_ids(&token, 1, 1, "token");
    check_not_broken("decode_step");
    if (kcache.empty()) {
      kcache.assign(L * cfg.max_seq_len * KV * D, 0.0f);
      vcache.assign(L * cfg.max_seq_len * KV * D, 0.0f);
      dec_scratch.assign(cfg.max_seq_len, 0.0f);
    }
    ensure_acts(dec, 1, 1);
    Acts& a = dec;
    const int64_t pos = cache_len;
    const int64_t raw = token;
    const bool served = row_store != nullptr;
    const int64_t t_entry = served ? now_ns() : 0;
    dec_broken = true;  // until this step completes
    if (pos == 0) {
      for (EngramSlot& s : engrams) {
        s.mod->reset_decode(1);
        s.dec_state = HashState{};
      }
    }
    // With a store, the hash ids are global rows (column offsets added) and every Engram layer's
    // fetch starts here, before the embedding; the ticket cancels what is left if a layer throws.
    // Staged rows were hashed and fetched for every position by decode_many.
    for (EngramSlot& s : engrams) {
      s.out.resize(C);
      if (staged != nullptr) continue;
      s.hash.resize(hasher->num_columns());
      hasher->hash_chunk(s.dec_state, s.layer, {&raw, 1}, s.hash, {}, served);
    }
    Ticket ticket;
    if (prefetcher && staged == nullptr) {
      std::vector<LayerRequest> requests(engrams.size());
      for (size_t i = 0; i < engrams.size(); i++) {
        requests[i].table = store_table[i];
        requests[i].ids = engrams[i].hash;
      }
      ticket = prefetcher->prefetch(pos, std::move(requests));
    }
    if (fetch_inline()) {
      // No worker: the calling thread gathers now (for tiers faster than a thread hand-off).
      inline_rows.resize(engrams.size());
      for (size_t i = 0; i < engrams.size(); i++) {
        inline_rows[i].resize(size_t(engrams[i].mod->shape().emb_dim()));
        row_store->gather_f32(store_table[i], engrams[i].hash, inline_rows[i].data());
      }
      const int64_t dt = now_ns() - t_entry;
      dec_stats.fetch_ns += dt * int64_t(engrams.size());
      dec_stats.wait_ns += dt;
    }
    int64_t t_first_wait = 0;
    embedding_forward(a.layers[0].x, &token, p.wte, 1, C);
    for (int64_t l = 0; l < L; l++) {
      LayerActs& la = a.layers[l];
      const LayerParams& w = p.layers[l];
      float* next = l + 1 < L ? a.layers[l + 1].x : a.xf;
      if (engram_of[l] >= 0) {
        EngramSlot& s = engrams[engram_of[l]];
        if (fetch_inline()) {
          if (t_first_wait == 0) t_first_wait = now_ns();
          s.mod->decode_step_rows(s.out.data(), la.x, inline_rows[size_t(engram_of[l])].data(), 1);
        } else if (prefetcher) {
          if (t_first_wait == 0) t_first_wait = now_ns();
          const size_t E = size_t(s.mod->shape().emb_dim());
          const StagedRows rows = (staged ? *staged : ticket).wait(size_t(engram_of[l]));
          s.mod->decode_step_rows(s.out.data(), la.x, rows.f32().data() + staged_pos * E, 1);
        } else {
          s.mod->decode_step(s.out.data(), la.x, s.hash.data(), 1);
        }
        for (int64_t i = 0; i < C; i++) la.xe[i] = la.x[i] + s.out[i];
      }
      rmsnorm_forward(la.xn1, C, la.rstd1, la.xe, C, w.attn_norm, 1, C, cfg.norm_eps);
      linear_forward(la.qkv, la.xn1, w.wqkv, nullptr, 1, C, QKV);
      rope_forward(la.qkv, rope_cos.data(), rope_sin.data(), 1, 1, H, D, QKV, pos);
      rope_forward(la.qkv + H * D, rope_cos.data(), rope_sin.data(), 1, 1, KV, D, QKV, pos);
      float* kc = kcache.data() + l * cfg.max_seq_len * KV * D;
      float* vc = vcache.data() + l * cfg.max_seq_len * KV * D;
      std::memcpy(kc + pos * KV * D, la.qkv + H * D, KV * D * sizeof(float));
      std::memcpy(vc + pos * KV * D, la.qkv + (H + KV) * D, KV * D * sizeof(float));
      attention_decode(la.atty, la.qkv, kc, vc, pos + 1, H, KV, D, dec_scratch.data());
      std::memcpy(la.h, la.xe, C * sizeof(float));
      linear_forward(la.h, la.atty, w.wo, nullptr, 1, H * D, C, true);
      rmsnorm_forward(la.xn2, C, la.rstd2, la.h, C, w.mlp_norm, 1, C, cfg.norm_eps);
      std::memcpy(next, la.h, C * sizeof(float));
      ffn_forward(l, la, a, next, 1);
    }
    rmsnorm_forward(a.xnf, C, a.rstdf, a.xf, C, p.norm, 1, C, cfg.norm_eps);
    linear_forward(a.logits, a.xnf, p.lm_head, nullptr, 1, C, V);
    for (EngramSlot& s : engrams) hasher->advance(s.dec_state, {&raw, 1});
    cache_len++;
    dec_broken = false;
    if (served && staged == nullptr) {
      for (size_t i = 0; prefetcher && i < engrams.size(); i++) {
        const LayerTiming t = ticket.timing(i);
        dec_stats.wait_ns += t.wait_ns;
        dec_stats.fetch_ns += t.fetch_ns;
      }
      dec_stats.ahead_ns += t_first_wait - t_entry;
      dec_stats.step_ns += now_ns() - t_entry;
      dec_stats.steps++;
    }
    return a.logits;
  }

  // Feeds `tokens` as consecutive decode steps. With a store, every position's rows are known
  // now (the tokens are), so one fetch per Engram layer covers them all and is issued before the
  // first step: a prompt costs one fetch latency, not one per token.
  const float* decode_many(std::span<const int32_t> tokens) {
    if (tokens.empty()) fail(Errc::invalid_argument, "decode_prompt: no tokens");
    const int64_t n = int64_t(tokens.size());
    if (cache_len + n > cfg.max_seq_len) {
      fail(Errc::out_of_range, "decode_prompt: ", n, " tokens at position ", cache_len,
           " exceed max_seq_len ", cfg.max_seq_len);
    }
    check_ids(tokens.data(), n, n, "tokens");
    check_not_broken("decode_prompt");
    if (!prefetcher || n == 1) {
      const float* out = nullptr;
      for (int32_t t : tokens) out = decode(t);
      return out;
    }
    const std::vector<int64_t> raw(tokens.begin(), tokens.end());
    std::vector<LayerRequest> requests(engrams.size());
    for (size_t i = 0; i < engrams.size(); i++) {
      const EngramSlot& s = engrams[i];
      const HashState from = cache_len == 0 ? HashState{} : s.dec_state;
      requests[i].table = store_table[i];
      requests[i].ids.resize(size_t(n * hasher->num_columns()));
      hasher->hash_chunk(from, s.layer, raw, requests[i].ids, {}, true);
    }
    Ticket ticket = prefetcher->prefetch(cache_len, std::move(requests));
    const float* out = nullptr;
    for (int64_t i = 0; i < n; i++) out = decode(tokens[size_t(i)], &ticket, size_t(i));
    return out;
  }

  // Checks that `store` holds every Engram table of this model as F32 [rows, row_width] under
  // the name export_engram_tables gives it, then routes decoding through a Prefetcher over it.
  void serve_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options) {
    if (!store) fail(Errc::invalid_argument, "serve_engram_from: the store is null");
    if (engrams.empty()) {
      fail(Errc::invalid_argument, "serve_engram_from: the model has no Engram layer");
    }
    std::vector<size_t> tables;
    for (const EngramSlot& s : engrams) {
      const std::string name = engram_store_table_name(s.layer);
      const size_t t = store->table_index(name);
      const TableDesc& d = store->table(t);
      const EngramLayerShape& sh = s.mod->shape();
      if (d.format.dtype != RowDtype::f32 || d.format.width != sh.row_width ||
          d.rows != sh.table_rows()) {
        fail(Errc::mismatch, "serve_engram_from: store table ", name, " is ",
             row_dtype_name(d.format.dtype), " [", d.rows, ", ", d.format.width,
             "] but the model's Engram layer ", s.layer, " needs f32 [", sh.table_rows(), ", ",
             sh.row_width, "]");
      }
      tables.push_back(t);
    }
    std::unique_ptr<Prefetcher> fetcher;  // built first: a bad option leaves the model as it was
    if (options.threads != 0) {
      PrefetchOptions opt = options;
      opt.output = RowOutput::f32;
      fetcher = std::make_unique<Prefetcher>(store, opt);
    }
    prefetcher = std::move(fetcher);
    row_store = std::move(store);
    store_table = std::move(tables);
    dec_stats = DecodeStats{};
  }

  double train_flops(int64_t B, int64_t T) const {
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
};

// ---- public API
// -----------------------------------------------------------------------------------

Model::Model(const ModelConfig& config, uint64_t seed) : impl_(std::make_unique<Impl>(config)) {
  impl_->init_weights(seed);
  impl_->build_engram(seed);
}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

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

std::vector<EngramTableView> Model::engram_tables() {
  std::vector<EngramTableView> out;
  for (Impl::EngramSlot& s : impl_->engrams) {
    const EngramLayerShape& sh = s.mod->shape();
    nn::RowGrads& g = s.mod->table_grad();
    out.push_back(EngramTableView{s.layer, engram_table_param_name(s.layer), s.mod->params().table,
                                  sh.table_rows(), sh.row_width, g.rows, g.grads});
  }
  return out;
}

std::vector<int64_t> Model::engram_hash_ids(int64_t layer, const int32_t* ids, int64_t B,
                                            int64_t T) {
  if (!impl_->hasher || layer < 0 || layer >= impl_->L || impl_->engram_of[layer] < 0) {
    fail(Errc::out_of_range, "engram_hash_ids: layer ", layer, " has no Engram block");
  }
  std::vector<int64_t> raw(ids, ids + B * T);
  std::vector<int64_t> out(B * T * impl_->hasher->num_columns());
  impl_->hasher->hash(layer, raw, B, T, out);
  return out;
}

float Model::clip_grad_norm(float max_norm) {
  std::vector<std::span<float>> grads;
  for (const ParamSpan& ps : param_spans()) grads.emplace_back(ps.grad, ps.numel);
  for (const EngramTableView& t : engram_tables()) grads.push_back(t.grad_values);
  return engram::clip_grad_norm(grads, max_norm);
}

float Model::forward(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T) {
  return impl_->forward_train(ids, targets, B, T);
}

void Model::forward(const int32_t* ids, int64_t B, int64_t T) {
  impl_->have_train_forward = false;
  impl_->forward_body(ids, B, T);
}

std::span<const float> Model::logits() const {
  const Acts& a = impl_->acts;
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

std::span<const float> Model::decode_step(int32_t token) {
  return {impl_->decode(token), static_cast<size_t>(impl_->V)};
}
void Model::reset_cache() {
  impl_->cache_len = 0;
}  // Engram decode state resets at position 0
int64_t Model::cache_length() const {
  return impl_->cache_len;
}

std::span<const float> Model::decode_prompt(std::span<const int32_t> tokens) {
  return {impl_->decode_many(tokens), static_cast<size_t>(impl_->V)};
}

void Model::serve_engram_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options) {
  impl_->serve_from(std::move(store), options);
}
void Model::serve_engram_resident() {
  impl_->prefetcher.reset();
  impl_->row_store.reset();
  impl_->store_table.clear();
}
bool Model::engram_served() const {
  return impl_->row_store != nullptr;
}
DecodeStats Model::decode_stats() const {
  return impl_->dec_stats;
}
void Model::reset_decode_stats() {
  impl_->dec_stats = DecodeStats{};
}

double Model::train_flops(int64_t B, int64_t T) const {
  return impl_->train_flops(B, T);
}

}  // namespace engram
