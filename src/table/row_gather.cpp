// Fast row dequantization and gathers (the kernels engram/row_format.h promises). Each per-row
// kernel has an AVX-512 body, an AVX2 body and a scalar (lookup-table) body; which one is
// compiled follows the target flags (-march=native by default). All of them compute the same
// IEEE operations as engram::reference (row_convert.cpp), so results are equal bit for bit.
// The e4m3 decode avoids fp32 subnormal arithmetic, so it stays exact even if a caller runs
// with denormals-are-zero; the scale multiply itself is a plain fp32 multiply like PyTorch's.
// Gathers prefetch a few rows ahead (ids are random; each row is a DRAM miss) and split large
// batches across OpenMP threads.
#include <cstring>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the undefined pass-through operand inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engram/error.h"
#include "engram/row_format.h"

namespace engram {
namespace {

struct Luts {
  float e4m3[256];
  float e8m0[256];
  Luts() {
    for (int i = 0; i < 256; ++i) {
      e4m3[i] = e4m3_to_f32(static_cast<uint8_t>(i));
      e8m0[i] = e8m0_to_f32(static_cast<uint8_t>(i));
    }
  }
};
const Luts& luts() {
  static const Luts l;
  return l;
}

constexpr int kPrefetchAhead = 8;          // rows
constexpr int64_t kParallelMinValues = 1 << 16;  // below this a gather stays on one thread

inline void prefetch_row(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 0);
}

// ---- bf16 -> f32 ----------------------------------------------------------------------------
void row_bf16_to_f32(const uint8_t* src, int64_t width, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= width; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
    const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    _mm512_storeu_si512(out + i, w);
  }
#elif defined(__AVX2__)
  for (; i + 8 <= width; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), w);
  }
#endif
  for (; i < width; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    out[i] = bf16_to_f32(b);
  }
}

// ---- e4m3 * e8m0 -> f32 ---------------------------------------------------------------------
#if defined(__AVX512F__)
// 16 e4m3 bytes -> 16 floats, without touching fp32 subnormals.
inline __m512 e4m3x16_to_f32(__m128i bytes) {
  const __m512i v = _mm512_cvtepu8_epi32(bytes);
  const __m512i mag = _mm512_and_si512(v, _mm512_set1_epi32(0x7F));
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
  // Normal: exponent rebiased 7 -> 127, mantissa to the top of the fp32 mantissa.
  __m512i bits = _mm512_add_epi32(_mm512_slli_epi32(mag, 20), _mm512_set1_epi32(120 << 23));
  // Subnormal (exponent field 0): man * 2^-9, computed from an exact int -> float conversion.
  const __mmask16 sub = _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(8));
  const __m512 subv = _mm512_mul_ps(_mm512_cvtepi32_ps(mag), _mm512_set1_ps(1.0f / 512.0f));
  bits = _mm512_mask_mov_epi32(bits, sub, _mm512_castps_si512(subv));
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7F));
  bits = _mm512_mask_mov_epi32(bits, nan, _mm512_set1_epi32(0x7FF00000));
  return _mm512_castsi512_ps(_mm512_or_si512(bits, sign));
}
#elif defined(__AVX2__)
inline __m256 e4m3x8_to_f32(__m128i bytes) {
  const __m256i v = _mm256_cvtepu8_epi32(bytes);
  const __m256i mag = _mm256_and_si256(v, _mm256_set1_epi32(0x7F));
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
  __m256i bits = _mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23));
  const __m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(8), mag);
  const __m256 subv = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(1.0f / 512.0f));
  bits = _mm256_blendv_epi8(bits, _mm256_castps_si256(subv), sub);
  const __m256i nan = _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7F));
  bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x7FF00000), nan);
  return _mm256_castsi256_ps(_mm256_or_si256(bits, sign));
}
#endif

void row_f8_to_f32(const uint8_t* src, const uint8_t* scale, int64_t width, float* out) {
  const Luts& L = luts();
  for (int64_t b = 0; b < width / kScaleBlock; ++b) {
    const uint8_t* q = src + b * kScaleBlock;
    float* o = out + b * kScaleBlock;
    const float s = L.e8m0[scale[b]];
#if defined(__AVX512F__)
    const __m512 sv = _mm512_set1_ps(s);
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16));
    _mm512_storeu_ps(o, _mm512_mul_ps(e4m3x16_to_f32(lo), sv));
    _mm512_storeu_ps(o + 16, _mm512_mul_ps(e4m3x16_to_f32(hi), sv));
