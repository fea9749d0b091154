// Transformer layer kernels for CPU training: see kernels.h for the contract of each function.
// Fast versions use OpenBLAS (GEMM) and OpenMP (rows, attention blocks); reference versions are
// plain loops kept for the tests. Every parallel loop writes disjoint outputs and every reduction
// runs in a fixed order, so results do not depend on thread timing.
#include "model/kernels.h"

#include "engram/nn_kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace engram::model {

// Elementwise kernels fork threads only above this many elements: below it the fork/join costs
// more than the work (decode steps, tiny models).
[[maybe_unused]] constexpr int64_t kParallelMin = 1 << 14;

// ---- token embedding --------------------------------------------------------------------------

void embedding_forward(float* out, const int32_t* ids, const float* wte, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    std::memcpy(out + n * C, wte + static_cast<int64_t>(ids[n]) * C, C * sizeof(float));
  }
}

void embedding_backward(float* dwte, const float* dout, const int32_t* ids, int64_t N, int64_t C) {
  // Serial on purpose: repeated ids hit the same row, and a fixed order keeps sums reproducible.
  for (int64_t n = 0; n < N; n++) {
    float* row = dwte + static_cast<int64_t>(ids[n]) * C;
    const float* d = dout + n * C;
    for (int64_t c = 0; c < C; c++) row[c] += d[c];
  }
}

// ---- RMSNorm ----------------------------------------------------------------------------------

// The model's rows are contiguous: the Engram layer's strided kernels (nn_kernels.h) with
// ld = C, so both share one implementation (double-accumulated sums of squares and dot).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps) {
  nn::rmsnorm_forward(out, C, rstd, inp, C, weight, N, C, eps);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C) {
  nn::rmsnorm_backward(dinp, C, dweight, dout, C, inp, C, weight, rstd, N, C);
}

// ---- linear -----------------------------------------------------------------------------------

void matmul_forward(float* out, const float* inp, const float* weight, int64_t N, int64_t IC,
                    int64_t OC, bool accumulate) {
  if (N == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC,
              accumulate ? 1.0f : 0.0f, out, OC);
}

void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t IC, int64_t OC) {
  if (N == 0) return;
  if (dinp != nullptr) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC,
                1.0f, dinp, IC);
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f,
              dweight, IC);
}

void matmul_forward_ref(float* out, const float* inp, const float* weight, int64_t N, int64_t IC,
                        int64_t OC, bool accumulate) {
  for (int64_t n = 0; n < N; n++) {
    for (int64_t o = 0; o < OC; o++) {
      double s = 0.0;
      for (int64_t i = 0; i < IC; i++) s += double(inp[n * IC + i]) * weight[o * IC + i];
      out[n * OC + o] = static_cast<float>(accumulate ? out[n * OC + o] + s : s);
    }
  }
}

void matmul_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp,
                         const float* weight, int64_t N, int64_t IC, int64_t OC) {
  for (int64_t n = 0; n < N; n++) {
    for (int64_t o = 0; o < OC; o++) {
      const float d = dout[n * OC + o];
      for (int64_t i = 0; i < IC; i++) {
        if (dinp != nullptr) dinp[n * IC + i] += d * weight[o * IC + i];
        dweight[o * IC + i] += d * inp[n * IC + i];
      }
    }
  }
}

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

