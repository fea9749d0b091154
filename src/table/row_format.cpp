// Scalar number-format conversions (bf16, e4m3fn, e8m0 <-> f32), RowFormat and the quantizers
// of synthetic tables. Written from the format definitions; see engram/row_format.h for the exact
// contracts.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "engram/error.h"
#include "engram/row_format.h"

namespace engram {

float bf16_to_f32(uint16_t x) {
  return std::bit_cast<float>(static_cast<uint32_t>(x) << 16);
}

uint16_t f32_to_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFF;  // NaN
  // Round to nearest even: add 0x7FFF plus the lowest kept bit; a carry may reach the exponent
  // (and turn the largest finite values into inf), as IEEE rounding does.
  const uint32_t bias = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + bias) >> 16);
}

float e4m3_to_f32(uint8_t x) {
  const uint32_t sign = static_cast<uint32_t>(x & 0x80u) << 24;
  const uint32_t exp = (x >> 3) & 0xFu;
  const uint32_t man = x & 0x7u;
  if (exp == 0xF && man == 0x7) return std::bit_cast<float>(sign | 0x7FF00000u);
  float mag;
  if (exp == 0) {
    mag = std::ldexp(static_cast<float>(man), -9);  // subnormal: man * 2^-9 (exact)
  } else {
    mag = std::bit_cast<float>(((exp + 127 - 7) << 23) | (man << 20));
  }
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(mag));
}

uint8_t f32_to_e4m3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7F;   // NaN
  if (a >= 0x43E00000u) return sign | 0x7E;  // |x| >= 448 (incl. inf): saturate
  if (a < (121u << 23)) {                    // |x| < 2^-6: subnormal range
    // q = round_half_even(|x| * 2^9); q == 8 is the encoding of 2^-6, the smallest normal.
    const float scaled = std::bit_cast<float>(a) * 512.0f;  // exact: power-of-two scaling
    const float q = std::nearbyint(scaled);                 // default rounding: half to even
    return sign | static_cast<uint8_t>(q);
  }
  // Normal: rebias the exponent (127 -> 7) and round the 23-bit mantissa to 3 bits, ties to even.
  const uint32_t rebased = a - ((127u - 7u) << 23);
  const uint32_t rounded = rebased + 0x7FFFFu + ((rebased >> 20) & 1u);
  return sign | static_cast<uint8_t>(rounded >> 20);
}

float e8m0_to_f32(uint8_t x) {
  if (x == 0xFF) return std::bit_cast<float>(0x7FC00000u);
  if (x == 0) return std::bit_cast<float>(0x00400000u);  // 2^-127
  return std::bit_cast<float>(static_cast<uint32_t>(x) << 23);
}

uint8_t f32_to_e8m0(float x) {
  if (!std::isfinite(x)) return 0xFF;
  const uint32_t a = std::bit_cast<uint32_t>(x) & 0x7FFFFFFFu;
  if (a <= 0x00400000u) return 0;  // <= 2^-127 (incl. 0)
  if (a < 0x00800000u) return 1;   // subnormal above 2^-127: rounds up to 2^-126
  const uint32_t exp = a >> 23;
  const bool exact = (a & 0x7FFFFFu) == 0;
  const uint32_t up = exact ? exp : exp + 1;
  return static_cast<uint8_t>(std::min<uint32_t>(up, 254));  // 2^127 is the largest scale
}

const char* row_dtype_name(RowDtype d) {
  switch (d) {
    case RowDtype::f32:
      return "f32";
    case RowDtype::bf16:
      return "bf16";
    case RowDtype::f8_e4m3:
      return "f8_e4m3";
  }
  return "?";
}

RowFormat RowFormat::make(RowDtype dtype, int64_t width) {
  if (width <= 0) fail(Errc::invalid_argument, "RowFormat: width must be positive, got ", width);
  RowFormat f;
  f.dtype = dtype;
  f.width = width;
  switch (dtype) {
    case RowDtype::f32:
      f.data_bytes = width * 4;
      break;
    case RowDtype::bf16:
      f.data_bytes = width * 2;
      break;
    case RowDtype::f8_e4m3:
      if (width % kScaleBlock != 0) {
        fail(Errc::invalid_argument, "RowFormat: f8_e4m3 width ", width,
             " is not a multiple of the scale block (", kScaleBlock, ")");
      }
      f.data_bytes = width;
      f.scale_bytes = width / kScaleBlock;
      break;
    default:
      fail(Errc::invalid_argument, "RowFormat: unknown dtype ", static_cast<int>(dtype));
  }
  return f;
}

// ---- Writers --------------------------------------------------------------------------------

namespace {
uint8_t scale_for_amax(float amax) {
  return f32_to_e8m0(amax / 448.0f);
}
}  // namespace

void quantize_row(const RowFormat& fmt, const float* x, uint8_t* data, uint8_t* scale) {
  switch (fmt.dtype) {
    case RowDtype::f32:
      std::memcpy(data, x, static_cast<size_t>(fmt.width) * 4);
      return;
    case RowDtype::bf16:
      for (int64_t i = 0; i < fmt.width; ++i) {
        const uint16_t b = f32_to_bf16(x[i]);
        std::memcpy(data + 2 * i, &b, 2);
      }
      return;
    case RowDtype::f8_e4m3:
      for (int64_t b = 0; b < fmt.width / kScaleBlock; ++b) {
        const float* xb = x + b * kScaleBlock;
        float amax = 0.0f;
        for (int64_t i = 0; i < kScaleBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
        scale[b] = scale_for_amax(amax);
        const float s = e8m0_to_f32(scale[b]);
        for (int64_t i = 0; i < kScaleBlock; ++i)
          data[b * kScaleBlock + i] = f32_to_e4m3(xb[i] / s);
      }
      return;
  }
}

void quantize_blocks(const float* x, int64_t rows, int64_t cols, uint8_t* w, uint8_t* s) {
  if (rows < 0 || cols < 0) fail(Errc::invalid_argument, "quantize_blocks: negative shape");
  const int64_t scols = (cols + kScaleBlock - 1) / kScaleBlock;
  for (int64_t br = 0; br * kScaleBlock < rows; ++br) {
    const int64_t r0 = br * kScaleBlock, r1 = std::min(rows, r0 + kScaleBlock);
    for (int64_t bc = 0; bc < scols; ++bc) {
      const int64_t c0 = bc * kScaleBlock, c1 = std::min(cols, c0 + kScaleBlock);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      const uint8_t sb = scale_for_amax(amax);
      s[br * scols + bc] = sb;
      const float sf = e8m0_to_f32(sb);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) w[r * cols + c] = f32_to_e4m3(x[r * cols + c] / sf);
    }
  }
}

}  // namespace engram