#elif defined(__AVX2__)
    const __m256 sv = _mm256_set1_ps(s);
    for (int k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k));
      _mm256_storeu_ps(o + 8 * k, _mm256_mul_ps(e4m3x8_to_f32(v), sv));
    }
#else
    for (int64_t i = 0; i < kScaleBlock; ++i) o[i] = L.e4m3[q[i]] * s;
#endif
  }
}

// ---- f32 -> bf16 (round to nearest even, NaN -> 0xFFFF) ------------------------------------
// x may be unaligned (an f32 row inside a packed table), hence bytes + loadu / memcpy.
void f32_to_bf16_n(const uint8_t* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i inf = _mm512_set1_epi32(0x7F800000);
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(x + 4 * i);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0xFFFF));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(r));
  }
#endif
  for (; i < n; ++i) {
    float v;
    std::memcpy(&v, x + 4 * i, 4);
    out[i] = f32_to_bf16(v);
  }
}

// ---- One row, any format --------------------------------------------------------------------
inline void row_to_f32(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                       float* out) {
  switch (fmt.dtype) {
    case RowDtype::f32: std::memcpy(out, data, static_cast<size_t>(fmt.data_bytes)); return;
    case RowDtype::bf16: row_bf16_to_f32(data, fmt.width, out); return;
    case RowDtype::f8_e4m3: row_f8_to_f32(data, scale, fmt.width, out); return;
  }
}

// Row to bf16; f8 goes through tmp [width] fp32 so the rounding is that of the fp32 product.
inline void row_to_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                        uint16_t* out, float* tmp) {
  switch (fmt.dtype) {
    case RowDtype::bf16: std::memcpy(out, data, static_cast<size_t>(fmt.data_bytes)); return;
    case RowDtype::f32: f32_to_bf16_n(data, fmt.width, out); return;
    case RowDtype::f8_e4m3:
      row_f8_to_f32(data, scale, fmt.width, tmp);
      f32_to_bf16_n(reinterpret_cast<const uint8_t*>(tmp), fmt.width, out);
      return;
  }
}

void check_format(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                  const char* who) {
  const RowFormat want = RowFormat::make(fmt.dtype, fmt.width);
  if (want.data_bytes != fmt.data_bytes || want.scale_bytes != fmt.scale_bytes) {
    fail(Errc::invalid_argument, who, ": RowFormat is inconsistent (use RowFormat::make)");
  }
  if (data == nullptr) fail(Errc::invalid_argument, who, ": null data");
  if (fmt.dtype == RowDtype::f8_e4m3 && scale == nullptr) {
    fail(Errc::invalid_argument, who, ": f8_e4m3 rows need scales (got null)");
  }
}

void check_ids(int64_t num_rows, std::span<const int64_t> ids, const char* who) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= num_rows) {
      fail(Errc::out_of_range, who, ": row id ", ids[i], " at position ", i,
           " is outside the table [0, ", num_rows, ")");
    }
  }
}

// Runs body(i) for i in [0, n), on OpenMP threads when the batch is large. `body` never throws
// (all checks happen before).
template <typename Body>
void for_rows(int64_t n, int64_t width, Body&& body) {
#ifdef _OPENMP
  if (n > 1 && n * width >= kParallelMinValues && omp_get_max_threads() > 1 &&
      !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace

void dequantize_row(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, float* out) {
  check_format(fmt, data, scale, "dequantize_row");
  row_to_f32(fmt, data, scale, out);
}

void dequantize_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t n,
                     float* out) {
  if (n < 0) fail(Errc::invalid_argument, "dequantize_rows: negative row count ", n);
  if (n == 0) return;
  check_format(fmt, data, scale, "dequantize_rows");
  for_rows(n, fmt.width, [&](int64_t i) {
    row_to_f32(fmt, data + i * fmt.data_bytes, scale ? scale + i * fmt.scale_bytes : nullptr,
               out + i * fmt.width);
  });
}

void dequantize_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                          int64_t n, uint16_t* out) {
  if (n < 0) fail(Errc::invalid_argument, "dequantize_rows_bf16: negative row count ", n);
  if (n == 0) return;
  check_format(fmt, data, scale, "dequantize_rows_bf16");
  for_rows(n, fmt.width, [&](int64_t i) {
    thread_local std::vector<float> tmp;
    if (static_cast<int64_t>(tmp.size()) < fmt.width) tmp.resize(static_cast<size_t>(fmt.width));
    row_to_bf16(fmt, data + i * fmt.data_bytes, scale ? scale + i * fmt.scale_bytes : nullptr,
                out + i * fmt.width, tmp.data());
  });
}

