// ModelConfig <-> JSON (engram/model_config.h), and a new model's config with its tokenizer's
// compression lookup. Strict: an unknown key is an error (a typo must not silently fall back
// to a default), and every size is checked against the others before a model is built. The
// "engram" object is read once into the typed EngramOptions (engram/config.h's demo-form parser
// checks its keys) and written back in the same form.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engram/model_config.h"

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "util/checked.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {

namespace {

using nlohmann::json;

template <typename T>
T get_field(const json& obj, const char* key, const std::string& where, T fallback) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(Errc::parse, where, ": key \"", key, "\" has the wrong type (", it->type_name(), ")");
  }
}

void check_keys(const json& obj, std::initializer_list<const char*> known,
                const std::string& where) {
  if (!obj.is_object()) fail(Errc::parse, where, ": expected a JSON object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok |= it.key() == k;
    if (!ok) fail(Errc::parse, where, ": unknown key \"", it.key(), "\"");
  }
}

void check_engram_layer_ids(const std::vector<int64_t>& ids, int64_t n_layers,
                            const std::string& where) {
  for (int64_t id : ids) {
    if (id < 0 || id >= n_layers) {
      fail(Errc::invalid_argument, where, ".engram.layer_ids: layer ", id, " is outside [0, ",
           n_layers, ")");
    }
  }
}

json engram_to_json(const EngramOptions& e) {
  json j = {{"layer_ids", e.layer_ids},
            {"engram_vocab_size", e.vocab_size_per_ngram},
            {"max_ngram_size", e.max_ngram},
            {"n_embed_per_ngram", e.n_embed_per_ngram},
            {"n_head_per_ngram", e.n_head},
            {"pad_id", e.pad_id},
            {"seed", e.seed},
            {"kernel_size", e.kernel_size}};
  if (e.hidden_size) j["hidden_size"] = *e.hidden_size;
  if (e.hc_mult) j["hc_mult"] = *e.hc_mult;
  if (e.vocab_size) j["vocab_size"] = *e.vocab_size;
  if (e.num_layers) j["num_layers"] = *e.num_layers;
  if (e.compress_tokens) j["compress_tokens"] = true;
  return j;
}

// The fields the model uses, for a config built in code (from_json's parser checked a file's).
void validate_engram(const EngramOptions& e, int64_t hidden_size, const std::string& w) {
  if (e.form != EngramConfig::Form::demo) {
    fail(Errc::unsupported, w, ": the transformer takes the demo form of the Engram config");
  }
  for (size_t i = 1; i < e.layer_ids.size(); i++) {
    if (e.layer_ids[i] <= e.layer_ids[i - 1]) {
      fail(Errc::invalid_argument, w, ".layer_ids: must be strictly increasing, got ",
           e.layer_ids[i - 1], " then ", e.layer_ids[i]);
    }
  }
  if (e.max_ngram < 2 || e.max_ngram > EngramConfig::kMaxNgram) {
    fail(Errc::invalid_argument, w, ".max_ngram_size ", e.max_ngram, " is outside [2, ",
         EngramConfig::kMaxNgram, "]");
  }
  if (int64_t(e.vocab_size_per_ngram.size()) != e.max_ngram - 1) {
    fail(Errc::invalid_argument, w, ".engram_vocab_size: ", e.vocab_size_per_ngram.size(),
         " entries where max_ngram_size - 1 = ", e.max_ngram - 1, " are needed");
  }
  for (int64_t v : e.vocab_size_per_ngram) {
    if (v < 1 || v > EngramConfig::kMaxVocab) {
      fail(Errc::invalid_argument, w, ".engram_vocab_size: entry ", v, " is outside [1, ",
           EngramConfig::kMaxVocab, "]");
    }
  }
  if (e.n_head < 1 || e.n_head > EngramConfig::kMaxHeads) {
    fail(Errc::invalid_argument, w, ".n_head_per_ngram ", e.n_head, " is outside [1, ",
         EngramConfig::kMaxHeads, "]");
  }
  if (e.n_embed_per_ngram < 1 || e.n_embed_per_ngram % e.n_head != 0) {
    fail(Errc::invalid_argument, w, ".n_embed_per_ngram ", e.n_embed_per_ngram,
         " is not a positive multiple of n_head_per_ngram ", e.n_head);
  }
  if (e.kernel_size < 1) {
    fail(Errc::invalid_argument, w, ".kernel_size must be positive, got ", e.kernel_size);
  }
  if (e.pad_id < 0 || e.seed < 0) {
    fail(Errc::invalid_argument, w, ": pad_id and seed must be >= 0");
  }
  if (e.hidden_size && *e.hidden_size != hidden_size) {
    fail(Errc::mismatch, w, ".hidden_size ", *e.hidden_size,
         " differs from the model's hidden_size ", hidden_size);
  }
  if (e.hc_mult && *e.hc_mult != 1) {
    fail(Errc::unsupported, w, ".hc_mult ", *e.hc_mult,
         ": the transformer has one residual stream (hc_mult 1)");
  }
}

