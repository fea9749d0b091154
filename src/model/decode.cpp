// KV-cache decoding of engram::Model (model/model_impl.h), batch 1. Engram rows take one path
// whatever their source: at step entry the token is hashed to global rows and every Engram
// layer's rows are fetched at once (by a Prefetcher from a row store, or gathered on this thread
// from the store or the layers' own tables); each Engram layer then runs decode_step_rows on its
// rows, waiting only for its own. decode_prompt fetches every position's rows before the first
// step.
#include <cstring>

#include "engram/error.h"
#include "model/model_impl.h"
#include "nn/attention.h"
#include "nn/kernels.h"
#include "util/clock.h"

namespace engram {

using namespace nn;

void Model::Impl::check_not_broken(const char* who) const {
  if (dec_broken && cache_len > 0) {
    fail(Errc::invalid_argument, who, ": an earlier step of this sequence failed at position ",
         cache_len, ", so its state is lost; call reset_cache() first");
  }
}

void Model::Impl::fetch_step_rows(StepRows& rows, int64_t raw, int64_t pos, int64_t t_entry) {
  // Global rows (hash values plus column offsets): what stores and tables are indexed by.
  if (rows.staged == nullptr) {
    for (EngramSlot& s : engrams) {
      s.hash.resize(hasher->num_columns());
      hasher->hash_chunk(s.dec_state, s.layer, {&raw, 1}, s.hash, {}, true);
    }
  }
  if (prefetcher) {
    if (rows.staged != nullptr) return;  // decode_many fetched every position's rows
    std::vector<LayerRequest> requests(engrams.size());
    for (size_t i = 0; i < engrams.size(); i++) {
      requests[i].table = store_table[i];
      requests[i].ids = engrams[i].hash;
    }
    rows.ticket = prefetcher->prefetch(pos, std::move(requests));
    return;
  }
  // No worker: this thread gathers now, from the store (a tier faster than a thread hand-off)
  // or from the layers' own tables.
  gathered_rows.resize(engrams.size());
  for (size_t i = 0; i < engrams.size(); i++) {
    const EngramLayer& mod = *engrams[i].mod;
    std::vector<float>& out = gathered_rows[i];
    out.resize(size_t(mod.shape().emb_dim()));
    if (row_store) {
      row_store->gather_f32(store_table[i], engrams[i].hash, out.data());
    } else {
      embedding_gather(out.data(), mod.params().table, engrams[i].hash.data(), 1,
                       mod.shape().cols(), mod.shape().row_width);
    }
  }
  if (row_store) {
    const int64_t dt = now_ns() - t_entry;
    dec_stats.fetch_ns += dt * int64_t(engrams.size());
    dec_stats.wait_ns += dt;
  }
}

const float* Model::Impl::step_rows(StepRows& rows, size_t i) {
  if (!prefetcher) return gathered_rows[i].data();
  const size_t E = size_t(engrams[i].mod->shape().emb_dim());
  const StagedRows staged = (rows.staged ? *rows.staged : rows.ticket).wait(i);
  return staged.f32().data() + rows.staged_pos * E;  // owned by the ticket, not by `staged`
}

const float* Model::Impl::decode(int32_t token, Ticket* staged, size_t staged_pos) {
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
  // Every Engram layer's fetch starts here, before the embedding; the ticket cancels what is
  // left if a layer throws.
  StepRows rows;
  rows.staged = staged;
  rows.staged_pos = staged_pos;
  if (!engrams.empty()) fetch_step_rows(rows, raw, pos, t_entry);
  int64_t t_first_wait = 0;
  embedding_forward(a.layers[0].x, &token, p.wte, 1, C);
  for (int64_t l = 0; l < L; l++) {
    LayerActs& la = a.layers[l];
    const LayerParams& w = p.layers[l];
    float* next = l + 1 < L ? a.layers[l + 1].x : a.xf;
    if (engram_of[l] >= 0) {
      EngramSlot& s = engrams[engram_of[l]];
      if (served && t_first_wait == 0) t_first_wait = now_ns();
      s.out.resize(C);
      s.mod->decode_step_rows(s.out.data(), la.x, step_rows(rows, size_t(engram_of[l])), 1);
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
      const LayerTiming t = rows.ticket.timing(i);
      dec_stats.wait_ns += t.wait_ns;
      dec_stats.fetch_ns += t.fetch_ns;
    }
    dec_stats.ahead_ns += t_first_wait - t_entry;
    dec_stats.step_ns += now_ns() - t_entry;
    dec_stats.steps++;
  }
  return a.logits;
}

const float* Model::Impl::decode_many(std::span<const int32_t> tokens) {
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

}  // namespace engram
