// Fast row dequantization and gathers (the kernels engram/row_format.h promises). Each per-row
// kernel has an AVX-512 body, an AVX2 body and a scalar (lookup-table) body; which one is
// compiled follows the target flags (-march=native by default). All of them compute the same
// IEEE operations as engram::reference (row_convert.cpp), so results are equal bit for bit.
// The e4m3 decode avoids fp32 subnormal arithmetic; the scale multiply itself is a plain fp32
// multiply like PyTorch's (so, like PyTorch, it assumes the default MXCSR: no FTZ/DAZ).
// Gathers prefetch the rows a few rows ahead of the one they convert (ids are random; each row is
// a DRAM and TLB miss) and split large batches across OpenMP threads.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
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
#include "engram/row_gather.h"

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

[[maybe_unused]] constexpr int64_t kParallelMinValues =
    1 << 16;  // below this a gather stays on one thread

// ---- bf16 -> f32 ----------------------------------------------------------------------------
void row_bf16_to_f32(const uint8_t* src, int64_t width, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
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
// AVX-512 route: an e4m3fn byte s.eeee.mmm becomes the fp16 bits s.0eeee.mmm0000000, an fp16
// whose value is exactly 2^-8 times the e4m3 value (subnormals included, both formats put them
// at the bottom of the exponent range); vcvtph2ps widens it exactly. The missing 2^8 is folded
// into the scale when that stays exact (scale byte <= 246, or NaN), so one rounding happens,
// the one of the product itself, exactly as in e4m3_to_f32(q) * e8m0_to_f32(s). The e4m3 NaN
// codes (fp16 1.875) are patched to NaN after the multiply.
#if defined(__AVX512F__) && defined(__AVX512BW__)
inline void block_f8_to_f32(const uint8_t* q, float s, bool fold, float* o) {
  const __m512i x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
  const __m512i w = _mm512_slli_epi16(x, 7);  // magnitude to bits 7..13, sign to bit 14
  const __m512i h = _mm512_add_epi16(w, _mm512_and_si512(w, _mm512_set1_epi16(0x4000)));
  const __mmask32 nan = _mm512_cmpeq_epi16_mask(_mm512_and_si512(x, _mm512_set1_epi16(0x7F)),
                                                _mm512_set1_epi16(0x7F));
  __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
  if (fold) {
    const __m512 sv = _mm512_set1_ps(s * 256.0f);
    lo = _mm512_mul_ps(lo, sv);
    hi = _mm512_mul_ps(hi, sv);
  } else {  // 2^8 * scale would overflow: two multiplies, the first exact
    const __m512 two8 = _mm512_set1_ps(256.0f), sv = _mm512_set1_ps(s);
    lo = _mm512_mul_ps(_mm512_mul_ps(lo, two8), sv);
    hi = _mm512_mul_ps(_mm512_mul_ps(hi, two8), sv);
  }
  const __m512i nan_bits = _mm512_set1_epi32(0x7FF00000);
  lo = _mm512_castsi512_ps(_mm512_mask_or_epi32(
      _mm512_castps_si512(lo), static_cast<__mmask16>(nan), _mm512_castps_si512(lo), nan_bits));
  hi = _mm512_castsi512_ps(_mm512_mask_or_epi32(_mm512_castps_si512(hi),
                                                static_cast<__mmask16>(nan >> 16),
                                                _mm512_castps_si512(hi), nan_bits));
  _mm512_storeu_ps(o, lo);
  _mm512_storeu_ps(o + 16, hi);
}
#elif defined(__AVX2__)
// AVX2 route: 8 bytes -> 8 floats by integer rebiasing; subnormals from an exact int -> float
// conversion, so no fp32 subnormal arithmetic is involved before the scale multiply.
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

// Exact integer route for e4m3 * e8m0 when every scale byte of the row is in [10, 246]: then
// every nonzero product is a normal, finite fp32 with at most 4 significant bits, so it is exact
// in fp32 and in bf16, and no rounding happens at all. Its bf16 bits are
//   sign | (base(mag) + ((s - 7) << 7)),  base(mag) = mag << 4 for normal e4m3 codes,
// and a table entry for the 7 subnormal codes (which normalize one to three binades lower);
// zero codes give (signed) zero and the NaN codes give 0xFFFF, as f32_to_bf16 and PyTorch's
// bf16 cast do. The fp32 result is those bits << 16. Rows with other scales take the general
// route below.
#if defined(__AVX512F__) && defined(__AVX512BW__)
#define ENGRAM_F8_EXACT 1
constexpr uint8_t kExactScaleMin = 10, kExactScaleMax = 246;

inline bool f8_scales_exact(const uint8_t* scale, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b) {
    if (scale[b] < kExactScaleMin || scale[b] > kExactScaleMax) return false;
  }
  return true;
}
#endif