// One term of a memory estimate: a count of floats and the keys it grows with.
struct SizeTerm {
  std::string keys;
  int64_t floats = 0;
};

// The model's parameters by the keys that size them, in checked arithmetic. Engram tables count
// every head's rows (each head's prime is at least its order's engram_vocab_size).
std::vector<SizeTerm> param_terms(const ModelConfig& c, const std::string& where) {
  const int64_t C = c.hidden_size, L = c.n_layers;
  auto mul = [&](std::initializer_list<int64_t> xs, const std::string& what) {
    int64_t r = 1;
    for (int64_t x : xs) r = checked_mul(r, x, where + ": " + what);
    return r;
  };
  auto checked_add = [&](int64_t a, int64_t b, const std::string& what) {
    return engram::checked_add(a, b, where + ": " + what);
  };
  std::vector<SizeTerm> t;
  const std::string emb = "vocab_size x hidden_size (embeddings)";
  t.push_back({emb, mul({c.vocab_size, C, c.tie_word_embeddings ? 1 : 2}, emb)});
  const std::string att = "n_layers x hidden_size x (n_heads + n_kv_heads) x head_dim (attention)";
  const int64_t qkvo = mul({checked_add(2 * c.n_heads, 2 * c.n_kv_heads, att), c.head_dim()}, att);
  t.push_back({att, mul({L, checked_add(mul({C, qkvo}, att), 2 * C, att)}, att)});
  if (c.moe.n_experts == 0) {
    const std::string mlp = "n_layers x hidden_size x ffn_hidden (MLP)";
    t.push_back({mlp, mul({L, C, c.ffn_hidden, 3}, mlp)});
  } else {
    const std::string ex =
        "n_layers x moe.n_experts x moe.expert_ffn_hidden x hidden_size (experts)";
    t.push_back(
        {ex, mul({L, c.moe.n_experts, checked_add(mul({3, c.moe.expert_ffn_hidden}, ex), 1, ex), C},
                 ex)});
    const std::string sh = "n_layers x moe.shared_ffn_hidden x hidden_size (shared expert)";
    t.push_back({sh, mul({L, c.moe.shared_ffn_hidden, C, 3}, sh)});
  }
  const EngramOptions& e = c.engram;
  if (!e.layer_ids.empty()) {
    const int64_t layers = int64_t(e.layer_ids.size());
    const std::string tab =
        "engram.engram_vocab_size x engram.n_embed_per_ngram x engram.layer_ids (Engram tables)";
    int64_t rows = 0;
    for (int64_t v : e.vocab_size_per_ngram) rows = checked_add(rows, v, tab);
    t.push_back({tab, mul({layers, rows, e.n_embed_per_ngram}, tab)});
    const std::string proj =
        "engram.max_ngram_size x engram.n_embed_per_ngram x hidden_size (Engram projections)";
    const int64_t width = mul({int64_t(e.max_ngram - 1), e.n_embed_per_ngram}, proj);
    t.push_back({proj, mul({layers, width, checked_add(mul({2, C}, proj), e.kernel_size + 2, proj)},
                           proj)});
  }
  return t;
}

std::string gib(int64_t bytes) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(1);
  o << double(bytes) / double(int64_t{1} << 30) << " GiB";
  return o.str();
}

}  // namespace