// In-place stable softmax of p[0..n).
static void softmax_inplace(float* __restrict p, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; j++) mx = std::max(mx, p[j]);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) {
    p[j] = exp_approx(p[j] - mx);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

// Per-thread scratch that survives calls. A per-call std::vector of T*T floats (256 KB at
// T = 256) is above glibc's mmap threshold, so it would be mapped, page-faulted and unmapped on
// every call. Slot k of the calling thread holds at least n floats (contents unspecified).
static float* thread_scratch(int slot, size_t n) {
  thread_local std::vector<float> bufs[8];
  if (bufs[slot].size() < n) bufs[slot].resize(n);
  return bufs[slot].data();
}

// y[0..n) += sum_r a[r] * X[r][0..n) for r < 4, rows X[r] = x + r * ldx: four rank-1 updates per
// pass over y, so y is loaded and stored a quarter as often as with one axpy per row.
static inline void axpy4(float* __restrict y, const float* __restrict x, int64_t ldx,
                         const float* a, int64_t n) {
  const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
  const float* __restrict x0 = x;
  const float* __restrict x1 = x + ldx;
  const float* __restrict x2 = x + 2 * ldx;
  const float* __restrict x3 = x + 3 * ldx;
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j];
}

static inline void axpy1(float* __restrict y, const float* __restrict x, float a, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] += a * x[j];
}

// y[0..n) += sum_{r < m} a[r] * (x + r * ldx)[0..n)
static inline void gemv_t(float* __restrict y, const float* x, int64_t ldx, const float* a,
                          int64_t m, int64_t n) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) axpy4(y, x + r * ldx, ldx, a + r, n);
  for (; r < m; r++) axpy1(y, x + r * ldx, a[r], n);
}

void attention_forward(float* out, float* att, const float* qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV, int64_t D) {
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    float* kt = thread_scratch(0, D * T);  // K of one (b, kv head) block, transposed: (D, T)
    float* vb = thread_scratch(1, T * D);  // V of the block, contiguous (T, D)
    float* qs = thread_scratch(2, D);      // scaled query row
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        for (int64_t j = 0; j < T; j++) {
          const float* k = base + j * stride + (H + g) * D;
          const float* v = base + j * stride + (H + KV + g) * D;
          for (int64_t d = 0; d < D; d++) kt[d * T + j] = k[d];
          std::memcpy(vb + j * D, v, D * sizeof(float));
        }
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          for (int64_t i = 0; i < T; i++) {
            const float* q = base + i * stride + h * D;
            for (int64_t d = 0; d < D; d++) qs[d] = q[d] * scale;
            float* p = att + ((b * H + h) * T + i) * T;
            const int64_t n = i + 1;
            std::fill(p, p + T, 0.0f);
            gemv_t(p, kt, T, qs, D, n);  // p = K q (scaled), causal prefix
            softmax_inplace(p, n);
            float* o = out + (b * T + i) * H * D + h * D;
            std::fill(o, o + D, 0.0f);
            gemv_t(o, vb, D, p, n, D);  // o = V^T p
          }
        }
      }
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  // With P = softmax(S), S = scale * Q K^T (causal), O = P V:
  // dP = dO V^T, dV = P^T dO, dS = P * (dP - rowsum(P * dP)), dQ = scale dS K, dK = scale dS^T Q.
  // Heads of one KV group share dK and dV, so a block is (b, kv head) and owns its outputs.
  // dK_j = sum_{i >= j} dS[i, j] Q_i and dV_j = sum_{i >= j} P[i, j] dO_i read columns of dS
  // and P, so both are kept transposed (row j = column j) to make every inner loop contiguous.
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    float* vt = thread_scratch(0, D * T);   // V^T (D, T)
    float* kb = thread_scratch(1, T * D);   // K (T, D)
    float* qb = thread_scratch(2, T * D);   // this head's Q (T, D)
    float* dob = thread_scratch(3, T * D);  // this head's dO (T, D)
    float* dst = thread_scratch(4, T * T);  // dS^T (T, T)
    float* pt = thread_scratch(5, T * T);   // P^T (T, T)
    float* dk = thread_scratch(6, 2 * T * D);  // dK accumulator (T, D), then dV (T, D)
    float* dv = dk + T * D;
    float* ds = thread_scratch(7, T);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        float* dbase = dqkv + b * T * stride;
        for (int64_t j = 0; j < T; j++) {
          const float* v = base + j * stride + (H + KV + g) * D;
          std::memcpy(kb + j * D, base + j * stride + (H + g) * D, D * sizeof(float));
          for (int64_t d = 0; d < D; d++) vt[d * T + j] = v[d];
        }
        std::fill(dk, dk + 2 * T * D, 0.0f);  // dK and dV
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          for (int64_t i = 0; i < T; i++) {
            std::memcpy(qb + i * D, base + i * stride + h * D, D * sizeof(float));
            std::memcpy(dob + i * D, dout + (b * T + i) * H * D + h * D, D * sizeof(float));
          }
          for (int64_t i = 0; i < T; i++) {
            const int64_t n = i + 1;
            const float* p = att + ((b * H + h) * T + i) * T;
            std::fill(ds, ds + n, 0.0f);
            gemv_t(ds, vt, T, dob + i * D, D, n);  // dP_i = V dO_i
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t j = 0; j < n; j++) dot += p[j] * ds[j];
#pragma omp simd
            for (int64_t j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
            gemv_t(dbase + i * stride + h * D, kb, D, ds, n, D);  // dQ_i += dS_i K
            for (int64_t j = 0; j < n; j++) {
              dst[j * T + i] = ds[j];
              pt[j * T + i] = p[j];
            }
          }
          for (int64_t j = 0; j < T; j++) {
            gemv_t(dk + j * D, qb + j * D, D, dst + j * T + j, T - j, D);
            gemv_t(dv + j * D, dob + j * D, D, pt + j * T + j, T - j, D);
          }
        }
        for (int64_t j = 0; j < T; j++) {
          float* dkr = dbase + j * stride + (H + g) * D;
          float* dvr = dbase + j * stride + (H + KV + g) * D;
          for (int64_t d = 0; d < D; d++) {
            dkr[d] += dk[j * D + d];
            dvr[d] += dv[j * D + d];
          }
        }
      }
    }
  }
}

