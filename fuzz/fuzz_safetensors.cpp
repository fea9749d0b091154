// libFuzzer target for the safetensors header parser: the input is a whole file held in memory.
// Any input must either parse into tensors that lie inside the data section without
// overlapping, or throw engram::Error; a crash, hang or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "engram/error.h"
#include "engram/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  try {
    const engram::SafetensorsHeader h = engram::parse_safetensors_header(bytes, size, "<fuzz>");
    uint64_t prev_end = h.data_offset;
    for (const engram::TensorInfo& t : h.tensors) {
      // The promises a reader relies on before it touches a byte.
      if (t.offset < h.data_offset || t.offset + t.nbytes > size) std::abort();
      if (t.nbytes != static_cast<uint64_t>(t.numel()) * engram::dtype_size(t.dtype)) std::abort();
      if (t.nbytes > 0) {
        if (t.offset < prev_end) std::abort();
        prev_end = t.offset + t.nbytes;
      }
    }
  } catch (const engram::Error&) {
  }
  return 0;
}
