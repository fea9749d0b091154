// Model <-> a Hugging Face-style directory: config.json (ModelConfig::to_json) and
// model.safetensors (every parameter, F32, by its HF-style name; Engram tensors included).
// Loading is strict: every tensor the config implies must be present with its exact shape and
// F32 dtype, and the file may hold nothing else, so a checkpoint never loads half-way silently.
// The tokenizer (tokenizer.json) belongs to the caller: it is neither written nor read here.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/safetensors.h"
#include "util/read_file.h"

namespace engram {

namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void Model::save(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(Errc::io, dir, ": cannot create directory: ", ec.message());
  const std::string cfg_path = dir + "/config.json";
  const std::string tmp = cfg_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << config().to_json() << "\n";
    out.flush();
    if (!out) fail(Errc::io, tmp, ": write error");
  }
  std::filesystem::rename(tmp, cfg_path, ec);
  if (ec) fail(Errc::io, cfg_path, ": cannot rename into place: ", ec.message());
  std::vector<TensorView> views;
  for (const ParamInfo& info : param_infos()) {
    std::span<float> w = param(info.name);
    views.push_back(TensorView{info.name, Dtype::F32, info.shape, std::as_bytes(w)});
  }
  save_safetensors(dir + "/model.safetensors", views, {{"format", "pt"}});
}

Model Model::load(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  Model m(ModelConfig::from_json(read_file(cfg_path), cfg_path));
  const std::string st_path = dir + "/model.safetensors";
  SafetensorsFile file = SafetensorsFile::open(st_path);
  std::set<std::string> expected;
  for (const ParamInfo& info : m.param_infos()) {
    expected.insert(info.name);
    const TensorInfo* t = file.find(info.name);
    if (t == nullptr) fail(Errc::mismatch, st_path, ": tensor ", info.name, " is missing");
    if (t->dtype != Dtype::F32) {
      fail(Errc::unsupported, st_path, ": tensor ", info.name, " has dtype ", dtype_name(t->dtype),
           "; only F32 is loaded");
    }
    if (t->shape != info.shape) {
      fail(Errc::mismatch, st_path, ": tensor ", info.name, " has shape ", shape_str(t->shape),
           " but the config implies ", shape_str(info.shape));
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