int64_t ModelConfig::param_count(const std::string& where) const {
  int64_t n = 0;
  for (const SizeTerm& t : param_terms(*this, where)) n = checked_add(n, t.floats, where);
  return n;
}

int64_t ModelConfig::model_bytes(const std::string& where) const {
  // Dense parameters have a gradient of the same layout; Engram tables are updated sparsely.
  int64_t floats = 0;
  for (const SizeTerm& t : param_terms(*this, where)) {
    const bool table = t.keys.find("Engram tables") != std::string::npos;
    floats = checked_add(floats, checked_mul(t.floats, table ? 1 : 2, t.keys), where);
  }
  const std::string rope = where + ": max_seq_len x head_dim (RoPE tables)";
  floats = checked_add(floats, checked_mul(max_seq_len, head_dim(), rope), rope);
  return checked_mul(floats, int64_t(sizeof(float)), where);
}

int64_t ModelConfig::train_bytes(int64_t batch, int64_t seq, const std::string& where) const {
  const std::string what = where + ": memory for training";
  // AdamW keeps two moments per parameter.
  const int64_t bytes =
      checked_add(model_bytes(where), checked_mul(param_count(where), 8, what), what);
  return checked_add(bytes, activation_bytes(batch, seq, where), what);
}

int64_t ModelConfig::activation_bytes(int64_t batch, int64_t seq, const std::string& where) const {
  const std::string what = where + ": activations of --batch x --seq";
  // Per token and layer: a few hidden-size vectors, the MLP's (or the chosen experts') hidden
  // units, one attention row of scores, the Engram layer's n-gram embeddings.
  int64_t mlp = 0;
  if (moe.n_experts == 0) {
    mlp = checked_mul(ffn_hidden, 3, what);
  } else {
    mlp = checked_add(checked_mul(checked_mul(moe.top_k, moe.expert_ffn_hidden, what), 3, what),
                      checked_add(checked_mul(moe.shared_ffn_hidden, 3, what), moe.n_experts, what),
                      what);
  }
  int64_t per_layer = checked_add(checked_mul(hidden_size, 16, what), mlp, what);
  per_layer = checked_add(per_layer, checked_mul(n_heads, seq, what), what);
  int64_t per_token = checked_mul(per_layer, n_layers, what);
  if (!engram.layer_ids.empty()) {
    const int64_t width =
        checked_mul(int64_t(engram.max_ngram - 1), engram.n_embed_per_ngram, what);
    per_token = checked_add(
        per_token, checked_mul(checked_mul(width, 4, what), int64_t(engram.layer_ids.size()), what),
        what);
  }
  per_token = checked_add(per_token, checked_mul(vocab_size, 2, what), what);  // logits, grad
  const int64_t tokens = checked_mul(batch, seq, what);
  return checked_mul(checked_mul(tokens, per_token, what), 4, what);
}

void ModelConfig::check_memory(int64_t bytes, const std::string& what,
                               const std::string& where) const {
  const uint64_t phys = physical_memory_bytes();
  if (phys == 0 || uint64_t(bytes) <= phys) return;
  std::vector<SizeTerm> terms = param_terms(*this, where);
  const auto largest =
      std::max_element(terms.begin(), terms.end(),
                       [](const SizeTerm& a, const SizeTerm& b) { return a.floats < b.floats; });
  fail(Errc::invalid_argument, where, ": ", what, " needs an estimated ", gib(bytes), " (",
       param_count(where), " parameters, the largest term ", largest->keys, " = ", largest->floats,
       ") but this machine has ", gib(int64_t(phys)), " of memory");
}

