// model/model_impl.h: the inside of engram::Model (engram/model.h), shared by the files that
// implement it, one concern each:
//   params.cpp            parameter layout, initialization and the accessors by name
//   forward_backward.cpp  the activation arena, training forward and backward, the loss
//   ffn.cpp               each layer's FFN: the dense SwiGLU MLP or the mixture of experts
//   engram_block.cpp      the Engram layers inside the model (building, hashing, tables)
//   decode.cpp            KV-cache decoding with one path for Engram rows
//   store_serving.cpp     serving Engram rows from a row store; exporting the tables for one
//   model.cpp             construction, and gradient clipping
// Not part of the API: nothing outside src/model includes it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engram/engram_layer.h"
#include "engram/hasher.h"
#include "engram/model.h"
#include "engram/prefetch.h"
#include "engram/store.h"

namespace engram {

struct Model::Impl {
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
    // (N, cols) hash values of the last forward; (cols) global rows of the last decode step
    std::vector<int64_t> hash;
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
  // Without a Prefetcher (none, or PrefetchOptions.threads == 0) the decoding thread gathers
  // the rows at step entry.
  std::unique_ptr<Prefetcher> prefetcher;
  std::shared_ptr<RowStore> row_store;
  std::vector<size_t> store_table;  // (engrams.size()) store table of each Engram layer
  std::vector<std::vector<float>> gathered_rows;  // (engrams.size()) (E) rows of the step
  DecodeStats dec_stats;
  bool dec_broken = false;  // a step failed half-way: the sequence's state is inconsistent

  // ---- params.cpp ------------------------------------------------------------------------------
  explicit Impl(const ModelConfig& c);
  // Registers every tensor (name, shape, offset) and sets the named pointers of p and g.
  void layout();
  void init_weights(uint64_t seed);

  // ---- engram_block.cpp ------------------------------------------------------------------------
  // Builds the Engram layers (after init_weights, so the backbone's random stream does not
  // depend on whether Engram is on).
  void build_engram(uint64_t seed);
  // Engram tensor by full name: its data and (dense) gradient, or nulls when not an Engram name.
  std::pair<float*, float*> engram_tensor(const std::string& name);

  // ---- forward_backward.cpp --------------------------------------------------------------------
  // Measures (first call) or assigns (second call) the activation buffers for (B, T).
  void plan_acts(Acts& a, int64_t B, int64_t T);
  void ensure_acts(Acts& a, int64_t B, int64_t T);
  void check_ids(const int32_t* ids, int64_t N, int64_t T, const char* what) const;
  void forward_body(const int32_t* ids, int64_t B, int64_t T);
  float forward_train(const int32_t* ids, const int32_t* targets, int64_t B, int64_t T);
  void backward();
  double train_flops(int64_t B, int64_t T) const;

  // ---- ffn.cpp ---------------------------------------------------------------------------------
  // out (N, C) += FFN(la.xn2). Uses a's shared scratch for the MoE gather.
  void ffn_forward(int64_t l, LayerActs& la, Acts& a, float* out, int64_t N);
  // dxn (N, C) += d FFN / d xn2 given dout (N, C); parameter gradients +=.
  void ffn_backward(int64_t l, LayerActs& la, Acts& a, float* dxn, const float* dout, int64_t N);

  // ---- decode.cpp ------------------------------------------------------------------------------
  void check_not_broken(const char* who) const;
  // A decode step's Engram rows, (E) floats per Engram layer, all fetched at step entry.
  struct StepRows {
    Ticket ticket;             // the Prefetcher's fetch for this step
    Ticket* staged = nullptr;  // or decode_many's, holding rows for several positions
    size_t staged_pos = 0;     // this step's position in `staged`
  };
  // Starts this step's fetch for every Engram layer: hashes `raw` (unless staged), then either
  // hands the fetch to the Prefetcher or gathers now, from the store or the layers' own tables.
  void fetch_step_rows(StepRows& rows, int64_t raw, int64_t pos, int64_t t_entry);
  // Engram layer i's rows of the step (waits for a Prefetcher's fetch).
  const float* step_rows(StepRows& rows, size_t i);
  // One decode step. Its rows come from `staged` (a ticket holding rows for several positions,
  // this one at `staged_pos`) when given, else from a fetch started here.
  const float* decode(int32_t token, Ticket* staged = nullptr, size_t staged_pos = 0);
  // Feeds `tokens` as consecutive decode steps. With a store, every position's rows are known
  // now (the tokens are), so one fetch per Engram layer covers them all and is issued before the
  // first step: a prompt costs one fetch latency, not one per token.
  const float* decode_many(std::span<const int32_t> tokens);

  // ---- store_serving.cpp -----------------------------------------------------------------------
  // Checks that `store` holds every Engram table of this model as F32 [rows, row_width] under
  // the name export_engram_tables gives it, then routes decoding through a Prefetcher over it.
  void serve_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options);
};

}  // namespace engram
