// EngramConfig: reads the demo's EngramConfig JSON or a DeepSeek-V4.1 config.json, and checks
// every field. Errors name the file and the JSON path of the key; nothing falls back silently.
#include "engram/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engram/error.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {
namespace {

using nlohmann::json;

// Reads one object's keys with the file and the key's JSON path in every message.
class Fields {
 public:
  Fields(const json& obj, const std::string& origin, std::string prefix)
      : obj_(obj), origin_(origin), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return obj_.contains(key); }

  std::string path(const char* key) const { return prefix_ + key; }

  [[noreturn]] void bad(const char* key, const std::string& what) const {
    fail(Errc::parse, origin_, ": key '", path(key), "': ", what);
  }

  const json& get(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) fail(Errc::parse, origin_, ": missing key '", path(key), "'");
    return *it;
  }

  int64_t integer(const json& v, const char* key, int64_t lo, int64_t hi,
                  const std::string& where = "") const {
    if (!v.is_number_integer())
      bad(key, str_cat("expected an integer", where, ", got ", json_excerpt(v)));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      bad(key, str_cat(json_excerpt(v), where, " does not fit in int64"));
    }
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) {
      bad(key, str_cat("value ", x, where, " is outside [", lo, ", ", hi, "]"));
    }
    return x;
  }

  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    return integer(get(key), key, lo, hi);
  }

  std::vector<int64_t> integer_list(const char* key, int64_t lo, int64_t hi, size_t min_len,
                                    size_t max_len) const {
    const json& v = get(key);
    if (!v.is_array()) bad(key, str_cat("expected a list of integers, got ", json_excerpt(v)));
    if (v.size() < min_len || v.size() > max_len) {
      bad(key, str_cat("expected ", min_len, "..", max_len, " entries, got ", v.size()));
    }
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(integer(v[i], key, lo, hi, str_cat(" (entry ", i, ")")));
    }
    return out;
  }

  double positive_number(const char* key) const {
    const json& v = get(key);
    if (!v.is_number()) bad(key, str_cat("expected a number, got ", json_excerpt(v)));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x <= 0) bad(key, str_cat("expected a finite number > 0, got ", x));
    return x;
  }

  // The value of whichever of two alias keys is present; both present must agree.
  const char* alias(const char* preferred, const char* other) const {
    if (has(preferred) && has(other) && get(preferred) != get(other)) {
      fail(Errc::parse, origin_, ": keys '", path(preferred), "' (", json_excerpt(get(preferred)),
           ") and '", path(other), "' (", json_excerpt(get(other)), ") disagree");
    }
    return has(preferred) || !has(other) ? preferred : other;
  }

 private:
  const json& obj_;
  const std::string& origin_;
  std::string prefix_;
};

void check_layer_ids(const Fields& f, const char* key, const std::vector<int64_t>& ids,
                     std::optional<int64_t> num_layers) {
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] <= ids[i - 1]) {
      f.bad(key, str_cat("layer ids must be strictly increasing, got ", ids[i - 1], " then ",
                         ids[i], " (entry ", i, ")"));
    }
  }
  if (num_layers && ids.back() >= *num_layers) {
    f.bad(key,
          str_cat("layer id ", ids.back(), " is not below the model's ", *num_layers, " layers"));
  }
}