void attention_forward_ref(float* out, float* att, const float* qkv, int64_t B, int64_t T,
                           int64_t H, int64_t KV, int64_t D) {
  const int64_t stride = (H + 2 * KV) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < H; h++) {
      const int64_t g = h / (H / KV);
      for (int64_t i = 0; i < T; i++) {
        const float* q = qkv + (b * T + i) * stride + h * D;
        float* p = att + ((b * H + h) * T + i) * T;
        double mx = -1e300;
        std::vector<double> s(i + 1);
        for (int64_t j = 0; j <= i; j++) {
          const float* k = qkv + (b * T + j) * stride + (H + g) * D;
          double acc = 0.0;
          for (int64_t d = 0; d < D; d++) acc += double(q[d]) * k[d];
          s[j] = acc * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= i; j++) sum += std::exp(s[j] - mx);
        for (int64_t j = 0; j < T; j++) {
          p[j] = j <= i ? static_cast<float>(std::exp(s[j] - mx) / sum) : 0.0f;
        }
        float* o = out + (b * T + i) * H * D + h * D;
        for (int64_t d = 0; d < D; d++) {
          double acc = 0.0;
          for (int64_t j = 0; j <= i; j++) {
            acc += double(p[j]) * qkv[(b * T + j) * stride + (H + KV + g) * D + d];
          }
          o[d] = static_cast<float>(acc);
        }
      }
    }
  }
}