#if defined(ENGRAM_F8_EXACT) && defined(__AVX512VBMI__)
// With AVX-512 VBMI the route works on bytes, 64 codes per vector. A product's fp32 bits are
//   byte 3 = sign | E >> 1,  byte 2 = (E & 1) << 7 | mantissa << 4,  bytes 1, 0 = 0,
// where E = s + d(mag) is the fp32 exponent field (1..254 for these scales) and d, mantissa come
// from two 128-entry byte tables (vpermt2b): the subnormal codes are just table entries. The
// bf16 bits are bytes 3 and 2. Zero codes mask E to 0; the NaN code's table entry saturates E to
// 255 (vpaddusb), and the sign is taken from code + 1 (saturating), whose top bit is set for the
// negative codes and for 0x7F: both NaN codes give 0xFFFF. The codes are permuted on load so that
// the in-lane byte/word interleaves (vpunpck*) that build the outputs write them in order. About
// half the instructions per value of the 16-bit route below; docs/semantics.md (section 5) has
// the measurements.
struct F8ExactTables {
  alignas(64) uint8_t exp[128];       // d(mag) + 9; 255 for the NaN code 0x7F
  alignas(64) uint8_t man[128];       // mantissa << 4 (three bits); 0x7F for the NaN code
  alignas(64) uint8_t perm_f32[64];   // code order that vpunpck{l,h}bw then {l,h}wd undo
  alignas(64) uint8_t perm_bf16[64];  // code order that vpunpck{l,h}bw undo
  alignas(64) uint8_t block_f32[64];  // which of the vector's two scale blocks each byte is in
  alignas(64) uint8_t block_bf16[64];
  alignas(64) uint8_t x7f[64], x80[64], x01[64], x09[64];  // byte constants
};
constexpr F8ExactTables make_f8_exact_tables() {
  F8ExactTables t{};
  // Subnormal codes 1..7 are m * 2^-9: exponent -9, -8, -8, -7, ... and mantissa bits below.
  constexpr int kSubExp[8] = {0, -9, -8, -8, -7, -7, -7, -7};
  constexpr int kSubMan[8] = {0, 0, 0, 4, 0, 2, 4, 6};
  for (int mag = 0; mag < 128; ++mag) {
    const int e4 = mag >> 3, m3 = mag & 7;
    const int d = e4 ? e4 - 7 : kSubExp[m3];
    t.exp[mag] = static_cast<uint8_t>(d + 9);
    t.man[mag] = static_cast<uint8_t>((e4 ? m3 : kSubMan[m3]) << 4);
  }
  t.exp[0] = 0;
  t.exp[0x7F] = 255;
  t.man[0x7F] = 0x7F;
  // Byte p of 128-bit lane L: f32 output vector j takes bytes 4j..4j+3 of every lane; bf16 output
  // vector j takes bytes 8j..8j+7.
  for (int p = 0; p < 64; ++p) {
    const int lane = p / 16, k = p % 16;
    t.perm_f32[p] = static_cast<uint8_t>((k / 4) * 16 + lane * 4 + k % 4);
    t.perm_bf16[p] = static_cast<uint8_t>((k / 8) * 32 + lane * 8 + k % 8);
    t.block_f32[p] = t.perm_f32[p] / 32;
    t.block_bf16[p] = t.perm_bf16[p] / 32;
    t.x7f[p] = 0x7F;
    t.x80[p] = 0x80;
    t.x01[p] = 1;
    t.x09[p] = 9;
  }
  return t;
}
constexpr F8ExactTables kF8Exact = make_f8_exact_tables();

// The tables and constants of one row's conversion, loaded once per row. They are loads rather
// than set1() so that the compiler does not rebuild them from immediates (two instructions each)
// for every row.
struct F8ExactRegs {
  __m512i exp0, exp1, man0, man1, perm, block;
  F8ExactRegs(const uint8_t* perm_table, const uint8_t* block_table)
      : exp0(_mm512_load_si512(kF8Exact.exp)),
        exp1(_mm512_load_si512(kF8Exact.exp + 64)),
        man0(_mm512_load_si512(kF8Exact.man)),
        man1(_mm512_load_si512(kF8Exact.man + 64)),
        perm(_mm512_load_si512(perm_table)),
        block(_mm512_load_si512(block_table)) {}
};

// The bf16 high and low bytes of 64 codes x (already permuted), s9 = each byte's scale - 9.
struct F8Bytes {
  __m512i hi, lo;
};
[[gnu::always_inline]] inline F8Bytes f8_exact_bytes(const F8ExactRegs& t, __m512i x, __m512i s9) {
  const __m512i x7f = _mm512_load_si512(kF8Exact.x7f);
  const __m512i exp = _mm512_permutex2var_epi8(t.exp0, x, t.exp1);
  const __m512i man = _mm512_permutex2var_epi8(t.man0, x, t.man1);
  const __m512i e = _mm512_maskz_adds_epu8(_mm512_test_epi8_mask(x, x7f), exp, s9);
  const __m512i sign = _mm512_adds_epu8(x, _mm512_load_si512(kF8Exact.x01));  // bit 7: < 0 or NaN
  // 0xE4 = c ? a : b, bitwise. Word shifts are fine: the bits they move across bytes are masked.
  return {_mm512_ternarylogic_epi32(_mm512_srli_epi16(e, 1), sign, x7f, 0xE4),
          _mm512_ternarylogic_epi32(_mm512_slli_epi16(e, 7), man, _mm512_load_si512(kF8Exact.x80),
                                    0xE4)};
}

