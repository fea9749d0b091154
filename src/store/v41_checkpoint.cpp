// DeepSeek-V4.1 checkpoint opener (validation of every Engram tensor before rows are served) and
// the synthetic checkpoint writer. Contracts in engram/v41_checkpoint.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/v41_checkpoint.h"

namespace engram {

namespace fs = std::filesystem;

namespace {

std::string layer_prefix(int64_t layer) {
  return "layers." + std::to_string(layer) + ".engram.";
}

// Finds `name` and checks dtype (one of `dtypes`) and shape; returns its entry.
const SafetensorsCheckpoint::Entry& expect_tensor(const SafetensorsCheckpoint& ck,
                                                  const std::string& dir, const std::string& name,
                                                  std::initializer_list<Dtype> dtypes,
                                                  const std::vector<int64_t>& shape) {
  const SafetensorsCheckpoint::Entry* e = ck.find(name);
  if (!e) fail(Errc::mismatch, dir, ": tensor ", name, " is missing from the checkpoint");
  const TensorInfo& t = *e->info;
  if (std::find(dtypes.begin(), dtypes.end(), t.dtype) == dtypes.end()) {
    std::string want;
    for (Dtype d : dtypes) want += (want.empty() ? "" : " or ") + std::string(dtype_name(d));
    fail(Errc::mismatch, e->file->path(), ": tensor ", name, " has dtype ", dtype_name(t.dtype),
         ", expected ", want);
  }
  if (t.shape != shape)
    fail(Errc::mismatch, e->file->path(), ": tensor ", name, " has shape ", shape_string(t.shape),
         ", expected ", shape_string(shape), " from config.json");
  // The reader checked the span against the file; check it once more against what the store
  // will read, so a later change there cannot let a row read run past the tensor.
  const uint64_t numel = static_cast<uint64_t>(t.numel());
  if (t.nbytes != numel * dtype_size(t.dtype) || t.offset + t.nbytes > e->file->file_size())
    fail(Errc::mismatch, e->file->path(), ": tensor ", name, " byte span [", t.offset, ", ",
         t.offset + t.nbytes, ") does not fit its shape or file");
  return *e;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

std::unique_ptr<V41Checkpoint> V41Checkpoint::open(const std::string& dir) {
  auto ck = std::unique_ptr<V41Checkpoint>(new V41Checkpoint());
  ck->dir_ = dir;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  ck->config_ = EngramConfig::from_file(config_path);
  const EngramConfig& c = ck->config_;
  if (c.form != EngramConfig::Form::deepseek_v41)
    fail(Errc::mismatch, config_path, ": not a DeepSeek-V4.1 config (no engram_* keys)");
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  if (fs::exists(index))
    ck->weights_ = SafetensorsCheckpoint::open(index);
  else if (fs::exists(single))
    ck->weights_ = SafetensorsCheckpoint::open(single);
  else
    fail(Errc::io, dir, ": neither model.safetensors.index.json nor model.safetensors found");

  const int64_t hd = c.head_dim;
  if (hd <= 0 || hd % kScaleBlock != 0)
    fail(Errc::mismatch, config_path, ": engram_head_dim ", hd, " is not a positive multiple of ",
         kScaleBlock);
  if (!c.hidden_size || !c.hc_mult)
    fail(Errc::mismatch, config_path, ": hidden_size and hc_mult are required");
  const int64_t d = *c.hidden_size, hc = *c.hc_mult;
  const int64_t in = c.num_columns() * hd, out = (hc + 1) * d;
  if (c.num_embeddings.size() != c.layer_ids.size())
    fail(Errc::mismatch, config_path, ": engram_num_embeddings has ", c.num_embeddings.size(),
         " entries for ", c.layer_ids.size(), " layers");
  for (size_t i = 0; i < c.layer_ids.size(); ++i) {
    const int64_t L = c.layer_ids[i];
    const int64_t rows = c.num_embeddings[i];
    const std::string p = layer_prefix(L);
    V41Layer layer;
    layer.layer_id = L;
    layer.rows = rows;
    auto& w = expect_tensor(ck->weights_, dir, p + "embed.weight", {Dtype::F8_E4M3}, {rows, hd});
    auto& s = expect_tensor(ck->weights_, dir, p + "embed.scale", {Dtype::F8_E8M0},
                            {rows, hd / kScaleBlock});
    layer.wkv_weight =
        expect_tensor(ck->weights_, dir, p + "wkv.weight", {Dtype::F8_E4M3}, {out, in}).info;
    layer.wkv_scale = expect_tensor(ck->weights_, dir, p + "wkv.scale", {Dtype::F8_E8M0},
                                    {ceil_div(out, kScaleBlock), ceil_div(in, kScaleBlock)})
                          .info;
    layer.q_weight =
        expect_tensor(ck->weights_, dir, p + "q_weight", {Dtype::F32, Dtype::BF16}, {hc, d}).info;
    layer.k_weight =
        expect_tensor(ck->weights_, dir, p + "k_weight", {Dtype::F32, Dtype::BF16}, {hc, d}).info;
    layer.table.desc = {p + "embed", RowFormat::make(RowDtype::f8_e4m3, hd), rows};
    layer.table.data_path = w.file->path();
    layer.table.data_offset = w.info->offset;
    layer.table.scale_path = s.file->path();
    layer.table.scale_offset = s.info->offset;
    ck->layers_.push_back(std::move(layer));
  }
  return ck;
}

size_t V41Checkpoint::table_of_layer(int64_t layer_id) const {
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i].layer_id == layer_id) return i;
  fail(Errc::out_of_range, dir_, ": layer ", layer_id, " is not an Engram layer");
}

std::vector<TableSource> V41Checkpoint::table_sources() const {
  std::vector<TableSource> v;
  for (auto& l : layers_) v.push_back(l.table);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Synthetic checkpoints

namespace {

using json = nlohmann::json;

struct PlannedTensor {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
  bool hole = false;  // sparse: left unwritten (reads as zeros: e4m3 0.0, e8m0 2^-127)
  uint64_t nbytes() const {
    uint64_t n = dtype_size(dtype);
    for (int64_t s : shape) n *= static_cast<uint64_t>(s);
    return n;
  }
};

// Deterministic bytes valid for the dtype: e4m3 without NaN, e8m0 scales near 1, f32 in [-1, 1].
void fill_bytes(Dtype dt, uint64_t seed, std::byte* out, uint64_t n) {
  std::mt19937_64 rng(seed);
  if (dt == Dtype::F32) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (uint64_t i = 0; i + 4 <= n; i += 4) {
      float v = u(rng);
      std::memcpy(out + i, &v, 4);
    }
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t b = static_cast<uint8_t>(rng());
    if (dt == Dtype::F8_E8M0)
      b = static_cast<uint8_t>(120 + b % 12);
    else if ((b & 0x7f) == 0x7f)
      b &= 0xfe;  // e4m3fn NaN -> 448
    out[i] = std::byte(b);
  }
}

// Writes one shard: header, then each tensor's bytes (or a hole), via a temporary + rename.
void write_shard(const std::string& path, const std::vector<PlannedTensor>& tensors,
                 uint64_t seed) {
  json header = json::object();
  std::vector<uint64_t> begins;
  uint64_t pos = 0;
  for (auto& t : tensors) {
    pos = (pos + 7) / 8 * 8;
    begins.push_back(pos);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {pos, pos + t.nbytes()}}};
    pos += t.nbytes();
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while ((text.size() + 8) % 8) text.push_back(' ');
  const uint64_t data_start = 8 + text.size();
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(Errc::io, tmp, ": cannot create: ", std::strerror(errno));
  auto write_at = [&](const void* p, size_t n, uint64_t off) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::pwrite(fd, c, n, static_cast<off_t>(off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        fail(Errc::io, tmp, ": write at offset ", off, " failed: ", std::strerror(err));
      }
      c += w;
      n -= static_cast<size_t>(w);
      off += static_cast<uint64_t>(w);
    }
  };
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  write_at(len, 8, 0);
  write_at(text.data(), text.size(), 8);
  std::vector<std::byte> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor& t = tensors[i];
    if (t.hole) continue;
    const uint64_t chunk = 64ull << 20;
    for (uint64_t off = 0; off < t.nbytes(); off += chunk) {
      const uint64_t n = std::min(chunk, t.nbytes() - off);
      buf.resize(n);
      fill_bytes(t.dtype, seed ^ std::hash<std::string>{}(t.name) ^ off, buf.data(), n);
      write_at(buf.data(), n, data_start + begins[i] + off);
    }
  }
  if (::ftruncate(fd, static_cast<off_t>(data_start + pos)) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(Errc::io, tmp, ": cannot finish: ", std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail(Errc::io, path, ": cannot rename into place: ", std::strerror(errno));
  }
}

}  // namespace