void attention_backward_ref(float* dqkv, const float* dout, const float* qkv, const float* att,
                            int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  const int64_t stride = (H + 2 * KV) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < H; h++) {
      const int64_t g = h / (H / KV);
      for (int64_t i = 0; i < T; i++) {
        const float* p = att + ((b * H + h) * T + i) * T;
        const float* dO = dout + (b * T + i) * H * D + h * D;
        std::vector<double> dp(i + 1);
        double dot = 0.0;
        for (int64_t j = 0; j <= i; j++) {
          const float* v = qkv + (b * T + j) * stride + (H + KV + g) * D;
          double acc = 0.0;
          for (int64_t d = 0; d < D; d++) acc += double(dO[d]) * v[d];
          dp[j] = acc;
          dot += p[j] * acc;
        }
        for (int64_t j = 0; j <= i; j++) {
          const double dsj = p[j] * (dp[j] - dot) * scale;
          for (int64_t d = 0; d < D; d++) {
            dqkv[(b * T + i) * stride + h * D + d] +=
                static_cast<float>(dsj * qkv[(b * T + j) * stride + (H + g) * D + d]);
            dqkv[(b * T + j) * stride + (H + g) * D + d] +=
                static_cast<float>(dsj * qkv[(b * T + i) * stride + h * D + d]);
            dqkv[(b * T + j) * stride + (H + KV + g) * D + d] += p[j] * dO[d];
          }
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

// ---- SwiGLU -----------------------------------------------------------------------------------

void swiglu_forward(float* out, const float* gateup, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* g = gateup + n * 2 * F;
    const float* u = g + F;
    float* o = out + n * F;
#pragma omp simd
    for (int64_t f = 0; f < F; f++) o[f] = g[f] / (1.0f + exp_approx(-g[f])) * u[f];
  }
}

void swiglu_backward(float* dgateup, const float* dout, const float* gateup, int64_t N, int64_t F) {
  // d/dg [g sigma(g)] = sigma(g) (1 + g (1 - sigma(g))).
#pragma omp parallel for schedule(static) if (N * F >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* g = gateup + n * 2 * F;
    const float* u = g + F;
    const float* dy = dout + n * F;
    float* dg = dgateup + n * 2 * F;
    float* du = dg + F;
#pragma omp simd
    for (int64_t f = 0; f < F; f++) {
      const float sg = 1.0f / (1.0f + exp_approx(-g[f]));
      dg[f] += dy[f] * u[f] * sg * (1.0f + g[f] * (1.0f - sg));
      du[f] += dy[f] * g[f] * sg;
    }
  }
}

// ---- cross-entropy ----------------------------------------------------------------------------

void crossentropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                          int64_t N, int64_t V) {
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* l = logits + n * V;
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, l[v]);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; v++) sum += exp_approx(l[v] - mx);
    lse[n] = mx + std::log(sum);
    losses[n] = targets[n] >= 0 ? lse[n] - l[targets[n]] : 0.0f;
  }
}

void crossentropy_backward_inplace(float* logits_to_dlogits, const float* lse,
                                   const int32_t* targets, int64_t N, int64_t V, float dloss) {
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float* l = logits_to_dlogits + n * V;
    if (targets[n] < 0) {
      std::fill(l, l + V, 0.0f);
      continue;
    }
    const float m = lse[n];
#pragma omp simd
    for (int64_t v = 0; v < V; v++) l[v] = exp_approx(l[v] - m) * dloss;
    l[targets[n]] -= dloss;
  }
}

// ---- MoE router -------------------------------------------------------------------------------

void moe_route(float* probs, int32_t* topk_idx, float* gates, const float* router_logits,
               int64_t N, int64_t E, int64_t k, bool norm_topk) {
#pragma omp parallel for schedule(static) if (N * E >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float* p = probs + n * E;
    std::memcpy(p, router_logits + n * E, E * sizeof(float));
    softmax_inplace(p, E);
    int32_t* idx = topk_idx + n * k;
    float* gt = gates + n * k;
    float total = 0.0f;
    for (int64_t s = 0; s < k; s++) {
      int32_t best = -1;
      for (int64_t e = 0; e < E; e++) {
        bool taken = false;
        for (int64_t r = 0; r < s; r++) taken |= idx[r] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = static_cast<int32_t>(e);
      }
      idx[s] = best;
      gt[s] = p[best];
      total += p[best];
    }
    if (norm_topk) {
      for (int64_t s = 0; s < k; s++) gt[s] /= total;
    }
  }
}

}  // namespace engram::model
