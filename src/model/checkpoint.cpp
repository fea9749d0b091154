// Model <-> a Hugging Face-style directory: config.json (ModelConfig::to_json) and
// model.safetensors (every parameter, F32, by its HF-style name; Engram tensors included).
// Loading is strict: every tensor the config implies must be present with its exact shape and
// F32 dtype, and the file may hold nothing else, so a checkpoint never loads half-way silently.
// A model that hashes compressed ids (engram.compress_tokens) also stores its compression lookup
// there, as model.engram.compress_lookup (I64 [vocab_size]).
// The tokenizer (tokenizer.json) belongs to the caller: it is neither written nor read here.
//
// Identity and integrity, checked on every load so that eval, generate and --resume agree:
//  - a training checkpoint's trainer_state.json records the FNV-1a checksum of model.safetensors;
//    when present it is verified (a flipped byte is refused, not evaluated);
//  - every weight must be finite (a NaN or Inf is refused naming the tensor);
//  - model.safetensors' metadata records the Engram hashing parameters the weights were trained
//    with ("engram_hashing"); a config.json that hashes otherwise (another seed, say) is refused
//    naming both sides. Checkpoints written before this record load as before.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/safetensors.h"
#include "engram/token_file.h"
#include "model/checkpoint.h"
#include "util/hex.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {

