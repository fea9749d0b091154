// engram/row_gather.h: rows of a table (engram/row_format.h) turned into fp32 / bf16, in bulk.
//
// The fast kernels (lookup tables, AVX-512/AVX2 where compiled in, OpenMP for large gathers,
// staged copies for tables far larger than the cache) are tested equal bit for bit (NaN compared
// as NaN) to the plain scalar references of src/table/row_format_ref.h. Nothing here allocates;
// callers own every buffer. Not here: reading rows from files or caches (the store, store.h).
#pragma once

#include <cstdint>
#include <span>

#include "engram/row_format.h"

namespace engram {

// ---- Fast kernels (the ones to call) --------------------------------------------------------
// Argument checks throw engram::Error; on a throw nothing has been written to `out`.
// `scale` is ignored (may be null) unless fmt.dtype == f8_e4m3.

// One row: data [fmt.data_bytes], scale [fmt.scale_bytes] -> out [fmt.width].
void dequantize_row(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, float* out);

// Rows already fetched into packed buffers: data [n, data_bytes], scale [n, scale_bytes]
// -> out [n, width].
void dequantize_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t n,
                     float* out);
void dequantize_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                          int64_t n, uint16_t* out);

// Rows wherever they are (cache slots, mapped shards): row i's values at data_rows[i], its
// scales at scale_rows[i] (scale_rows may be empty unless f8) -> out [n, width], n =
// data_rows.size().
void dequantize_row_ptrs(const RowFormat& fmt, std::span<const uint8_t* const> data_rows,
                         std::span<const uint8_t* const> scale_rows, float* out);

// Gather from a whole table: data [num_rows, data_bytes], scale [num_rows, scale_bytes];
// out [row_ids.size(), width]. An id outside [0, num_rows) throws Errc::out_of_range naming its
// position and value. Large gathers run on OpenMP threads.
void gather_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t num_rows,
                 std::span<const int64_t> row_ids, float* out);
void gather_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                      int64_t num_rows, std::span<const int64_t> row_ids, uint16_t* out);

// 2-D block-scaled weight (V4.1 `wkv`): w [rows, cols] e4m3fn, s [ceil(rows/32), ceil(cols/32)]
// e8m0, one scale per 32x32 block -> out [rows, cols] = e4m3(w[r,c]) * e8m0(s[r/32, c/32]).
void dequantize_blocks(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols, float* out);

}  // namespace engram