void dequantize_row_ptrs(const RowFormat& fmt, std::span<const uint8_t* const> data_rows,
                         std::span<const uint8_t* const> scale_rows, float* out) {
  const int64_t n = static_cast<int64_t>(data_rows.size());
  if (n == 0) return;
  const bool f8 = fmt.dtype == RowDtype::f8_e4m3;
  if (f8 && scale_rows.size() != data_rows.size()) {
    fail(Errc::invalid_argument, "dequantize_row_ptrs: ", data_rows.size(), " data rows but ",
         scale_rows.size(), " scale rows");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (data_rows[i] == nullptr || (f8 && scale_rows[i] == nullptr)) {
      fail(Errc::invalid_argument, "dequantize_row_ptrs: null row pointer at position ", i);
    }
  }
  check_format(fmt, data_rows[0], f8 ? scale_rows[0] : nullptr, "dequantize_row_ptrs");
  for_rows(n, fmt.width, [&](int64_t i) {
    if (i + kPrefetchAhead < n) {
      prefetch_row(data_rows[i + kPrefetchAhead], fmt.data_bytes);
      if (f8) __builtin_prefetch(scale_rows[i + kPrefetchAhead], 0, 0);
    }
    row_to_f32(fmt, data_rows[i], f8 ? scale_rows[i] : nullptr, out + i * fmt.width);
  });
}

void gather_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                 int64_t num_rows, std::span<const int64_t> row_ids, float* out) {
  const int64_t n = static_cast<int64_t>(row_ids.size());
  if (n == 0) return;
  check_format(fmt, data, scale, "gather_rows");
  check_ids(num_rows, row_ids, "gather_rows");
  const bool f8 = fmt.dtype == RowDtype::f8_e4m3;
  for_rows(n, fmt.width, [&](int64_t i) {
    if (i + kPrefetchAhead < n) {
      const int64_t r = row_ids[i + kPrefetchAhead];
      prefetch_row(data + r * fmt.data_bytes, fmt.data_bytes);
      if (f8) __builtin_prefetch(scale + r * fmt.scale_bytes, 0, 0);
    }
    const int64_t r = row_ids[i];
    row_to_f32(fmt, data + r * fmt.data_bytes, f8 ? scale + r * fmt.scale_bytes : nullptr,
               out + i * fmt.width);
  });
}

void gather_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                      int64_t num_rows, std::span<const int64_t> row_ids, uint16_t* out) {
  const int64_t n = static_cast<int64_t>(row_ids.size());
  if (n == 0) return;
  check_format(fmt, data, scale, "gather_rows_bf16");
  check_ids(num_rows, row_ids, "gather_rows_bf16");
  const bool f8 = fmt.dtype == RowDtype::f8_e4m3;
  for_rows(n, fmt.width, [&](int64_t i) {
    thread_local std::vector<float> tmp;
    if (static_cast<int64_t>(tmp.size()) < fmt.width) tmp.resize(static_cast<size_t>(fmt.width));
    if (i + kPrefetchAhead < n) {
      const int64_t r = row_ids[i + kPrefetchAhead];
      prefetch_row(data + r * fmt.data_bytes, fmt.data_bytes);
      if (f8) __builtin_prefetch(scale + r * fmt.scale_bytes, 0, 0);
    }
    const int64_t r = row_ids[i];
    row_to_bf16(fmt, data + r * fmt.data_bytes, f8 ? scale + r * fmt.scale_bytes : nullptr,
                out + i * fmt.width, tmp.data());
  });
}

void dequantize_blocks(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols,
                       float* out) {
  if (rows < 0 || cols < 0) {
    fail(Errc::invalid_argument, "dequantize_blocks: negative shape [", rows, ", ", cols, "]");
  }
  if (rows == 0 || cols == 0) return;
  if (w == nullptr || s == nullptr || out == nullptr) {
    fail(Errc::invalid_argument, "dequantize_blocks: null buffer");
  }
  const int64_t scols = (cols + kScaleBlock - 1) / kScaleBlock;
  const int64_t full = cols / kScaleBlock * kScaleBlock;
  const Luts& L = luts();
  for_rows(rows, cols, [&](int64_t r) {
    const uint8_t* srow = s + (r / kScaleBlock) * scols;
    // A full-width row is a packed f8 row whose scales are the block row's scales.
    if (full > 0) row_f8_to_f32(w + r * cols, srow, full, out + r * cols);
    for (int64_t c = full; c < cols; ++c) {
      out[r * cols + c] = L.e4m3[w[r * cols + c]] * L.e8m0[srow[c / kScaleBlock]];
    }
  });
}

}  // namespace engram