ModelConfig ModelConfig::from_json(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = parse_json(json_text, where);
  } catch (const Error& e) {  // depth or syntax: say which kind of file it was meant to be
    fail(e.code(), "invalid JSON for a model config: ", e.what());
  }
  check_keys(j,
             {"vocab_size", "hidden_size", "n_layers", "n_heads", "n_kv_heads", "ffn_hidden",
              "max_seq_len", "rope_theta", "norm_eps", "tie_word_embeddings", "moe", "engram"},
             where);
  ModelConfig c;
  c.vocab_size = get_field<int64_t>(j, "vocab_size", where, 0);
  c.hidden_size = get_field<int64_t>(j, "hidden_size", where, 0);
  c.n_layers = get_field<int64_t>(j, "n_layers", where, 0);
  c.n_heads = get_field<int64_t>(j, "n_heads", where, 0);
  c.n_kv_heads = get_field<int64_t>(j, "n_kv_heads", where, 0);
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  c.ffn_hidden = get_field<int64_t>(j, "ffn_hidden", where, 0);
  c.max_seq_len = get_field<int64_t>(j, "max_seq_len", where, 0);
  c.rope_theta = get_field<float>(j, "rope_theta", where, c.rope_theta);
  c.norm_eps = get_field<float>(j, "norm_eps", where, c.norm_eps);
  c.tie_word_embeddings = get_field<bool>(j, "tie_word_embeddings", where, false);
  if (auto it = j.find("moe"); it != j.end()) {
    const std::string w = where + ".moe";
    check_keys(*it,
               {"n_experts", "top_k", "expert_ffn_hidden", "shared_ffn_hidden", "norm_topk_prob",
                "aux_loss_coef"},
               w);
    c.moe.n_experts = get_field<int64_t>(*it, "n_experts", w, 0);
    c.moe.top_k = get_field<int64_t>(*it, "top_k", w, c.moe.top_k);
    c.moe.expert_ffn_hidden = get_field<int64_t>(*it, "expert_ffn_hidden", w, 0);
    c.moe.shared_ffn_hidden = get_field<int64_t>(*it, "shared_ffn_hidden", w, 0);
    c.moe.norm_topk_prob = get_field<bool>(*it, "norm_topk_prob", w, false);
    c.moe.aux_loss_coef = get_field<float>(*it, "aux_loss_coef", w, c.moe.aux_loss_coef);
  }
  if (auto it = j.find("engram"); it != j.end()) {
    const std::string w = where + ".engram";
    if (!it->is_object()) fail(Errc::parse, w, ": expected a JSON object");
    c.engram.compress_tokens = get_field<bool>(*it, "compress_tokens", w, false);
    const auto layer_ids = get_field<std::vector<int64_t>>(*it, "layer_ids", w, {});
    // An "engram" object that names no layer would train a model without Engram silently; a
    // config that wants none omits the object.
    if (layer_ids.empty()) {
      fail(Errc::invalid_argument, w, ".layer_ids: empty or missing; name the layers that get ",
           "Engram, or omit the \"engram\" object for a model without it");
    }
    // Before the rest of the object, so that a wrong layer is reported as such.
    check_engram_layer_ids(layer_ids, c.n_layers, where);
    json e = *it;
    e.erase("compress_tokens");  // the model's key, not the Engram config's
    static_cast<EngramConfig&>(c.engram) = EngramConfig::from_json(e.dump(), w);
  }
  c.validate(where);
  return c;
}