namespace {

constexpr const char* kCompressLookup = "model.engram.compress_lookup";
constexpr const char* kHashingKey = "engram_hashing";

// Everything the Engram rows of a checkpoint depend on besides the weights: which n-grams land
// in which row. Empty for a model without Engram.
std::string hashing_record(const ModelConfig& c) {
  const EngramOptions& e = c.engram;
  if (e.layer_ids.empty()) return {};
  nlohmann::json j = {{"seed", e.seed},
                      {"max_ngram_size", e.max_ngram},
                      {"n_head_per_ngram", e.n_head},
                      {"engram_vocab_size", e.vocab_size_per_ngram},
                      {"pad_id", e.pad_id},
                      {"layer_ids", e.layer_ids},
                      {"compress_tokens", e.compress_tokens}};
  if (e.compress_tokens) {
    const auto bytes = std::as_bytes(std::span<const int64_t>(e.compress_lookup));
    j["compress_lookup_fnv1a64"] =
        hex64(fnv1a64(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  }
  return j.dump();
}

// A training checkpoint's recorded checksum of model.safetensors, verified when present.
void verify_recorded_checksum(const std::string& dir, const std::string& st_path) {
  const std::optional<std::string> recorded =
      recorded_state_string(dir, "checksum.model.safetensors");
  if (!recorded) return;
  // In chunks: the weights can be larger than the memory left beside them.
  std::ifstream in(st_path, std::ios::binary);
  if (!in) fail(Errc::io, st_path, ": cannot open");
  std::vector<char> chunk(size_t{1} << 20);
  uint64_t sum = kFnvOffsetBasis;
  while (in) {
    in.read(chunk.data(), std::streamsize(chunk.size()));
    const auto n = size_t(in.gcount());
    sum = fnv1a64(std::span(reinterpret_cast<const uint8_t*>(chunk.data()), n), sum);
  }
  if (in.bad()) fail(Errc::io, st_path, ": read failed");
  const std::string got = hex64(sum);
  if (got != *recorded) {
    fail(Errc::parse, st_path, ": checksum ", got, " differs from ", *recorded, " recorded in ",
         dir, "/trainer_state.json (the checkpoint is corrupt)");
  }
}

}  // namespace

std::optional<std::string> recorded_state_string(const std::string& dir, const char* key) {
  const std::string state_path = dir + "/trainer_state.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(state_path, ec)) return std::nullopt;
  const nlohmann::json state =
      parse_json(read_file(state_path, {kMaxConfigBytes, "training state"}), state_path);
  if (!state.is_object() || !state.contains(key)) return std::nullopt;
  if (!state[key].is_string()) fail(Errc::parse, state_path, ": key \"", key, "\" is no string");
  return state[key].get<std::string>();
}

void Model::save(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(Errc::io, dir, ": cannot create directory: ", ec.message());
  write_file_atomic(dir + "/config.json", config().to_json() + "\n");
  std::vector<TensorView> views;
  for (const ParamInfo& info : param_infos()) {
    std::span<float> w = param(info.name);
    views.push_back(TensorView{info.name, Dtype::F32, info.shape, std::as_bytes(w)});
  }
  const std::vector<int64_t>& lookup = config().engram.compress_lookup;
  if (config().engram.compress_tokens) {
    views.push_back(TensorView{kCompressLookup,
                               Dtype::I64,
                               {int64_t(lookup.size())},
                               std::as_bytes(std::span<const int64_t>(lookup))});
  }
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (const std::string h = hashing_record(config()); !h.empty()) metadata[kHashingKey] = h;
  save_safetensors(dir + "/model.safetensors", views, metadata);
}

Model Model::load(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  ModelConfig cfg =
      ModelConfig::from_json(read_file(cfg_path, {kMaxConfigBytes, "config"}), cfg_path);
  const std::string st_path = dir + "/model.safetensors";
  verify_recorded_checksum(dir, st_path);
  SafetensorsFile file = SafetensorsFile::open(st_path);
  std::set<std::string> expected;
  if (cfg.engram.compress_tokens) {
    const TensorInfo* t = file.find(kCompressLookup);
    if (t == nullptr) {
      fail(Errc::mismatch, st_path, ": tensor ", kCompressLookup,
           " is missing (config.json sets engram.compress_tokens)");
    }
    if (t->dtype != Dtype::I64 || t->shape != std::vector<int64_t>{cfg.vocab_size}) {
      fail(Errc::mismatch, st_path, ": tensor ", kCompressLookup, " is ", dtype_name(t->dtype), " ",
           shape_string(t->shape), ", expected I64 [", cfg.vocab_size, "]");
    }
    cfg.engram.compress_lookup.resize(size_t(cfg.vocab_size));
    file.read(kCompressLookup,
              std::as_writable_bytes(std::span<int64_t>(cfg.engram.compress_lookup)));
    expected.insert(kCompressLookup);
  }
  if (auto it = file.metadata().find(kHashingKey); it != file.metadata().end()) {
    const std::string want = hashing_record(cfg);
    if (it->second != want) {
      fail(Errc::mismatch, cfg_path, ": hashes n-grams as ",
           want.empty() ? std::string("(no Engram)") : want, " but ", st_path, " was trained with ",
           it->second);
    }
  }
  Model m(cfg);
  for (const ParamInfo& info : m.param_infos()) {
    expected.insert(info.name);
    const TensorInfo* t = file.find(info.name);
    if (t == nullptr) fail(Errc::mismatch, st_path, ": tensor ", info.name, " is missing");
    if (t->dtype != Dtype::F32) {
      fail(Errc::unsupported, st_path, ": tensor ", info.name, " has dtype ", dtype_name(t->dtype),
           "; only F32 is loaded");
    }
    if (t->shape != info.shape) {
      fail(Errc::mismatch, st_path, ": tensor ", info.name, " has shape ", shape_string(t->shape),
           " but the config implies ", shape_string(info.shape));
    }
    const std::span<float> w = m.param(info.name);
    file.read(info.name, std::as_writable_bytes(w));
    for (size_t i = 0; i < w.size(); i++) {
      if (!std::isfinite(w[i])) {
        fail(Errc::parse, st_path, ": tensor ", info.name, " holds ", w[i], " at element ", i,
             "; refusing non-finite weights");
      }
    }
  }
  for (const TensorInfo& t : file.tensors()) {
    if (!expected.count(t.name)) {
      fail(Errc::mismatch, st_path, ": tensor ", t.name, " is not a parameter of this config");
    }
  }
  return m;
}

}  // namespace engram
