// The plain scalar references of src/table/row_format_ref.h.
#include "table/row_format_ref.h"

#include <cstring>
#include <vector>

#include "engram/error.h"

namespace engram {

// ---- Plain references -----------------------------------------------------------------------

namespace reference {

void dequantize_row(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, float* out) {
  switch (fmt.dtype) {
    case RowDtype::f32:
      for (int64_t i = 0; i < fmt.width; ++i) std::memcpy(&out[i], data + 4 * i, 4);
      return;
    case RowDtype::bf16:
      for (int64_t i = 0; i < fmt.width; ++i) {
        uint16_t b;
        std::memcpy(&b, data + 2 * i, 2);
        out[i] = bf16_to_f32(b);
      }
      return;
    case RowDtype::f8_e4m3:
      for (int64_t i = 0; i < fmt.width; ++i) {
        out[i] = e4m3_to_f32(data[i]) * e8m0_to_f32(scale[i / kScaleBlock]);
      }
      return;
  }
}

static void check_ids(int64_t num_rows, std::span<const int64_t> ids, const char* who) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= num_rows) {
      fail(Errc::out_of_range, who, ": row id ", ids[i], " at position ", i,
           " is outside the table [0, ", num_rows, ")");
    }
  }
}

void gather_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t num_rows,
                 std::span<const int64_t> row_ids, float* out) {
  check_ids(num_rows, row_ids, "gather_rows");
  for (size_t i = 0; i < row_ids.size(); ++i) {
    const int64_t r = row_ids[i];
    reference::dequantize_row(fmt, data + r * fmt.data_bytes,
                              scale ? scale + r * fmt.scale_bytes : nullptr,
                              out + static_cast<int64_t>(i) * fmt.width);
  }
}

void gather_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                      int64_t num_rows, std::span<const int64_t> row_ids, uint16_t* out) {
  check_ids(num_rows, row_ids, "gather_rows_bf16");
  std::vector<float> row(static_cast<size_t>(fmt.width));
  for (size_t i = 0; i < row_ids.size(); ++i) {
    const int64_t r = row_ids[i];
    if (fmt.dtype == RowDtype::bf16) {
      std::memcpy(out + static_cast<int64_t>(i) * fmt.width, data + r * fmt.data_bytes,
                  static_cast<size_t>(fmt.data_bytes));
      continue;
    }
    reference::dequantize_row(fmt, data + r * fmt.data_bytes,
                              scale ? scale + r * fmt.scale_bytes : nullptr, row.data());
    for (int64_t j = 0; j < fmt.width; ++j) {
      out[static_cast<int64_t>(i) * fmt.width + j] = f32_to_bf16(row[j]);
    }
  }
}

void dequantize_blocks(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols, float* out) {
  const int64_t scols = (cols + kScaleBlock - 1) / kScaleBlock;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      out[r * cols + c] = e4m3_to_f32(w[r * cols + c]) *
                          e8m0_to_f32(s[(r / kScaleBlock) * scols + c / kScaleBlock]);
    }
  }
}

}  // namespace reference
}  // namespace engram