// Runs store(hi, lo, v, half) for each 64-code vector v of the row, with the codes in `perm`
// order and `block` picking the scale; half (std::true_type) marks an odd last block, 32 codes
// whose upper half is zero.
template <typename Store>
[[gnu::always_inline]] inline bool row_f8_exact(const uint8_t* src, const uint8_t* scale,
                                                int64_t width, const uint8_t* perm_table,
                                                const uint8_t* block_table, Store&& store) {
  const int64_t blocks = width / kScaleBlock;
  if (!f8_scales_exact(scale, blocks)) return false;
  const F8ExactRegs t(perm_table, block_table);
  const __m512i nine = _mm512_load_si512(kF8Exact.x09);
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    int16_t pair;
    std::memcpy(&pair, scale + b, 2);
    const __m512i s9 =
        _mm512_permutexvar_epi8(t.block, _mm512_sub_epi8(_mm512_set1_epi16(pair), nine));
    const __m512i x = _mm512_permutexvar_epi8(t.perm, _mm512_loadu_si512(src + b * kScaleBlock));
    const F8Bytes r = f8_exact_bytes(t, x, s9);
    store(r.hi, r.lo, b / 2, std::false_type{});
  }
  if (b < blocks) {  // one block left: load only its 32 bytes
    const __m512i s9 = _mm512_set1_epi8(static_cast<char>(scale[b] - 9));
    const __m512i x = _mm512_permutexvar_epi8(
        t.perm, _mm512_maskz_loadu_epi8(0xFFFFFFFFull, src + b * kScaleBlock));
    const F8Bytes r = f8_exact_bytes(t, x, s9);
    store(r.hi, r.lo, b / 2, std::true_type{});
  }
  return true;
}

// Both return false, writing nothing, when a scale byte is outside [10, 246]. They are forced
// inline: GCC otherwise calls them once per row, and a call in the gather loop costs the loop a
// reload of every vector constant.
[[gnu::always_inline]] inline bool row_f8_exact_bf16(const uint8_t* src, const uint8_t* scale,
                                                     int64_t width, uint16_t* out) {
  return row_f8_exact(src, scale, width, kF8Exact.perm_bf16, kF8Exact.block_bf16,
                      [&](__m512i hi, __m512i lo, int64_t v, auto half) {
                        uint16_t* o = out + v * 2 * kScaleBlock;
                        _mm512_storeu_si512(o, _mm512_unpacklo_epi8(lo, hi));
                        if constexpr (!half()) {
                          _mm512_storeu_si512(o + 32, _mm512_unpackhi_epi8(lo, hi));
                        }
                      });
}

[[gnu::always_inline]] inline bool row_f8_exact_f32(const uint8_t* src, const uint8_t* scale,
                                                    int64_t width, float* out) {
  return row_f8_exact(src, scale, width, kF8Exact.perm_f32, kF8Exact.block_f32,
                      [&](__m512i hi, __m512i lo, int64_t v, auto half) {
                        float* o = out + v * 2 * kScaleBlock;
                        const __m512i z = _mm512_setzero_si512();
                        const __m512i w0 = _mm512_unpacklo_epi8(lo, hi);
                        _mm512_storeu_si512(o, _mm512_unpacklo_epi16(z, w0));
                        _mm512_storeu_si512(o + 16, _mm512_unpackhi_epi16(z, w0));
                        if constexpr (!half()) {
                          const __m512i w1 = _mm512_unpackhi_epi8(lo, hi);
                          _mm512_storeu_si512(o + 32, _mm512_unpacklo_epi16(z, w1));
                          _mm512_storeu_si512(o + 48, _mm512_unpackhi_epi16(z, w1));
                        }
                      });
}

#elif defined(ENGRAM_F8_EXACT)
// Without VBMI the same bits are computed on 16-bit lanes, 32 codes per vector.
inline __m512i block_f8_bf16_bits(const uint8_t* q, __m512i bias) {
  // base() of the subnormal codes 1..7: 2^-9, 2^-8, 1.5 * 2^-8, 2^-7, 1.25, 1.5, 1.75 * 2^-7.
  alignas(64) static const int16_t kSubnormal[32] = {0, -2 << 7, -1 << 7, (-1 << 7) | 0x40,
                                                     0, 0x20,    0x40,    0x60};
  const __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
  const __m512i mag = _mm512_and_si512(x, _mm512_set1_epi16(0x7F));
  __m512i base = _mm512_slli_epi16(mag, 4);
  base = _mm512_mask_permutexvar_epi16(base, _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(8)),
                                       mag, _mm512_load_si512(kSubnormal));
  __m512i r = _mm512_maskz_add_epi16(_mm512_test_epi16_mask(mag, mag), base, bias);
  // r | (x & 0x8000): x is the sign-extended byte, so bit 15 is the sign.
  r = _mm512_ternarylogic_epi32(r, x, _mm512_set1_epi16(static_cast<int16_t>(0x8000)), 0xF8);
  return _mm512_mask_mov_epi16(r, _mm512_cmpeq_epi16_mask(mag, _mm512_set1_epi16(0x7F)),
                               _mm512_set1_epi16(-1));
}

inline __m512i exact_bias(uint8_t s) {
  return _mm512_set1_epi16(static_cast<int16_t>((s - 7) << 7));
}

