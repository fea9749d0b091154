// safetensors: header parsing and validation, the file reader, multi-shard checkpoints and the
// atomic writer (contracts in engram/safetensors.h). Written from the format's description:
// u64 LE header length, a JSON object, then the data section with offsets relative to it.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "engram/error.h"
#include "engram/safetensors.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {
namespace {

using json = nlohmann::json;

// Headers larger than this are refused before anything is allocated for them (the reference
// implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeRow {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeRow kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1},       {Dtype::U8, "U8", 1},           {Dtype::I8, "I8", 1},
    {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1}, {Dtype::F8_E8M0, "F8_E8M0", 1},
    {Dtype::I16, "I16", 2},         {Dtype::U16, "U16", 2},         {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2},       {Dtype::I32, "I32", 4},         {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},         {Dtype::I64, "I64", 8},         {Dtype::U64, "U64", 8},
    {Dtype::F64, "F64", 8},         {Dtype::C64, "C64", 8},
};
// Dtypes the format defines that engram does not handle (sub-byte element sizes).
constexpr const char* kSubByteDtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// JSON text of a key for messages (quoted and escaped, so odd bytes cannot garble a message).
std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', true, json::error_handler_t::replace);
}

}  // namespace

const char* dtype_name(Dtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r.name;
  return "?";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::optional<Dtype> dtype_from_name(std::string_view s) {
  for (const auto& r : kDtypes)
    if (s == r.name) return r.dtype;
  return std::nullopt;
}

size_t dtype_size(Dtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when the header was parsed
  return n;
}

// ---- Header parsing -------------------------------------------------------------------------

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> prefix, uint64_t file_size,
                                           const std::string& origin) {
  if (file_size < 8) {
    fail(Errc::parse, origin, ": file is ", file_size,
         " bytes, shorter than the 8-byte safetensors header length");
  }
  if (prefix.size() < 8) fail(Errc::internal, origin, ": header prefix shorter than 8 bytes");
  const uint64_t n = read_le64(prefix.data());
  if (n > file_size - 8) {
    fail(Errc::parse, origin, ": header length ", n, " (byte offset 0) runs past the end of the ",
         file_size, "-byte file");
  }
  if (n > kMaxHeaderBytes) {
    fail(Errc::parse, origin, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes);
  }
  if (n < 2) fail(Errc::parse, origin, ": header length ", n, " is too short for a JSON object");
  if (prefix.size() < 8 + n) fail(Errc::internal, origin, ": header prefix is truncated");

  const char* text = reinterpret_cast<const char*>(prefix.data() + 8);
  if (text[0] != '{') fail(Errc::parse, origin, ": header (byte offset 8) does not start with '{'");

  // Duplicate keys would silently collapse in a JSON object: detect them while parsing.
  std::string duplicate;
  std::vector<std::set<std::string>> keys_at_depth;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      keys_at_depth.resize(static_cast<size_t>(depth) + 2);
      keys_at_depth[static_cast<size_t>(depth) + 1].clear();
    } else if (ev == json::parse_event_t::key && duplicate.empty()) {
      auto& seen = keys_at_depth[static_cast<size_t>(depth)];
      if (!seen.insert(parsed.get<std::string>()).second) duplicate = parsed.get<std::string>();
    }
    return true;
  };
  // Offsets in messages are offsets in the file: the header starts at byte 8.
  const json root = parse_json(std::string_view(text, n), origin + ": header", kMaxJsonDepth, cb,
                               /*base_offset=*/8);
  if (!duplicate.empty()) fail(Errc::parse, origin, ": header repeats the key ", quoted(duplicate));
  if (!root.is_object()) fail(Errc::parse, origin, ": header is not a JSON object");

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const uint64_t data_size = file_size - h.data_offset;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(Errc::parse, origin, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          fail(Errc::parse, origin, ": __metadata__ value of ", quoted(m.key()),
               " is not a string");
        }
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = str_cat(origin, ": tensor ", quoted(name));
    if (!v.is_object()) fail(Errc::parse, where, " is not an object");
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        fail(Errc::parse, where, " has an unknown field ", quoted(f.key()));
      }
    }
    if (!v.contains("dtype") || !v["dtype"].is_string()) {
      fail(Errc::parse, where, ": missing or non-string \"dtype\"");
    }
    const std::string dt = v["dtype"].get<std::string>();
    const auto dtype = dtype_from_name(dt);
    if (!dtype) {
      for (const char* sub : kSubByteDtypes)
        if (dt == sub) fail(Errc::unsupported, where, ": sub-byte dtype ", dt, " is not supported");
      fail(Errc::unsupported, where, ": unknown dtype ", quoted(dt));
    }
    if (!v.contains("shape") || !v["shape"].is_array()) {
      fail(Errc::parse, where, ": missing or non-array \"shape\"");
    }
    TensorInfo t;
    t.name = name;
    t.dtype = *dtype;
    uint64_t numel = 1;
    for (size_t d = 0; d < v["shape"].size(); ++d) {
      const json& dim = v["shape"][d];
      if (!dim.is_number_integer()) {
        fail(Errc::parse, where, ": shape[", d, "] is not an integer");
      }
      if (!dim.is_number_unsigned()) fail(Errc::parse, where, ": shape[", d, "] is negative");
      const uint64_t dv = dim.get<uint64_t>();
      if (dv > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, dv, &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(Errc::parse, where, ": shape overflows 63-bit element count at shape[", d, "]");
      }
      t.shape.push_back(static_cast<int64_t>(dv));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(*dtype)), &nbytes)) {
      fail(Errc::parse, where, ": byte size of the shape overflows 64 bits");
    }
    const json* off = v.contains("data_offsets") ? &v["data_offsets"] : nullptr;
    if (off == nullptr || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned()) {
      fail(Errc::parse, where, ": \"data_offsets\" must be two non-negative integers");
    }
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) {
      fail(Errc::parse, where, ": data_offsets begin ", begin, " is after end ", end);
    }
    if (end > data_size) {
      fail(Errc::parse, where, ": data_offsets end ", end, " (byte offset ", h.data_offset + end,
           " in the file) is past the end of the ", data_size, "-byte data section");
    }
    if (end - begin != nbytes) {
      fail(Errc::parse, where, ": data_offsets span ", end - begin, " bytes but shape x ", dt,
           " needs ", nbytes, " bytes (tensor at byte offset ", h.data_offset + begin, ")");
    }
    t.offset = h.data_offset + begin;
    t.nbytes = nbytes;
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  // With tensors sorted by start, two non-empty ones overlap iff one starts before the furthest
  // end seen so far.
  uint64_t max_end = 0;
  const TensorInfo* max_end_tensor = nullptr;
  for (const TensorInfo& t : h.tensors) {
    if (t.nbytes == 0) continue;
    if (max_end_tensor != nullptr && t.offset < max_end) {
      fail(Errc::parse, origin, ": tensors ", quoted(max_end_tensor->name), " and ", quoted(t.name),
           " overlap at byte offset ", t.offset);
    }
    max_end = t.offset + t.nbytes;
    max_end_tensor = &t;
  }
  return h;
}

