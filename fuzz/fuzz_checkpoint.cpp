// Fuzz target for the DeepSeek-V4.1 checkpoint opener (V41Checkpoint::open) and the rows it then
// serves. Input: u16 little-endian length n, then n bytes of config.json, then the bytes of
// model.safetensors. Both are written to a private directory, opened, and when the opener
// accepts them, a few rows of every layer are read through a FileStore. engram::Error is the
// expected outcome of bad input; anything else (a crash, a sanitizer report, another exception
// type, a hang) is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engram/error.h"
#include "engram/v41_checkpoint.h"

namespace {

const std::string& work_dir() {
  static const std::string dir = [] {
    std::string d = std::filesystem::temp_directory_path().string() + "/fuzz_checkpoint." +
                    std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void write(const std::string& path, const uint8_t* p, size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t n = size_t(data[0]) | (size_t(data[1]) << 8);
  if (n > size - 2) n = size - 2;
  const std::string& dir = work_dir();
  write(dir + "/config.json", data + 2, n);
  write(dir + "/model.safetensors", data + 2 + n, size - 2 - n);
  try {
    auto ck = engram::V41Checkpoint::open(dir);
    auto store = engram::FileStore::open(ck->table_sources(), {true, false, 8});
    for (size_t t = 0; t < store->num_tables(); ++t) {
      const int64_t rows = store->table(t).rows;
      std::vector<int64_t> ids{0, rows - 1, rows / 2, rows};  // the last is out of range
      std::vector<std::byte> out(ids.size() * store->table(t).row_bytes());
      try {
        store->gather_packed(t, std::span(ids).first(rows > 0 ? 3 : 0), out.data());
        std::vector<float> f(3 * store->table(t).format.width);
        if (rows > 0) store->gather_f32(t, std::span(ids).first(3), f.data());
        store->gather_packed(t, ids, out.data());
      } catch (const engram::Error&) {
      }
    }
  } catch (const engram::Error&) {
  }
  return 0;
}