std::vector<int64_t> write_synthetic_v41(const std::string& dir, const SyntheticV41Options& o) {
  if (o.shards < 1) fail(Errc::invalid_argument, "synthetic checkpoint: shards must be >= 1");
  fs::create_directories(dir);
  // The rows of each layer come from the prime layout, exactly as NgramHasher computes it.
  json cfg = {{"hidden_size", o.hidden_size},
              {"hc_mult", o.hc_mult},
              {"rms_norm_eps", 1e-20},
              {"num_hidden_layers", *std::max_element(o.layer_ids.begin(), o.layer_ids.end()) + 1},
              {"engram_layer_ids", o.layer_ids},
              {"engram_max_ngram_size", o.max_ngram},
              {"engram_vocab_size", o.vocab_size},
              {"engram_n_heads", o.n_heads},
              {"engram_head_dim", o.head_dim},
              {"engram_pad_token_id", 2},
              {"engram_compressed_vocab_size", o.compressed_vocab_size},
              {"engram_seed", 0}};
  cfg["engram_num_embeddings"] = std::vector<int64_t>(o.layer_ids.size(), 1);  // placeholder
  EngramConfig c = EngramConfig::from_json(cfg.dump(), dir + "/config.json");
  c.num_embeddings.clear();  // computed here, not checked
  std::vector<int64_t> rows;
  for (auto& l : make_hash_layout(c, o.compressed_vocab_size)) rows.push_back(l.total_rows);
  cfg["engram_num_embeddings"] = rows;

  const int64_t hd = o.head_dim, d = o.hidden_size, hc = o.hc_mult;
  const int64_t in = int64_t(o.max_ngram - 1) * o.n_heads * hd, out = (hc + 1) * d;
  std::vector<std::vector<PlannedTensor>> shards(o.shards);
  for (size_t i = 0; i < o.layer_ids.size(); ++i) {
    const std::string p = layer_prefix(o.layer_ids[i]);
    const size_t s0 = i % o.shards, s1 = (i + 1) % o.shards;  // weight and scale apart
    shards[s0].push_back({p + "embed.weight", Dtype::F8_E4M3, {rows[i], hd}, o.sparse});
    shards[s1].push_back({p + "embed.scale", Dtype::F8_E8M0, {rows[i], hd / 32}, o.sparse});
    shards[s0].push_back({p + "wkv.weight", Dtype::F8_E4M3, {out, in}});
    shards[s0].push_back({p + "wkv.scale", Dtype::F8_E8M0, {(out + 31) / 32, (in + 31) / 32}});
    shards[s1].push_back({p + "q_weight", Dtype::F32, {hc, d}});
    shards[s1].push_back({p + "k_weight", Dtype::F32, {hc, d}});
  }
  json weight_map = json::object();
  uint64_t total = 0;
  for (int s = 0; s < o.shards; ++s) {
    char numbered[64];
    std::snprintf(numbered, sizeof(numbered), "model-%05d-of-%05d.safetensors", s + 1, o.shards);
    const std::string name = o.shards == 1 ? "model.safetensors" : numbered;
    write_shard((fs::path(dir) / name).string(), shards[s], o.seed + s);
    for (auto& t : shards[s]) {
      weight_map[t.name] = name;
      total += t.nbytes();
    }
  }
  if (o.shards > 1) {
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::ofstream((fs::path(dir) / "model.safetensors.index.json").string()) << index.dump(2);
  }
  std::ofstream f((fs::path(dir) / "config.json").string());
  f << cfg.dump(2);
  if (!f) fail(Errc::io, dir, "/config.json: cannot write");
  return rows;
}

}  // namespace engram