// ---- SafetensorsFile ------------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.fd_ = UniqueFd(open_regular_file(path, &f.file_size_));
  std::vector<std::byte> prefix(std::min<uint64_t>(f.file_size_, 8));
  pread_full(f.fd_.get(), prefix, 0, path);
  if (f.file_size_ >= 8) {
    const uint64_t n = read_le64(prefix.data());
    if (n <= f.file_size_ - 8 && n <= kMaxHeaderBytes) {
      prefix.resize(static_cast<size_t>(8 + n));
      pread_full(f.fd_.get(), std::span<std::byte>(prefix).subspan(8), 8, path);
    }
  }
  f.header_ = parse_safetensors_header(prefix, f.file_size_, path);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i) f.by_name_[f.header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorInfo& SafetensorsFile::tensor(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr)
    fail(Errc::out_of_range, path_, ": no tensor named ", quoted(std::string(name)));
  return *t;
}

void SafetensorsFile::read(std::string_view name, std::span<std::byte> out) const {
  const TensorInfo& t = tensor(name);
  if (out.size() != t.nbytes) {
    fail(Errc::invalid_argument, path_, ": tensor ", quoted(t.name), " has ", t.nbytes,
         " bytes, buffer has ", out.size());
  }
  pread_full(fd_.get(), out, t.offset, str_cat(path_, ": tensor ", quoted(t.name)));
}

void SafetensorsFile::read_range(std::string_view name, uint64_t begin,
                                 std::span<std::byte> out) const {
  const TensorInfo& t = tensor(name);
  if (begin > t.nbytes || out.size() > t.nbytes - begin) {
    fail(Errc::out_of_range, path_, ": bytes [", begin, ", ", begin + out.size(), ") of tensor ",
         quoted(t.name), " are outside its ", t.nbytes, " bytes");
  }
  pread_full(fd_.get(), out, t.offset + begin, str_cat(path_, ": tensor ", quoted(t.name)));
}

std::vector<std::byte> SafetensorsFile::read(std::string_view name) const {
  std::vector<std::byte> out(tensor(name).nbytes);
  read(name, out);
  return out;
}

Mapping SafetensorsFile::map(std::string_view name, bool populate) const {
  const TensorInfo& t = tensor(name);
  return Mapping::map_file(fd_.get(), t.offset, t.nbytes,
                           str_cat(path_, ": tensor ", quoted(t.name)), populate);
}

