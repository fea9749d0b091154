// libFuzzer target for EngramConfig::from_json (both forms). Any input must either throw
// engram::Error or give a config that keeps its documented promises; for small accepted configs
// the hash layout is built and a few ids are hashed with the fast kernel and the reference,
// which must agree. A crash, hang, sanitizer report or disagreement is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "hash/hash_kernels.h"

namespace {

void check_promises(const engram::EngramConfig& c) {
  using engram::EngramConfig;
  if (c.layer_ids.empty() || static_cast<int64_t>(c.layer_ids.size()) > EngramConfig::kMaxLayers)
    std::abort();
  for (size_t i = 1; i < c.layer_ids.size(); ++i) {
    if (c.layer_ids[i] <= c.layer_ids[i - 1]) std::abort();
  }
  if (c.layer_ids.front() < 0) std::abort();
  if (c.max_ngram < 2 || c.max_ngram > EngramConfig::kMaxNgram) std::abort();
  if (c.n_head < 1 || c.n_head > EngramConfig::kMaxHeads) std::abort();
  if (c.vocab_size_per_ngram.size() != static_cast<size_t>(c.max_ngram - 1)) std::abort();
  for (int64_t v : c.vocab_size_per_ngram) {
    if (v < 1 || v > EngramConfig::kMaxVocab) std::abort();
  }
  if (c.pad_id < 0 || c.seed < 0 || c.row_dim() < 1) std::abort();
  // V4.1 form: hashing needs only the engram_* keys; hidden_size, hc_mult and the eps are
  // optional, and sane when present.
  if (c.form == EngramConfig::Form::deepseek_v41 &&
      (c.num_embeddings.size() != c.layer_ids.size() || !c.compressed_vocab_size)) {
    std::abort();
  }
  if ((c.hidden_size && *c.hidden_size < 1) || (c.hc_mult && *c.hc_mult < 1) ||
      (c.norm_eps && !(*c.norm_eps > 0))) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  engram::EngramConfig cfg;
  try {
    cfg = engram::EngramConfig::from_json(text, "<fuzz>");
  } catch (const engram::Error&) {
    return 0;
  }
  check_promises(cfg);
  // Build and exercise the hasher only when the layout is small.
  const int64_t primes = static_cast<int64_t>(cfg.layer_ids.size()) * cfg.num_columns();
  if (primes > 256 || cfg.pad_id >= 64) return 0;
  const int64_t vocab = 64;
  const int64_t compressed = cfg.compressed_vocab_size.value_or(vocab);
  if (compressed > vocab) return 0;
  std::vector<int64_t> lookup(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) lookup[static_cast<size_t>(i)] = i % compressed;
  try {
    const engram::NgramHasher h(cfg, lookup, compressed);
    // Ids from the input bytes, some negative, some dead.
    std::vector<int64_t> ids;
    std::vector<uint8_t> dead;
    for (size_t i = 0; i < size && ids.size() < 32; ++i) {
      ids.push_back(static_cast<int64_t>(static_cast<int8_t>(data[i])) % vocab);
      dead.push_back(data[i] % 7 == 0);
    }
    const int64_t T = static_cast<int64_t>(ids.size());
    std::vector<int64_t> compressed_ids(ids.size()), fast(ids.size() * h.num_columns()),
        ref(fast.size());
    h.compress(ids, 1, T, compressed_ids, dead);
    for (int64_t layer : h.layer_ids()) {
      h.hash_compressed(layer, compressed_ids, 1, T, fast, dead, true);
      engram::hash_detail::hash_row_reference(h.layout(layer), h.max_ngram(), h.n_head(),
                                              h.pad_compressed(), compressed_ids.data(),
                                              dead.data(), T, {}, ref.data(), true);
      if (fast != ref) std::abort();
      for (size_t i = 0; i < fast.size(); ++i) {
        if (fast[i] < 0 || fast[i] >= h.total_rows(layer)) std::abort();
      }
    }
  } catch (const engram::Error& e) {
    // Accepted configs may still disagree with themselves (V4.1 table sizes vs primes).
    if (e.code() != engram::Errc::mismatch) std::abort();
  }
  return 0;
}