// Both return false, writing nothing, when a scale byte is outside [10, 246].
inline bool row_f8_exact_bf16(const uint8_t* src, const uint8_t* scale, int64_t width,
                              uint16_t* out) {
  const int64_t blocks = width / kScaleBlock;
  if (!f8_scales_exact(scale, blocks)) return false;
  for (int64_t b = 0; b < blocks; ++b) {
    _mm512_storeu_si512(out + b * kScaleBlock,
                        block_f8_bf16_bits(src + b * kScaleBlock, exact_bias(scale[b])));
  }
  return true;
}

inline bool row_f8_exact_f32(const uint8_t* src, const uint8_t* scale, int64_t width, float* out) {
  const int64_t blocks = width / kScaleBlock;
  if (!f8_scales_exact(scale, blocks)) return false;
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512i r = block_f8_bf16_bits(src + b * kScaleBlock, exact_bias(scale[b]));
    float* o = out + b * kScaleBlock;
    _mm512_storeu_si512(o, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(r)), 16));
    _mm512_storeu_si512(
        o + 16, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(r, 1)), 16));
  }
  return true;
}
#endif

// The general route: any scale byte. Out of line: the gathers inline only the exact route.
[[gnu::noinline]] void row_f8_to_f32_general(const uint8_t* src, const uint8_t* scale,
                                             int64_t width, float* out) {
  const Luts& L = luts();
  for (int64_t b = 0; b < width / kScaleBlock; ++b) {
    const uint8_t* q = src + b * kScaleBlock;
    float* o = out + b * kScaleBlock;
    const float s = L.e8m0[scale[b]];
#if defined(__AVX512F__) && defined(__AVX512BW__)
    block_f8_to_f32(q, s, scale[b] <= 246 || scale[b] == 255, o);
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

inline void row_f8_to_f32(const uint8_t* src, const uint8_t* scale, int64_t width, float* out) {
#ifdef ENGRAM_F8_EXACT
  if (row_f8_exact_f32(src, scale, width, out)) return;
#endif
  row_f8_to_f32_general(src, scale, width, out);
}

// ---- f32 -> bf16 (round to nearest even, NaN -> 0xFFFF) ------------------------------------
// x may be unaligned (an f32 row inside a packed table), hence bytes + loadu / memcpy.
void f32_to_bf16_n(const uint8_t* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
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

// The general f8 -> bf16 route, out of line like row_f8_to_f32_general: keeping the rare path
// out of the gather loops keeps those loops small, which the memory-bound loops measurably like.
[[gnu::noinline]] void row_f8_to_bf16_general(const uint8_t* data, const uint8_t* scale,
                                              int64_t width, uint16_t* out, float* tmp) {
  row_f8_to_f32_general(data, scale, width, tmp);
  f32_to_bf16_n(reinterpret_cast<const uint8_t*>(tmp), width, out);
}

// ---- One row, any format --------------------------------------------------------------------
// The dtype is a template argument: gathers pick it once (with_dtype) rather than per row.
// row_to_fast returns false, writing nothing, for the rows only the general route
// handles (f8 rows with a scale byte outside [10, 246], where the exact route is compiled in).
// Gathers convert those rows after their loop: a call inside the loop, even one never made, makes
// the compiler reload every vector constant per row (all vector registers are caller-saved),
// which cost 15-20% of the fp8 gathers' speed.

// The general f8 route into either output type (tmp [width] is used only for bf16 output).
inline void row_f8_general(const uint8_t* data, const uint8_t* scale, int64_t width, float* out,
                           float* /*tmp*/) {
  row_f8_to_f32_general(data, scale, width, out);
}
inline void row_f8_general(const uint8_t* data, const uint8_t* scale, int64_t width, uint16_t* out,
                           float* tmp) {
  row_f8_to_bf16_general(data, scale, width, out, tmp);
}

// One row into Out: float (fp32) or uint16_t (bf16 bits).
template <RowDtype DT, typename Out>
[[gnu::always_inline]] inline bool row_to_fast(const RowFormat& fmt, const uint8_t* data,
                                               const uint8_t* scale, Out* out,
                                               [[maybe_unused]] float* tmp) {
  constexpr bool kToF32 = std::is_same_v<Out, float>;
  static_assert(kToF32 || std::is_same_v<Out, uint16_t>);
  if constexpr ((DT == RowDtype::f32 && kToF32) || (DT == RowDtype::bf16 && !kToF32)) {
    std::memcpy(out, data, static_cast<size_t>(fmt.data_bytes));
  } else if constexpr (DT == RowDtype::bf16) {
    row_bf16_to_f32(data, fmt.width, out);
  } else if constexpr (DT == RowDtype::f32) {
    f32_to_bf16_n(data, fmt.width, out);
  } else {
#ifdef ENGRAM_F8_EXACT
    if constexpr (kToF32) {
      return row_f8_exact_f32(data, scale, fmt.width, out);
    } else {
      return row_f8_exact_bf16(data, scale, fmt.width, out);
    }
#else
    row_f8_general(data, scale, fmt.width, out, tmp);
#endif
  }
  return true;
}

// One row into Out, any route. For bf16 output the general f8 route goes through fp32 (`tmp`,
// [width]) so the rounding is that of the fp32 product; the exact route needs no rounding at all.
template <RowDtype DT, typename Out>
inline void row_to(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, Out* out,
                   float* tmp) {
  if (!row_to_fast<DT>(fmt, data, scale, out, tmp)) {
    row_f8_general(data, scale, fmt.width, out, tmp);
  }
}

// Scratch for the general fp8 route into bf16 (`tmp` above), empty where it cannot run.
template <RowDtype DT, typename Out>
std::vector<float> general_route_scratch(int64_t width) {
  constexpr bool kNeeded = DT == RowDtype::f8_e4m3 && std::is_same_v<Out, uint16_t>;
  return std::vector<float>(kNeeded ? static_cast<size_t>(width) : 0);
}

// Calls f(std::integral_constant<RowDtype, dt>{}).
template <typename F>
inline void with_dtype(RowDtype dt, F&& f) {
  switch (dt) {
    case RowDtype::f32:
      f(std::integral_constant<RowDtype, RowDtype::f32>{});
      return;
    case RowDtype::bf16:
      f(std::integral_constant<RowDtype, RowDtype::bf16>{});
      return;
    case RowDtype::f8_e4m3:
      f(std::integral_constant<RowDtype, RowDtype::f8_e4m3>{});
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

// Runs body(begin, end) over [0, n): on one thread for small batches, else in chunks of
// kChunkRows handed out dynamically to OpenMP threads (a thread that the OS preempts does not
// hold up the others). `body` never throws (all checks happen before).
[[maybe_unused]] constexpr int64_t kChunkRows = 128;
template <typename Body>
void for_row_ranges(int64_t n, [[maybe_unused]] int64_t width, Body&& body) {
#ifdef _OPENMP
  if (n > kChunkRows && n * width >= kParallelMinValues && omp_get_max_threads() > 1 &&
      !omp_in_parallel()) {
    const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) body(c * kChunkRows, std::min(n, (c + 1) * kChunkRows));
    return;
  }
#endif
  body(0, n);
}

// Asks for every cache line of row i (values and scales) to be brought into L2. Prefetches
// retire at once, so the misses of the rows ahead stay in flight while the current row is
// converted; loads ("touching" the rows ahead) would block retirement behind them and leave the
// reorder buffer full of conversion work, with fewer misses in flight than a memcpy loop has
// (measured with bench_gather: fp8 -> f32 went from 0.8x to above 1x of memcpy). The L2 hint
// beats L1 (T0) on every format here: the L1 has far fewer miss buffers.
//
// The hint is an asm statement: GCC finds a helper made only of __builtin_prefetch calls to be
// free of side effects and deletes every call to it as dead code.
inline void prefetch_l2(const uint8_t* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht1 %0" : : "m"(*p));
#elif defined(__aarch64__)
  asm volatile("prfm pldl2keep, %0" : : "Q"(*p));
#else
  __builtin_prefetch(p, 0, 2);
#endif
}

// Hints for the n lines from p's line on: one indirect jump, then straight-line hints (a loop
// per row cost about 10% of the fp8 gathers' speed with the rows in L2).
[[gnu::always_inline]] inline void prefetch_lines(const uint8_t* p, int64_t n) {
  const uint8_t* line =
      reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
  switch (n) {
    default:
      for (int64_t k = 8; k < n; ++k) prefetch_l2(line + 64 * k);
      [[fallthrough]];
    case 8:
      prefetch_l2(line + 64 * 7);
      [[fallthrough]];
    case 7:
      prefetch_l2(line + 64 * 6);
      [[fallthrough]];
    case 6:
      prefetch_l2(line + 64 * 5);
      [[fallthrough]];
    case 5:
      prefetch_l2(line + 64 * 4);
      [[fallthrough]];
    case 4:
      prefetch_l2(line + 64 * 3);
      [[fallthrough]];
    case 3:
      prefetch_l2(line + 64 * 2);
      [[fallthrough]];
    case 2:
      prefetch_l2(line + 64);
      [[fallthrough]];
    case 1:
      prefetch_l2(line);
      [[fallthrough]];
    case 0:
      break;
  }
}

// The number of lines [p, p + n) touches.
inline int64_t lines_spanned(const uint8_t* p, int64_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return n > 0 ? static_cast<int64_t>(((a + static_cast<uintptr_t>(n) - 1) >> 6) - (a >> 6) + 1)
               : 0;
}

// What a gather prefetches of each row: every line of its values and of its scales, one hint per
// line (a second hint for a line already on its way still takes a miss buffer). When every row
// starts at the same offset within a line (a table whose base and row size allow it), the line
// counts are fixed for the whole call; otherwise (rows given by pointer) they are computed per
// row.
struct RowPrefetch {
  int64_t data_bytes = 0, scale_bytes = 0;
  int64_t data_lines = -1, scale_lines = -1;  // -1: per row

  [[gnu::always_inline]] void operator()(const uint8_t* d, const uint8_t* s) const {
    prefetch_lines(d, data_lines >= 0 ? data_lines : lines_spanned(d, data_bytes));
    if (s != nullptr)
      prefetch_lines(s, scale_lines >= 0 ? scale_lines : lines_spanned(s, scale_bytes));
  }
};

// RowPrefetch for rows whose line counts are known at compile time: straight-line hints, no jump
// (V4.1's rows in a table: 4 lines of values, 1 of scales).
template <int kDataLines, int kScaleLines>
struct FixedPrefetch {
  [[gnu::always_inline]] void operator()(const uint8_t* d, const uint8_t* s) const {
    const auto line = [](const uint8_t* p) {
      return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
    };
    for (int k = 0; k < kDataLines; ++k) prefetch_l2(line(d) + 64 * k);
    for (int k = 0; k < kScaleLines; ++k) prefetch_l2(line(s) + 64 * k);
  }
};

// Fixed line counts for rows of `bytes` bytes at base + k * bytes, if there are any.
inline int64_t fixed_lines(const uint8_t* base, int64_t bytes) {
  const uintptr_t off = reinterpret_cast<uintptr_t>(base) % 64;
  if (bytes % 64 == 0) return lines_spanned(base, bytes);  // same offset in every row
  if (64 % bytes == 0 && off % bytes == 0) return 1;       // rows tile the lines
  return -1;
}

// The prefetch of rows [b, e): the rows a pipelined loop starts with.
template <typename Prefetch, typename RowAt>
[[gnu::always_inline]] inline void prefetch_rows(const Prefetch& prefetch, const RowAt& row_at,
                                                 int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const auto [d, s] = row_at(i);
    prefetch(d, s);
  }
}

// Converts rows [b, e), prefetching row i + distance before converting row i. The distance
// keeps about kPrefetchBytes of table rows in flight (7 rows of V4.1's 264-byte fp8 rows).
// emit(i, d, s) returns false for a row it leaves to general(i, d, s); those rows are converted
// after the loop (a call inside the loop, even one never made, makes the compiler reload every
// vector constant per row). Up to kDeclinedMax of them are remembered; past that, a second pass
// offers every row to emit again and hands the ones it declines to general.
constexpr int64_t kPrefetchBytes = 2048;
constexpr int64_t kDeclinedMax = 64;
// Everything is taken by value (lambdas capture by value too): the vector stores may alias any
// memory, so anything reached through a reference would be reloaded after every row.
template <typename Prefetch, typename RowAt, typename Emit, typename General>
inline void pipelined_rows(const RowFormat fmt, const Prefetch prefetch, int64_t b, int64_t e,
                           const RowAt row_at, const Emit emit, const General general) {
  const int64_t ahead = std::clamp<int64_t>(kPrefetchBytes / fmt.row_bytes(), 2, 16);
  int64_t declined[kDeclinedMax];
  int64_t n_declined = 0;
  prefetch_rows(prefetch, row_at, b, std::min(e, b + ahead));
  for (int64_t i = b; i < e; ++i) {
    if (i + ahead < e) {
      const auto [pd, ps] = row_at(i + ahead);
      prefetch(pd, ps);
    }
    const auto [d, s] = row_at(i);
    if (!emit(i, d, s)) {
      if (n_declined < kDeclinedMax) declined[n_declined] = i;
      ++n_declined;
    }
  }
  if (n_declined <= kDeclinedMax) {
    for (int64_t k = 0; k < n_declined; ++k) {
      const auto [d, s] = row_at(declined[k]);
      general(declined[k], d, s);
    }
    return;
  }
  for (int64_t i = b; i < e; ++i) {
    const auto [d, s] = row_at(i);
    if (!emit(i, d, s)) general(i, d, s);
  }
}

// Staged conversion, for fp8 rows read from memory: rows are copied in chunks into an L1-sized
// buffer by a lean loop that prefetches ahead, and each chunk is then converted from the buffer.
//
// Why two loops: while a demand load waits on DRAM, the out-of-order window fills behind it.
// A copy loop carries about 10 instructions and 5 stores per 264-byte row, so the window holds
// many rows and their misses overlap; a converting loop carries about 80 instructions and 16
// zmm stores (fp32 out) per row, so it holds about two rows, and when a prefetched row is not
// yet in, nothing else proceeds. bench_gather, 1 GiB table of V4.1 rows, one thread, fp32 out:
// 1.06-1.17x a memcpy loop of the same rows in place, 1.37-1.41x staged (docs/semantics.md,
// section 5, has the rest). With the rows in L2 the extra copy costs about 20% (57 -> 45 M
// rows/s), so tables up to kCachedTableBytes convert in place.
constexpr int64_t kStageBytes = 16384;
constexpr int64_t kStagePrefetchBytes = 6144;

// n bytes, with inline moves of fixed size, overlapping at the end: the copy loop must stay lean.
// (A plain byte loop becomes a call to memcpy, and AVX-512 masked stores are slow on some cores;
// either cost the staged gather 15-20% of its speed.)
// The first and the last N bytes of n (N <= n <= 2N): all of them, overlapping in the middle.
template <int N>
[[gnu::always_inline]] inline void copy_ends(uint8_t* dst, const uint8_t* src, int64_t n) {
  std::memcpy(dst, src, N);
  std::memcpy(dst + n - N, src + n - N, N);
}
[[gnu::always_inline]] inline void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t n) {
  if (n >= 64) {
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) std::memcpy(dst + k, src + k, 64);
    if (k < n) std::memcpy(dst + n - 64, src + n - 64, 64);
  } else if (n >= 32) {
    copy_ends<32>(dst, src, n);
  } else if (n >= 16) {
    copy_ends<16>(dst, src, n);
  } else if (n >= 8) {
    copy_ends<8>(dst, src, n);
  } else if (n >= 4) {
    copy_ends<4>(dst, src, n);
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] = src[k];
  }
}

