// Model <-> a Hugging Face-style directory: config.json (ModelConfig::to_json) and
// model.safetensors (every parameter, F32, by its HF-style name; Engram tensors included).
// Loading is strict: every tensor the config implies must be present with its exact shape and
// F32 dtype, and the file may hold nothing else, so a checkpoint never loads half-way silently.
// A model that hashes compressed ids (engram.compress_tokens) also stores its compression lookup
// there, as model.engram.compress_lookup (I64 [vocab_size]).
// The tokenizer (tokenizer.json) belongs to the caller: it is neither written nor read here.
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/safetensors.h"
#include "util/read_file.h"

namespace engram {

namespace {

constexpr const char* kCompressLookup = "model.engram.compress_lookup";

}  // namespace

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
  save_safetensors(dir + "/model.safetensors", views, {{"format", "pt"}});
}

Model Model::load(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  ModelConfig cfg = ModelConfig::from_json(read_file(cfg_path), cfg_path);
  const std::string st_path = dir + "/model.safetensors";
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
    file.read(info.name, std::as_writable_bytes(m.param(info.name)));
  }
  for (const TensorInfo& t : file.tensors()) {
    if (!expected.count(t.name)) {
      fail(Errc::mismatch, st_path, ": tensor ", t.name, " is not a parameter of this config");
    }
  }
  return m;
}

}  // namespace engram