// ---- Checkpoints ----------------------------------------------------------------------------

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  SafetensorsCheckpoint ck;
  const bool is_index = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    ck.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(path)));
    const SafetensorsFile* f = ck.shards_.back().get();
    for (const TensorInfo& t : f->tensors()) ck.entries_[t.name] = Entry{f, &t};
    ck.metadata_ = f->metadata();
    return ck;
  }

  json root = parse_json(read_file(path, {kMaxConfigBytes, "a safetensors index"}), path);
  if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object()) {
    fail(Errc::parse, path, ": no \"weight_map\" object");
  }
  if (root.contains("metadata") && root["metadata"].is_object()) {
    for (auto it = root["metadata"].begin(); it != root["metadata"].end(); ++it) {
      ck.metadata_[it.key()] =
          it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    }
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::map<std::string, const SafetensorsFile*> by_shard;
  const json& wm = root["weight_map"];
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    if (!it.value().is_string()) {
      fail(Errc::parse, path, ": weight_map[", quoted(it.key()), "] is not a string");
    }
    const std::string shard = it.value().get<std::string>();
    const std::filesystem::path rel(shard);
    if (shard.empty() || rel.is_absolute() ||
        std::any_of(rel.begin(), rel.end(), [](const auto& c) { return c == ".."; })) {
      fail(Errc::parse, path, ": weight_map[", quoted(it.key()), "] names the shard ",
           quoted(shard), ", which is not a relative path inside the checkpoint directory");
    }
    if (!by_shard.count(shard)) {
      const std::string shard_path = (dir / rel).string();
      if (!std::filesystem::exists(shard_path)) {
        fail(Errc::io, path, ": shard ", quoted(shard), " (", shard_path, ") named for tensor ",
             quoted(it.key()), " does not exist");
      }
      ck.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(shard_path)));
      by_shard[shard] = ck.shards_.back().get();
    }
    const SafetensorsFile* f = by_shard[shard];
    const TensorInfo* t = f->find(it.key());
    if (t == nullptr) {
      fail(Errc::mismatch, path, ": tensor ", quoted(it.key()), " is not in its shard ",
           quoted(shard));
    }
    ck.entries_[it.key()] = Entry{f, t};
  }
  for (const auto& [shard, f] : by_shard) {
    for (const TensorInfo& t : f->tensors()) {
      auto e = ck.entries_.find(t.name);
      if (e == ck.entries_.end() || e->second.file != f)
        ck.unindexed_.push_back(shard + ": " + t.name);
    }
  }
  return ck;
}

const SafetensorsCheckpoint::Entry* SafetensorsCheckpoint::find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const SafetensorsCheckpoint::Entry& SafetensorsCheckpoint::tensor(std::string_view name) const {
  const Entry* e = find(name);
  if (e == nullptr)
    fail(Errc::out_of_range, "checkpoint has no tensor named ", quoted(std::string(name)));
  return *e;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

// ---- Writer ---------------------------------------------------------------------------------

namespace {

void write_full(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(Errc::io, what, ": write failed: ", std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Removes the temporary file unless released (after the rename).
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void save_safetensors(const std::string& path, std::span<const TensorView> tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate and lay out: descending item size, then name (keeps every tensor aligned).
  std::vector<const TensorView*> order;
  std::set<std::string> names;
  for (const TensorView& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      fail(Errc::invalid_argument, path, ": invalid tensor name ", quoted(t.name));
    }
    if (!names.insert(t.name).second) {
      fail(Errc::invalid_argument, path, ": duplicate tensor name ", quoted(t.name));
    }
    if (dtype_size(t.dtype) == 0) fail(Errc::invalid_argument, path, ": bad dtype for ", t.name);
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
        fail(Errc::invalid_argument, path, ": tensor ", quoted(t.name), " has a bad shape");
      }
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, dtype_size(t.dtype), &nbytes) || nbytes != t.data.size()) {
      fail(Errc::invalid_argument, path, ": tensor ", quoted(t.name), " has ", t.data.size(),
           " bytes of data, its shape and dtype need ", nbytes);
    }
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const TensorView* a, const TensorView* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const TensorView* t : order) {
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {off, off + t->data.size()}}};
    off += t->data.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::type_error& e) {  // invalid UTF-8 in a name or metadata
    fail(Errc::invalid_argument, path, ": cannot encode header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  const std::filesystem::path target(path);
  std::string tmpl = path + ".tmp.XXXXXX";
  TempFile tmp;
  UniqueFd fd(::mkstemp(tmpl.data()));
  if (!fd) fail(Errc::io, path, ": cannot create a temporary file: ", std::strerror(errno));
  tmp.path = tmpl;
  ::fchmod(fd.get(), 0644);
  write_full(fd.get(), len, 8, tmp.path);
  write_full(fd.get(), text.data(), text.size(), tmp.path);
  for (const TensorView* t : order) write_full(fd.get(), t->data.data(), t->data.size(), tmp.path);
  if (::fsync(fd.get()) != 0) fail(Errc::io, tmp.path, ": fsync failed: ", std::strerror(errno));
  if (::close(fd.release()) != 0)
    fail(Errc::io, tmp.path, ": close failed: ", std::strerror(errno));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    fail(Errc::io, path, ": rename from ", tmp.path, " failed: ", std::strerror(errno));
  }
  tmp.path.clear();
  // Make the rename itself durable.
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace engram
