// Helpers shared by the store tests: a temporary directory removed on scope exit and small
// file writers. Test-only.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace engram::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& base = std::filesystem::temp_directory_path().string()) {
    std::string tmpl = base + "/engram_store_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed in " + base);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace engram::testing

#include <cstring>

#include "engram/row_format.h"
#include "engram/store.h"

namespace engram::testing {

// A table written to disk for store tests: f8 rows (data in one file after `pad` bytes, scales
// in another), or f32 / bf16 rows (one file). `data` and `scale` hold the bytes as written.
struct TableOnDisk {
  TableSource source;
  std::vector<uint8_t> data, scale;  // [rows, data_bytes], [rows, scale_bytes]

  // Row r packed as gather_packed returns it.
  std::vector<std::byte> packed(int64_t r) const {
    const RowFormat& f = source.desc.format;
    std::vector<std::byte> v(f.row_bytes());
    std::memcpy(v.data(), data.data() + r * f.data_bytes, f.data_bytes);
    if (f.scale_bytes)
      std::memcpy(v.data() + f.data_bytes, scale.data() + r * f.scale_bytes, f.scale_bytes);
    return v;
  }
};

inline TableOnDisk write_table(const std::string& dir, const std::string& name, RowDtype dtype,
                               int64_t width, int64_t rows, uint64_t seed, uint64_t pad = 1234) {
  TableOnDisk t;
  RowFormat f = RowFormat::make(dtype, width);
  t.source.desc = {name, f, rows};
  t.data.resize(rows * f.data_bytes);
  t.scale.resize(rows * f.scale_bytes);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(width);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : x) v = nd(rng) * float(1 + r % 7);
    quantize_row(f, x.data(), t.data.data() + r * f.data_bytes,
                 f.scale_bytes ? t.scale.data() + r * f.scale_bytes : nullptr);
  }
  auto with_pad = [&](const std::vector<uint8_t>& body, uint64_t p) {
    auto v = random_bytes(p, seed + 99);
    for (uint8_t b : body) v.push_back(std::byte(b));
    return v;
  };
  t.source.data_path = dir + "/" + name + ".data";
  t.source.data_offset = pad;
  write_file(t.source.data_path, with_pad(t.data, pad));
  if (f.scale_bytes) {
    t.source.scale_path = dir + "/" + name + ".scale";
    t.source.scale_offset = pad + 7;
    write_file(t.source.scale_path, with_pad(t.scale, pad + 7));
  }
  return t;
}

}  // namespace engram::testing
