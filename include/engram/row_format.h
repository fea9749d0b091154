// engram/row_format.h: how an Engram table stores one row, and turning rows into fp32 / bf16.
//
// Three row formats (DESIGN.md 2.5):
//   f32          width x 4 bytes
//   bf16         width x 2 bytes
//   f8_e4m3      width x 1 byte of e4m3fn values, plus one e8m0 scale byte per 32 consecutive
//                values of the row, stored apart (DeepSeek-V4.1: `embed.weight` [rows, 256]
//                F8_E4M3 and `embed.scale` [rows, 8] F8_E8M0, so 256 + 8 bytes a row).
// A table is two row-major arrays: data [rows, data_bytes] and, for f8, scale [rows, scale_bytes].
// Dequantized value of f8 = e4m3_to_f32(q) * e8m0_to_f32(s), one IEEE fp32 multiply, which is
// exactly what PyTorch computes for `w.float() * s.float()` (both factors are exact in fp32).
//
// Turning rows into fp32 / bf16 in bulk (the fast gathers) is engram/row_gather.h; the plain scalar
// references they are tested against are in src/table/row_format_ref.h. Nothing here allocates.
#pragma once

#include <cstdint>
#include <span>

namespace engram {

// ---- Scalar conversions ---------------------------------------------------------------------

// bf16 -> f32: the bf16 bits become the high half of the f32 (exact; NaN payload kept).
float bf16_to_f32(uint16_t x);
// f32 -> bf16, round to nearest even; overflow rounds to +-inf; any NaN gives 0xFFFF, which is
// what PyTorch 1.13's `.to(torch.bfloat16)` produces on contiguous CPU tensors (its scalar
// c10::BFloat16 path gives 0x7FC0 instead; the non-NaN results of both paths are identical).
uint16_t f32_to_bf16(float x);

// e4m3fn -> f32: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; subnormals
// m * 2^-9; 0x7F / 0xFF are NaN and give the f32 bits 0x7FF00000 / 0xFFF00000 (as c10 does).
float e4m3_to_f32(uint8_t x);
// f32 -> e4m3fn, round to nearest even, saturating: |x| >= 448 (and +-inf) give +-448; NaN gives
// 0x7F with the sign of x. Equal to PyTorch's float8_e4m3fn cast for |x| <= 464 (PyTorch maps
// larger magnitudes to NaN; DeepSeek's quantizers clamp first, which matches saturation).
uint8_t f32_to_e4m3(float x);

// e8m0 -> f32: 2^(x - 127); x = 0 gives 2^-127 (an fp32 subnormal); x = 255 is NaN.
float e8m0_to_f32(uint8_t x);
// f32 -> e8m0 for writing scales: the smallest power of two >= |x|, clamped to [2^-127, 2^127]
// (so 0 gives byte 0); NaN and +-inf give 255. Rounding up keeps x / scale inside e4m3's range.
uint8_t f32_to_e8m0(float x);

// ---- Row formats ----------------------------------------------------------------------------

enum class RowDtype : uint8_t { f32 = 0, bf16 = 1, f8_e4m3 = 2 };

inline constexpr int64_t kScaleBlock = 32;  // values per e8m0 scale (rows and 2-D weight blocks)

struct RowFormat {
  RowDtype dtype = RowDtype::f32;
  int64_t width = 0;        // values per row
  int64_t data_bytes = 0;   // bytes of values per row
  int64_t scale_bytes = 0;  // bytes of scales per row (width / 32 for f8, else 0)

  // Throws Errc::invalid_argument for width <= 0, or an f8 width not a multiple of 32.
  static RowFormat make(RowDtype dtype, int64_t width);
  int64_t row_bytes() const { return data_bytes + scale_bytes; }
};

const char* row_dtype_name(RowDtype d);  // "f32", "bf16", "f8_e4m3"

// ---- Writers for synthetic checkpoints and tests --------------------------------------------

// x [fmt.width] -> data [data_bytes], scale [scale_bytes]. f8: per 32-block,
// scale = f32_to_e8m0(amax / 448) and q = f32_to_e4m3(x / scale).
void quantize_row(const RowFormat& fmt, const float* x, uint8_t* data, uint8_t* scale);
// x [rows, cols] -> w [rows, cols] e4m3fn, s [ceil(rows/32), ceil(cols/32)] e8m0, same rule per
// 32x32 block.
void quantize_blocks(const float* x, int64_t rows, int64_t cols, uint8_t* w, uint8_t* s);

}  // namespace engram