// Rows whose values and scales both fit a buffer of kStageBytes at least twice over.
inline bool stageable(const RowFormat& fmt) {
  return 2 * (fmt.data_bytes + fmt.scale_bytes) <= kStageBytes;
}

// pipelined_rows' contract, with the rows staged (see above). Requires stageable(fmt).
// kDataBytes, kScaleBytes: the row's sizes when known at compile time (0: fmt's), which makes
// each row's copy a few straight vector moves.
template <int64_t kDataBytes, int64_t kScaleBytes, typename Prefetch, typename RowAt, typename Emit,
          typename General>
inline void staged_rows(const RowFormat fmt, const Prefetch prefetch, int64_t b, int64_t e,
                        const RowAt row_at, const Emit emit, const General general) {
  const int64_t db = kDataBytes ? kDataBytes : fmt.data_bytes;
  const int64_t sb = kScaleBytes ? kScaleBytes : fmt.scale_bytes;
  const int64_t chunk = std::min(kStageBytes / (db + sb), kDeclinedMax);
  const int64_t ahead = std::clamp<int64_t>(kStagePrefetchBytes / (db + sb), 2, 32);
  alignas(64) uint8_t stage[kStageBytes];
  uint8_t* const sd = stage;
  uint8_t* const ss = stage + chunk * db;
  prefetch_rows(prefetch, row_at, b, std::min(e, b + ahead));
  for (int64_t c0 = b; c0 < e; c0 += chunk) {
    const int64_t c1 = std::min(e, c0 + chunk);
    for (int64_t i = c0; i < c1; ++i) {
      if (i + ahead < e) {
        const auto [pd, ps] = row_at(i + ahead);
        prefetch(pd, ps);
      }
      const auto [d, s] = row_at(i);
      copy_bytes(sd + (i - c0) * db, d, db);
      if (sb) copy_bytes(ss + (i - c0) * sb, s, sb);
    }
    // Init-captures: with sizes fixed at compile time, clang flags plain captures of db, sb.
    const auto staged_at = [sd, ss, c0, dn = db, sn = sb](int64_t i) {
      return std::pair<const uint8_t*, const uint8_t*>(sd + (i - c0) * dn,
                                                       sn ? ss + (i - c0) * sn : nullptr);
    };
    pipelined_rows(
        fmt, [](const uint8_t*, const uint8_t*) {}, c0, c1, staged_at, emit, general);
  }
}

