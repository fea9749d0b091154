// ModelConfig <-> JSON (engram/model_config.h), and a new model's config with its tokenizer's
// compression lookup. Strict: an unknown key is an error (a typo must not silently fall back
// to a default), and every size is checked against the others before a model is built. The
// "engram" object is read once into the typed EngramOptions (engram/config.h's demo-form parser
// checks its keys) and written back in the same form.
#include <nlohmann/json.hpp>

#include "engram/model_config.h"

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
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

}  // namespace

ModelConfig ModelConfig::from_json(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail(Errc::parse, where, ": invalid JSON at byte ", e.byte, ": ", e.what());
  } catch (const json::exception& e) {  // e.g. a number out of range (406)
    fail(Errc::parse, where, ": invalid JSON: ", e.what());
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
    // Before the rest of the object, so that a wrong layer is reported as such.
    check_engram_layer_ids(layer_ids, c.n_layers, where);
    if (!layer_ids.empty()) {
      json e = *it;
      e.erase("compress_tokens");  // the model's key, not the Engram config's
      static_cast<EngramConfig&>(c.engram) = EngramConfig::from_json(e.dump(), w);
    }
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
  ModelConfig c = ModelConfig::from_json(read_file(path), path);
  if (c.engram.compress_tokens)
    c.engram.compress_lookup = tokenizer_compress_lookup(tokenizer, c.vocab_size);
  return c;
}

}  // namespace engram