void parse_demo(const json& root, EngramConfig& cfg) {
  static const std::set<std::string> known = {"engram_vocab_size",
                                              "max_ngram_size",
                                              "n_embed_per_ngram",
                                              "n_head_per_ngram",
                                              "layer_ids",
                                              "pad_id",
                                              "seed",
                                              "kernel_size",
                                              "hidden_size",
                                              "hc_mult",
                                              "vocab_size",
                                              "num_layers",
                                              "tokenizer_name_or_path"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!known.count(it.key())) {
      fail(Errc::parse, cfg.origin, ": unknown key '", it.key(),
           "' in a demo-form Engram config (a typo? DeepSeek-V4.1 configs use engram_* keys)");
    }
  }
  const Fields f(root, cfg.origin, "");
  cfg.form = EngramConfig::Form::demo;
  cfg.max_ngram = static_cast<int>(f.integer("max_ngram_size", 2, EngramConfig::kMaxNgram));
  cfg.n_head = f.integer("n_head_per_ngram", 1, EngramConfig::kMaxHeads);
  const size_t orders = static_cast<size_t>(cfg.max_ngram - 1);
  cfg.vocab_size_per_ngram =
      f.integer_list("engram_vocab_size", 1, EngramConfig::kMaxVocab, orders, orders);
  cfg.n_embed_per_ngram = f.integer("n_embed_per_ngram", 1, int64_t{1} << 24);
  if (cfg.n_embed_per_ngram % cfg.n_head != 0) {
    f.bad("n_embed_per_ngram", str_cat(cfg.n_embed_per_ngram, " is not divisible by ",
                                       "n_head_per_ngram = ", cfg.n_head));
  }
  cfg.kernel_size = f.integer("kernel_size", 1, 1024);
  cfg.pad_id = f.integer("pad_id", 0, INT64_MAX);
  cfg.seed = f.integer("seed", 0, INT64_MAX);
  if (f.has("hidden_size")) cfg.hidden_size = f.integer("hidden_size", 1, int64_t{1} << 24);
  if (f.has("hc_mult")) cfg.hc_mult = f.integer("hc_mult", 1, 64);
  if (f.has("vocab_size")) cfg.vocab_size = f.integer("vocab_size", 1, int64_t{1} << 40);
  if (f.has("num_layers")) cfg.num_layers = f.integer("num_layers", 1, 1 << 20);
  if (f.has("tokenizer_name_or_path") && !f.get("tokenizer_name_or_path").is_string()) {
    f.bad("tokenizer_name_or_path", "expected a string");
  }
  cfg.layer_ids = f.integer_list("layer_ids", 0, INT32_MAX, 1, EngramConfig::kMaxLayers);
  check_layer_ids(f, "layer_ids", cfg.layer_ids, cfg.num_layers);
}

void parse_v41(const json& obj, const std::string& prefix, EngramConfig& cfg) {
  const Fields f(obj, cfg.origin, prefix);
  cfg.form = EngramConfig::Form::deepseek_v41;
  if (f.has("num_hidden_layers")) cfg.num_layers = f.integer("num_hidden_layers", 1, 1 << 20);
  cfg.layer_ids = f.integer_list("engram_layer_ids", 0, INT32_MAX, 1, EngramConfig::kMaxLayers);
  check_layer_ids(f, "engram_layer_ids", cfg.layer_ids, cfg.num_layers);
  cfg.max_ngram = static_cast<int>(f.integer("engram_max_ngram_size", 2, EngramConfig::kMaxNgram));
  cfg.n_head = f.integer("engram_n_heads", 1, EngramConfig::kMaxHeads);
  const int64_t start = f.integer("engram_vocab_size", 1, EngramConfig::kMaxVocab);
  cfg.vocab_size_per_ngram.assign(static_cast<size_t>(cfg.max_ngram - 1), start);
  cfg.head_dim = f.integer("engram_head_dim", 1, int64_t{1} << 20);
  const size_t layers = cfg.layer_ids.size();
  cfg.num_embeddings = f.integer_list("engram_num_embeddings", 1, INT64_MAX, layers, layers);
  cfg.compressed_vocab_size = f.integer("engram_compressed_vocab_size", 1, int64_t{1} << 40);
  cfg.pad_id = f.integer(f.alias("engram_pad_token_id", "engram_pad_id"), 0, INT64_MAX);
  cfg.seed = f.has("engram_seed") ? f.integer("engram_seed", 0, INT64_MAX) : 0;
  // Backbone keys: hashing never reads them, so a config.json cut down to its Engram keys is
  // enough for `engram hash`; when present they are still checked, and the layer loaders that
  // need them (store/v41_checkpoint.cpp) refuse their absence themselves.
  if (f.has("hidden_size")) cfg.hidden_size = f.integer("hidden_size", 1, int64_t{1} << 24);
  if (f.has("hc_mult")) cfg.hc_mult = f.integer("hc_mult", 1, 64);
  const char* eps = f.alias("rms_norm_eps", "norm_eps");
  if (f.has(eps)) cfg.norm_eps = f.positive_number(eps);
}