// row_at(i) for a gather: the (values, scales) pointers of table row row_ids[i]. The ids were
// checked by the caller. Sizes are copies: the vector stores may alias anything, so fields read
// through a reference would be reloaded after every row.
inline auto table_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                       std::span<const int64_t> row_ids) {
  const int64_t data_bytes = fmt.data_bytes;
  const int64_t scale_bytes = fmt.dtype == RowDtype::f8_e4m3 ? fmt.scale_bytes : 0;
  const int64_t* ids = row_ids.data();
  return [data, scale, ids, data_bytes, scale_bytes](int64_t i) {
    const int64_t r = ids[i];
    return std::pair<const uint8_t*, const uint8_t*>(
        data + r * data_bytes, scale_bytes ? scale + r * scale_bytes : nullptr);
  };
}

inline RowPrefetch table_prefetch(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale) {
  return {fmt.data_bytes, fmt.scale_bytes, fixed_lines(data, fmt.data_bytes),
          fixed_lines(scale, fmt.scale_bytes)};
}

// Rows [b, e) into Out, staged or in place. kWidth: the row width when it is known at compile
// time (0: f.width), so that the row kernels unroll and the staging copies have fixed sizes.
template <RowDtype DT, int64_t kWidth, typename Out, typename Prefetch, typename RowAt>
[[gnu::always_inline]] inline void convert_rows(RowFormat f, const Prefetch prefetch, int64_t b,
                                                int64_t e, const RowAt row_at, bool stage, Out* out,
                                                float* t) {
  if constexpr (kWidth != 0) f.width = kWidth;
  const auto emit = [f, out, t](int64_t i, const uint8_t* d, const uint8_t* s) {
    return row_to_fast<DT>(f, d, s, out + i * f.width, t);
  };
  const auto general = [f, out, t](int64_t i, const uint8_t* d, const uint8_t* s) {
    row_f8_general(d, s, f.width, out + i * f.width, t);
  };
  if constexpr (DT == RowDtype::f8_e4m3) {
    if (stage) {
      staged_rows<kWidth, kWidth / kScaleBlock>(f, prefetch, b, e, row_at, emit, general);
      return;
    }
  }
  pipelined_rows(f, prefetch, b, e, row_at, emit, general);
}

