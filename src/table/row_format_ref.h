// Plain scalar references of the row kernels (engram/row_gather.h), for tests and benchmarks:
// one value at a time, straight from the format definitions.
#pragma once

#include <cstdint>
#include <span>

#include "engram/row_format.h"

namespace engram {

// ---- Plain scalar references (for tests and benchmarks) -------------------------------------
namespace reference {
void dequantize_row(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, float* out);
void gather_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t num_rows,
                 std::span<const int64_t> row_ids, float* out);
void gather_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                      int64_t num_rows, std::span<const int64_t> row_ids, uint16_t* out);
void dequantize_blocks(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols, float* out);
}  // namespace reference

}  // namespace engram