std::string ModelConfig::to_json() const {
  json j = {{"vocab_size", vocab_size},   {"hidden_size", hidden_size},
            {"n_layers", n_layers},       {"n_heads", n_heads},
            {"n_kv_heads", n_kv_heads},   {"ffn_hidden", ffn_hidden},
            {"max_seq_len", max_seq_len}, {"rope_theta", rope_theta},
            {"norm_eps", norm_eps},       {"tie_word_embeddings", tie_word_embeddings}};
  if (moe.n_experts > 0) {
    j["moe"] = {{"n_experts", moe.n_experts},
                {"top_k", moe.top_k},
                {"expert_ffn_hidden", moe.expert_ffn_hidden},
                {"shared_ffn_hidden", moe.shared_ffn_hidden},
                {"norm_topk_prob", moe.norm_topk_prob},
                {"aux_loss_coef", moe.aux_loss_coef}};
  }
  if (!engram.layer_ids.empty()) j["engram"] = engram_to_json(engram);
  return j.dump(2);
}

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* key) {
    if (v <= 0) fail(Errc::invalid_argument, where, ": \"", key, "\" must be positive, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(max_seq_len, "max_seq_len");
  if (vocab_size > INT32_MAX) fail(Errc::invalid_argument, where, ": vocab_size exceeds int32");
  auto at_most = [&](int64_t v, int64_t hi, const char* key) {
    if (v > hi)
      fail(Errc::invalid_argument, where, ": \"", key, "\" ", v, " exceeds the limit ", hi);
  };
  at_most(hidden_size, kMaxDim, "hidden_size");
  at_most(ffn_hidden, kMaxDim, "ffn_hidden");
  at_most(n_layers, kMaxLayers, "n_layers");
  at_most(max_seq_len, kMaxSeqLen, "max_seq_len");
  at_most(moe.n_experts, kMaxExperts, "moe.n_experts");
  at_most(moe.expert_ffn_hidden, kMaxDim, "moe.expert_ffn_hidden");
  at_most(moe.shared_ffn_hidden, kMaxDim, "moe.shared_ffn_hidden");
  if (hidden_size % n_heads != 0) {
    fail(Errc::invalid_argument, where, ": hidden_size ", hidden_size,
         " is not a multiple of n_heads ", n_heads);
  }
  if (head_dim() % 2 != 0) {
    fail(Errc::invalid_argument, where, ": head_dim ", head_dim(), " must be even for RoPE");
  }
  if (n_heads % n_kv_heads != 0) {
    fail(Errc::invalid_argument, where, ": n_heads ", n_heads, " is not a multiple of n_kv_heads ",
         n_kv_heads);
  }
  if (!(rope_theta > 0.0f)) fail(Errc::invalid_argument, where, ": rope_theta must be > 0");
  if (!(norm_eps > 0.0f)) fail(Errc::invalid_argument, where, ": norm_eps must be > 0");
  if (moe.n_experts < 0) fail(Errc::invalid_argument, where, ".moe: n_experts must be >= 0");
  if (moe.n_experts == 0) {
    positive(ffn_hidden, "ffn_hidden");
  } else {
    if (moe.top_k <= 0 || moe.top_k > moe.n_experts) {
      fail(Errc::invalid_argument, where, ".moe: top_k ", moe.top_k, " must be in [1, n_experts ",
           moe.n_experts, "]");
    }
    if (moe.expert_ffn_hidden <= 0) {
      fail(Errc::invalid_argument, where, ".moe: expert_ffn_hidden must be positive");
    }
    if (moe.shared_ffn_hidden < 0) {
      fail(Errc::invalid_argument, where, ".moe: shared_ffn_hidden must be >= 0");
    }
    if (moe.aux_loss_coef < 0.0f) {
      fail(Errc::invalid_argument, where, ".moe: aux_loss_coef must be >= 0");
    }
  }
  check_engram_layer_ids(engram.layer_ids, n_layers, where);
  if (!engram.layer_ids.empty()) validate_engram(engram, hidden_size, where + ".engram");
  check_memory(model_bytes(where), "a model of this config", where);
}

std::vector<int64_t> tokenizer_compress_lookup(const Tokenizer& tokenizer, int64_t vocab_size) {
  const TokenCompressor tc = TokenCompressor::from_tokenizer(tokenizer);
  std::vector<int64_t> lookup = tc.lookup();
  if (int64_t(lookup.size()) > vocab_size) {
    fail(Errc::mismatch, "the tokenizer has ", lookup.size(), " ids, more than vocab_size ",
         vocab_size);
  }
  // Ids past the tokenizer's are never produced by it; each gets a compressed id of its own, in
  // order, which keeps the lookup a dense range in order of first appearance.
  for (int64_t next = tc.compressed_vocab_size(); int64_t(lookup.size()) < vocab_size; next++)
    lookup.push_back(next);
  return lookup;
}

ModelConfig new_model_config(const std::string& path, const Tokenizer& tokenizer) {
  ModelConfig c = ModelConfig::from_json(read_file(path, {kMaxConfigBytes, "config"}), path);
  if (c.engram.compress_tokens)
    c.engram.compress_lookup = tokenizer_compress_lookup(tokenizer, c.vocab_size);
  return c;
}

}  // namespace engram