// Rows row_at(0 .. n) into Out (float or uint16_t bf16 bits), prefetching ahead, on OpenMP
// threads when large. `from_memory`: the rows are likely outside the caches (a large table, or
// rows given by pointer), so fp8 rows are staged (staged_rows).
template <typename Out, typename RowAt>
void gather(const RowFormat& fmt, const RowPrefetch& prefetch, int64_t n, const RowAt& row_at,
            bool from_memory, Out* out) {
  const RowFormat f = fmt;  // a local copy: see table_rows
  with_dtype(f.dtype, [&](auto dt) {
    constexpr bool kF8 = decltype(dt)::value == RowDtype::f8_e4m3;
    const bool stage = kF8 && from_memory && stageable(f);
    // V4.1's rows (256 fp8 values, 8 scales) in a table: everything at compile time.
    const bool v41 = kF8 && f.width == 256 && prefetch.data_lines == 4 && prefetch.scale_lines == 1;
    for_row_ranges(n, f.width, [&](int64_t b, int64_t e) {
      std::vector<float> tmp = general_route_scratch<dt(), Out>(f.width);
      // Only fp8 instantiates the width-256 path. Kept as if/else: with an early return instead,
      // hot fp8 -> bf16 gathers ran 20% slower (measured; GCC laid the loop out differently).
      if constexpr (kF8) {
        if (v41) {
          convert_rows<dt(), 256>(f, FixedPrefetch<4, 1>{}, b, e, row_at, stage, out, tmp.data());
        } else {
          convert_rows<dt(), 0>(f, prefetch, b, e, row_at, stage, out, tmp.data());
        }
      } else {
        convert_rows<dt(), 0>(f, prefetch, b, e, row_at, stage, out, tmp.data());
      }
    });
  });
}

