// Rotary embedding and causal attention (nn/attention.h). OpenMP over (batch, KV head); the
// products inside a head run as register-tiled matrix products over the causal half. Every
// parallel loop writes disjoint outputs and every reduction runs in a fixed order, so results
// do not depend on thread timing.
#include "nn/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "nn/softmax.h"
#include "nn/vec.h"

namespace engram::nn {

// Loops fork threads only above this many elements: below it the fork/join costs more than the
// work (decode steps, tiny models).
[[maybe_unused]] constexpr int64_t kParallelMin = 1 << 14;

// ---- RoPE -------------------------------------------------------------------------------------

void rope_tables(float* cos_t, float* sin_t, int64_t max_T, int64_t D, float theta) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; i++) {
    // Same arithmetic as the usual fp32 PyTorch code: inv_freq = 1 / theta^(2i/D) in fp32, then
    // angle = pos * inv_freq in fp32; only cos/sin are taken in double.
    const float inv_freq =
        1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(D));
    for (int64_t t = 0; t < max_T; t++) {
      const float angle = static_cast<float>(t) * inv_freq;
      cos_t[t * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_t[t * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

static void rope_apply(float* x, const float* cos_t, const float* sin_t, int64_t B, int64_t T,
                       int64_t n_heads, int64_t D, int64_t row_stride, int64_t pos0, float sign) {
  const int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (B * T * n_heads * D >= kParallelMin)
  for (int64_t bt = 0; bt < B * T; bt++) {
    const int64_t pos = pos0 + bt % T;
    const float* c = cos_t + pos * half;
    const float* s = sin_t + pos * half;
    float* row = x + bt * row_stride;
    for (int64_t h = 0; h < n_heads; h++) {
      float* x1 = row + h * D;
      float* x2 = x1 + half;
      for (int64_t i = 0; i < half; i++) {
        const float a = x1[i], b = x2[i], sn = sign * s[i];
        x1[i] = a * c[i] - b * sn;
        x2[i] = b * c[i] + a * sn;
      }
    }
  }
}

void rope_forward(float* x, const float* cos_t, const float* sin_t, int64_t B, int64_t T,
                  int64_t n_heads, int64_t D, int64_t row_stride, int64_t pos0) {
  rope_apply(x, cos_t, sin_t, B, T, n_heads, D, row_stride, pos0, 1.0f);
}

void rope_backward(float* dx, const float* cos_t, const float* sin_t, int64_t B, int64_t T,
                   int64_t n_heads, int64_t D, int64_t row_stride, int64_t pos0) {
  rope_apply(dx, cos_t, sin_t, B, T, n_heads, D, row_stride, pos0, -1.0f);
}

// ---- causal attention -------------------------------------------------------------------------

// Per-thread scratch that survives calls. A per-call std::vector of T*T floats (256 KB at
// T = 256) is above glibc's mmap threshold, so it would be mapped, page-faulted and unmapped on
// every call. Slot k of the calling thread holds at least n floats (contents unspecified).
static float* thread_scratch(int slot, size_t n) {
  thread_local std::vector<float> bufs[8];
  if (bufs[slot].size() < n) bufs[slot].resize(n);
  return bufs[slot].data();
}

// vfloat / kLanes (model/vec.h): the widest fp32 vector the build targets. memcpy loads assume
// no alignment.
static inline vfloat loadv(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
static inline void storev(float* p, vfloat v) {
  std::memcpy(p, &v, sizeof(v));
}

// Element (r, k) of an operand stored as is (row stride ld) or transposed (A^T stored, row
// stride ld): the transposed form lets a product read dS^T, P^T, Q^T or dO^T without copying.
template <bool kTransA>
static inline float elem(const float* A, int64_t ld, int64_t r, int64_t k) {
  return kTransA ? A[k * ld + r] : A[r * ld + k];
}

// Register tile of a small matrix product, 4 rows x kCols columns (32 or 64):
//   C[r, 0:kCols) (+)= sum_{k in [k0, k1)} A(r, k) * B[k, 0:kCols)     r < 4
// B (ldb), C (ldc) row-major; A as elem<kTransA>. With AVX-512 the 4 x kCols/16 accumulators
// and the kCols/16 B vectors stay in registers; each k costs 4 broadcasts, kCols/16 loads and
// kCols/4 lanes' worth of FMAs (64 columns halve the broadcasts per FMA).
template <bool kTransA, int kCols>
static inline void tile_4xw(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                            int64_t ldb, int64_t k0, int64_t k1, bool accumulate) {
  constexpr int kVecs = kCols / kLanes;
  vfloat acc[4][kVecs] = {};
  for (int64_t k = k0; k < k1; k++) {
    const float* bk = B + k * ldb;
    vfloat b[kVecs];
    if constexpr (kVecs == 2 || kVecs == 4) {
      // Named copies behind an empty asm: without it the compiler folds the loads into the FMAs
      // (4 loads per vector instead of 1); with the asm on array elements it keeps the array in
      // memory instead.
      vfloat b0 = loadv(bk), b1 = loadv(bk + kLanes);
      vfloat b2 = kVecs == 4 ? loadv(bk + 2 * kLanes) : b0;
      vfloat b3 = kVecs == 4 ? loadv(bk + 3 * kLanes) : b1;
#if defined(__x86_64__) || defined(__i386__)
      asm("" : "+v"(b0), "+v"(b1), "+v"(b2), "+v"(b3));
#endif
      const vfloat named[4] = {b0, b1, b2, b3};
      for (int v = 0; v < kVecs; v++) b[v] = named[v];
    } else {
      for (int v = 0; v < kVecs; v++) b[v] = loadv(bk + kLanes * v);
    }
    for (int r = 0; r < 4; r++) {
      const float a = elem<kTransA>(A, lda, r, k);
      for (int v = 0; v < kVecs; v++) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < 4; r++) {
    for (int v = 0; v < kVecs; v++) {
      float* c = C + r * ldc + kLanes * v;
      storev(c, accumulate ? loadv(c) + acc[r][v] : acc[r][v]);
    }
  }
}

// The same for a partial tile (mr <= 4 rows, w <= kCols columns), plain loops.
template <bool kTransA, int kCols>
static void tile_edge(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                      int64_t ldb, int64_t mr, int64_t w, int64_t k0, int64_t k1, bool accumulate) {
  float acc[4][kCols] = {};
  for (int64_t k = k0; k < k1; k++) {
    const float* b = B + k * ldb;
    for (int64_t r = 0; r < mr; r++) {
      const float a = elem<kTransA>(A, lda, r, k);
#pragma omp simd
      for (int64_t c = 0; c < w; c++) acc[r][c] += a * b[c];
    }
  }
  for (int64_t r = 0; r < mr; r++) {
    float* c = C + r * ldc;
    for (int64_t j = 0; j < w; j++) c[j] = accumulate ? c[j] + acc[r][j] : acc[r][j];
  }
}

// C[0:M, 0:N) (+)= A B over tiles of 4 rows x kCols columns (32 or 64), where the tile at
// (r0, c0) of mr rows sums k over the range bounds(r0, mr, c0) = {k0, k1} only: the causal
// structure of attention is expressed as per-tile k ranges (the entries of A or B outside them
// are zero, or the outputs are not needed). A tile with an empty range is left untouched.
// Column-chunk-major order keeps the B panel of one chunk (K x kCols floats) in cache while the
// row tiles stream past it.
template <bool kTransA, int kCols, class Bounds>
static void tiled_product(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                          int64_t ldb, int64_t M, int64_t N, bool accumulate, Bounds bounds) {
  for (int64_t c0 = 0; c0 < N; c0 += kCols) {
    const int64_t w = std::min<int64_t>(kCols, N - c0);
    for (int64_t r0 = 0; r0 < M; r0 += 4) {
      const int64_t mr = std::min<int64_t>(4, M - r0);
      const auto [k0, k1] = bounds(r0, mr, c0);
      if (k0 >= k1) continue;
      float* c = C + r0 * ldc + c0;
      const float* a = kTransA ? A + r0 : A + r0 * lda;
      if (mr == 4 && w == kCols) {
        tile_4xw<kTransA, kCols>(c, ldc, a, lda, B + c0, ldb, k0, k1, accumulate);
      } else {
        tile_edge<kTransA, kCols>(c, ldc, a, lda, B + c0, ldb, mr, w, k0, k1, accumulate);
      }
    }
  }
}

// A product whose N is the head size D: 64-column tiles when D is a multiple of 64 (one tile
// row covers a whole head for D = 64), else 32-column tiles.
template <bool kTransA, class Bounds>
static void head_product(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                         int64_t ldb, int64_t M, int64_t D, bool accumulate, Bounds bounds) {
  if (D % 64 == 0) {
    tiled_product<kTransA, 64>(C, ldc, A, lda, B, ldb, M, D, accumulate, bounds);
  } else {
    tiled_product<kTransA, 32>(C, ldc, A, lda, B, ldb, M, D, accumulate, bounds);
  }
}

struct KRange {
  int64_t k0, k1;
};

// Tile bounds of the causal products. Scores: a tile with a column at or below its last row sums
// all K of the inner dimension, a tile wholly above the diagonal is skipped. P V and dS K: row
// tile r0..r0+mr-1 sums keys 0..r0+mr-1 (P and dS are zero past the diagonal).
static auto whole_k_below_diagonal(int64_t K) {
  return [K](int64_t r0, int64_t mr, int64_t c0) {
    return c0 <= r0 + mr - 1 ? KRange{0, K} : KRange{0, 0};
  };
}
constexpr auto causal_prefix = [](int64_t r0, int64_t mr, int64_t) { return KRange{0, r0 + mr}; };

// dst (cols, rows; row stride ldd) = src (rows, cols; row stride lds)^T, in 16 x 16 blocks so
// that both sides touch 16 cache lines at a time.
static void transpose(float* __restrict dst, int64_t ldd, const float* __restrict src, int64_t lds,
                      int64_t rows, int64_t cols) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t r1 = std::min(rows, r0 + 16);
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t c1 = std::min(cols, c0 + 16);
      for (int64_t c = c0; c < c1; c++) {
        for (int64_t r = r0; r < r1; r++) dst[c * ldd + r] = src[r * lds + c];
      }
    }
  }
}

void attention_forward(float* out, float* att, const float* qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV, int64_t D) {
  // Per (b, query head h), with Q, K, V the (T, D) slices of qkv:
  //   S = (scale Q) K^T     (T, T), tiles above the diagonal skipped
  //   P = softmax(S) row-wise over j <= i, zero above the diagonal (stored in att)
  //   O = P V               (T, D), k range of a row tile stops at its last row
  // A block is (b, kv head): its K^T panel is shared by the group's query heads; V is read in
  // place.
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const auto below_diagonal = whole_k_below_diagonal(D);
#pragma omp parallel
  {
    float* kt = thread_scratch(0, D * T);  // K^T (D, T)
    float* qs = thread_scratch(1, T * D);  // scale * Q of one head (T, D)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        transpose(kt, T, base + (H + g) * D, stride, T, D);
        const float* v = base + (H + KV + g) * D;  // V (T, D), row stride `stride`
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          for (int64_t i = 0; i < T; i++) {
            const float* q = base + i * stride + h * D;
            for (int64_t d = 0; d < D; d++) qs[i * D + d] = q[d] * scale;
          }
          float* p = att + (b * H + h) * T * T;
          tiled_product<false, 32>(p, T, qs, D, kt, T, T, T, false, below_diagonal);
          for (int64_t i = 0; i < T; i++) {
            softmax_inplace(p + i * T, i + 1);
            std::fill(p + i * T + i + 1, p + (i + 1) * T, 0.0f);
          }
          head_product<false>(out + b * T * H * D + h * D, H * D, p, T, v, stride, T, D, false,
                              causal_prefix);
        }
      }
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  // With P = softmax(S), S = scale * Q K^T (causal), O = P V, per (b, query head):
  //   dP = dO V^T                                  (T, T), lower triangle
  //   dS = P * (dP - rowsum(P * dP)) * scale       zero above the diagonal
  //   dQ += dS K                                   (T, D)
  //   dK += dS^T Q,  dV += P^T dO                  (T, D): row j sums rows i >= j of dS, P
  // dS^T and P^T are read in place (transposed-A tiles), Q, K and dO straight from qkv / dout.
  // Heads of one KV group share dK and dV, so a block is (b, kv head) and owns its outputs.
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const auto below_diagonal = whole_k_below_diagonal(D);
  const auto causal_suffix = [T](int64_t r0, int64_t, int64_t) { return KRange{r0, T}; };
#pragma omp parallel
  {
    float* vt = thread_scratch(0, D * T);  // V^T (D, T)
    float* ds = thread_scratch(1, T * T);  // dP, then dS (T, T)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        float* dbase = dqkv + b * T * stride;
        const float* k = base + (H + g) * D;  // K (T, D), row stride `stride`
        transpose(vt, T, base + (H + KV + g) * D, stride, T, D);
        float* dk = dbase + (H + g) * D;       // (T, D), row stride `stride`
        float* dv = dbase + (H + KV + g) * D;  // (T, D), row stride `stride`
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          const float* p = att + (b * H + h) * T * T;
          const float* dO = dout + b * T * H * D + h * D;  // (T, D), row stride H * D
          tiled_product<false, 32>(ds, T, dO, H * D, vt, T, T, T, false, below_diagonal);
          for (int64_t i = 0; i < T; i++) {
            const float* pi = p + i * T;
            float* si = ds + i * T;
            const int64_t n = i + 1;
            float dotp = 0.0f;
#pragma omp simd reduction(+ : dotp)
            for (int64_t j = 0; j < n; j++) dotp += pi[j] * si[j];
#pragma omp simd
            for (int64_t j = 0; j < n; j++) si[j] = pi[j] * (si[j] - dotp) * scale;
            std::fill(si + n, si + T, 0.0f);
          }
          head_product<false>(dbase + h * D, stride, ds, T, k, stride, T, D, true, causal_prefix);
          head_product<true>(dk, stride, ds, T, base + h * D, stride, T, D, true, causal_suffix);
          head_product<true>(dv, stride, p, T, dO, H * D, T, D, true, causal_suffix);
        }
      }
    }
  }
}

void attention_decode(float* out, const float* q, const float* kcache, const float* vcache,
                      int64_t n_ctx, int64_t H, int64_t KV, int64_t D, float* scratch) {
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t h = 0; h < H; h++) {
    const int64_t g = h / group;
    const float* qh = q + h * D;
    for (int64_t j = 0; j < n_ctx; j++) {
      const float* k = kcache + j * KV * D + g * D;
      float s = 0.0f;
      for (int64_t d = 0; d < D; d++) s += qh[d] * scale * k[d];
      scratch[j] = s;
    }
    softmax_inplace(scratch, n_ctx);
    float* o = out + h * D;
    std::fill(o, o + D, 0.0f);
    for (int64_t j = 0; j < n_ctx; j++) {
      const float* v = vcache + j * KV * D + g * D;
      for (int64_t d = 0; d < D; d++) o[d] += scratch[j] * v[d];
    }
  }
}

}  // namespace engram::nn
