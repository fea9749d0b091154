// The Engram layers inside engram::Model (model/model_impl.h): building them from the typed
// Engram config (the hasher, vocabulary compression, one EngramLayer per layer id), their
// parameters by name, their sparse table gradients, and the hash ids of a batch. The block
// itself (x <- x + Engram(x, hash(ids)) before attention) runs in forward_backward.cpp and
// decode.cpp.
#include <memory>
#include <string>
#include <vector>

#include "engram/compressor.h"
#include "engram/error.h"
#include "model/model_impl.h"

namespace engram {

void Model::Impl::build_engram(uint64_t seed) {
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

std::pair<float*, float*> Model::Impl::engram_tensor(const std::string& name) {
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

std::vector<EngramTableView> Model::engram_tables() {
  std::vector<EngramTableView> out;
  for (Impl::EngramSlot& s : impl_->engrams) {
    const EngramLayerShape& sh = s.mod->shape();
    RowGrads& g = s.mod->table_grad();
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

}  // namespace engram