// Tables larger than this are taken to be mostly outside the caches. Measured with V4.1 rows:
// converting in place and staged ran even at 64 MiB; in place was 0-15% ahead at 16-48 MiB. (The C
// library's figure for the last-level cache is no guide in a VM: here it reports 320 MiB for a 32
// MiB L3.)
constexpr int64_t kCachedTableBytes = int64_t{64} << 20;

bool table_in_memory(const RowFormat& fmt, int64_t num_rows) {
  return num_rows > kCachedTableBytes / fmt.row_bytes();
}

// Packed rows data[0 .. n) (and their scales) into Out.
template <typename Out>
void dequantize_packed(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t n,
                       Out* out) {
  with_dtype(fmt.dtype, [&](auto dt) {
    for_row_ranges(n, fmt.width, [&](int64_t b, int64_t e) {
      std::vector<float> tmp = general_route_scratch<dt(), Out>(fmt.width);
      for (int64_t i = b; i < e; ++i) {
        row_to<dt()>(fmt, data + i * fmt.data_bytes, scale ? scale + i * fmt.scale_bytes : nullptr,
                     out + i * fmt.width, tmp.data());
      }
    });
  });
}

}  // namespace

void dequantize_row(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, float* out) {
  check_format(fmt, data, scale, "dequantize_row");
  with_dtype(fmt.dtype, [&](auto dt) { row_to<dt()>(fmt, data, scale, out, nullptr); });
}

void dequantize_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t n,
                     float* out) {
  if (n < 0) fail(Errc::invalid_argument, "dequantize_rows: negative row count ", n);
  if (n == 0) return;
  check_format(fmt, data, scale, "dequantize_rows");
  dequantize_packed(fmt, data, scale, n, out);
}

void dequantize_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                          int64_t n, uint16_t* out) {
  if (n < 0) fail(Errc::invalid_argument, "dequantize_rows_bf16: negative row count ", n);
  if (n == 0) return;
  check_format(fmt, data, scale, "dequantize_rows_bf16");
  dequantize_packed(fmt, data, scale, n, out);
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
  const auto row_at = [&](int64_t i) {
    return std::pair<const uint8_t*, const uint8_t*>(data_rows[i], f8 ? scale_rows[i] : nullptr);
  };
  gather(fmt, RowPrefetch{fmt.data_bytes, f8 ? fmt.scale_bytes : 0}, n, row_at, true, out);
}

void gather_rows(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale, int64_t num_rows,
                 std::span<const int64_t> row_ids, float* out) {
  const int64_t n = static_cast<int64_t>(row_ids.size());
  if (n == 0) return;
  check_format(fmt, data, scale, "gather_rows");
  check_ids(num_rows, row_ids, "gather_rows");
  gather(fmt, table_prefetch(fmt, data, scale), n, table_rows(fmt, data, scale, row_ids),
         table_in_memory(fmt, num_rows), out);
}

void gather_rows_bf16(const RowFormat& fmt, const uint8_t* data, const uint8_t* scale,
                      int64_t num_rows, std::span<const int64_t> row_ids, uint16_t* out) {
  const int64_t n = static_cast<int64_t>(row_ids.size());
  if (n == 0) return;
  check_format(fmt, data, scale, "gather_rows_bf16");
  check_ids(num_rows, row_ids, "gather_rows_bf16");
  gather(fmt, table_prefetch(fmt, data, scale), n, table_rows(fmt, data, scale, row_ids),
         table_in_memory(fmt, num_rows), out);
}

void dequantize_blocks(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols, float* out) {
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
  for_row_ranges(rows, cols, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const uint8_t* srow = s + (r / kScaleBlock) * scols;
      // A full-width row is a packed f8 row whose scales are the block row's scales.
      if (full > 0) row_f8_to_f32(w + r * cols, srow, full, out + r * cols);
      for (int64_t c = full; c < cols; ++c) {
        out[r * cols + c] = L.e4m3[w[r * cols + c]] * L.e8m0[srow[c / kScaleBlock]];
      }
    }
  });
}

}  // namespace engram