// Sizes that are each within their bounds can still ask together for absurd work: every hash
// head of every order and layer searches a prime of its own, and a layer's table holds the sum
// of those primes (each at least its order's vocabulary size) times the row width.
void check_products(const EngramConfig& cfg) {
  const bool demo = cfg.form == EngramConfig::Form::demo;
  const std::string p = cfg.origin + ": ";
  const std::string heads = demo ? "n_head_per_ngram" : "engram_n_heads";
  const std::string layers = demo ? "layer_ids" : "engram_layer_ids";
  const std::string orders = demo ? "max_ngram_size" : "engram_max_ngram_size";
  const std::string width = demo ? "n_embed_per_ngram" : "engram_head_dim";
  const int64_t primes = int64_t(cfg.layer_ids.size()) * (cfg.max_ngram - 1) * cfg.n_head;
  if (primes > EngramConfig::kMaxPrimes) {
    fail(Errc::parse, p, "keys '", layers, "' x '", orders, "' - 1 x '", heads, "' ask for ",
         primes, " hash tables (one prime search each), above the limit ",
         EngramConfig::kMaxPrimes);
  }
  const std::string what =
      p + "table size of one layer: keys 'engram_vocab_size' x '" + heads + "' x '" + width + "'";
  // Errc::parse like every other field error of this file.
  auto mul = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) fail(Errc::parse, what, ": ", a, " x ", b, " overflows");
    return r;
  };
  int64_t rows = 0;
  for (int64_t v : cfg.vocab_size_per_ngram) {
    if (__builtin_add_overflow(rows, mul(v, cfg.n_head), &rows))
      fail(Errc::parse, what, ": more than 2^63 rows");
  }
  // Bytes of one layer's F32 table; row_dim() is the width of one head's rows.
  mul(mul(rows, cfg.row_dim()), int64_t(sizeof(float)));
}

}  // namespace

const char* form_name(EngramConfig::Form form) {
  return form == EngramConfig::Form::demo ? "demo" : "deepseek_v41";
}

EngramConfig EngramConfig::from_json(std::string_view json_text, const std::string& origin) {
  const json root = parse_json(json_text, origin);
  if (!root.is_object()) fail(Errc::parse, origin, ": expected a JSON object at the top level");
  EngramConfig cfg;
  cfg.origin = origin;
  // Form detection: V4.1 keys win; "text_config" is where multimodal HF configs nest them.
  if (root.contains("engram_layer_ids")) {
    parse_v41(root, "", cfg);
  } else if (root.contains("text_config") && root["text_config"].is_object() &&
             root["text_config"].contains("engram_layer_ids")) {
    parse_v41(root["text_config"], "text_config.", cfg);
  } else if (root.contains("layer_ids")) {
    parse_demo(root, cfg);
  } else {
    fail(Errc::parse, origin,
         ": not an Engram config: no 'layer_ids' (demo form) or 'engram_layer_ids' "
         "(DeepSeek-V4.1 config.json, top level or under 'text_config')");
  }
  check_products(cfg);
  return cfg;
}

EngramConfig EngramConfig::from_file(const std::string& path) {
  return from_json(read_file(path, {kMaxConfigBytes, "a config"}), path);
}

int64_t EngramConfig::row_dim() const {
  return form == Form::demo ? n_embed_per_ngram / n_head : head_dim;
}

void EngramConfig::check_compressed_vocab_size(int64_t tokenizer_compressed_vocab_size,
                                               const std::string& tokenizer_origin) const {
  if (compressed_vocab_size && *compressed_vocab_size != tokenizer_compressed_vocab_size) {
    fail(Errc::mismatch, origin, ": engram_compressed_vocab_size is ", *compressed_vocab_size,
         " but the tokenizer ", tokenizer_origin, " compresses to ",
         tokenizer_compressed_vocab_size,
         " ids; every hash multiplier depends on this number, refusing to hash");
  }
}

}  // namespace engram
