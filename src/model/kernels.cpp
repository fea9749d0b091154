// Transformer layer kernels for CPU training: see kernels.h for the contract of each function.
// Fast versions use OpenBLAS (GEMM) and OpenMP (rows, attention blocks); reference versions are
// plain loops kept for the tests. Every parallel loop writes disjoint outputs and every reduction
// runs in a fixed order, so results do not depend on thread timing.
#include "model/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace engram::model {

// ---- token embedding --------------------------------------------------------------------------

void embedding_forward(float* out, const int32_t* ids, const float* wte, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static)
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

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    rstd[n] = r;
    float* o = out + n * C;
    for (int64_t c = 0; c < C; c++) o[c] = x[c] * r * weight[c];
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C) {
  // y = x r w with r = (mean(x^2) + eps)^(-1/2):
  // dx = r (dy w) - r^3 / C * x * sum(dy w x);  dw = sum_n dy x r.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    const float* dy = dout + n * C;
    const float r = rstd[n];
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c];
    const float k = r * r * r * dot / static_cast<float>(C);
    float* dx = dinp + n * C;
    for (int64_t c = 0; c < C; c++) dx[c] += r * dy[c] * weight[c] - k * x[c];
  }
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    const float* dy = dout + n * C;
    const float r = rstd[n];
    for (int64_t c = 0; c < C; c++) dweight[c] += dy[c] * x[c] * r;
  }
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
#pragma omp parallel for schedule(static)
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
static void softmax_inplace(float* p, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; j++) mx = std::max(mx, p[j]);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; j++) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

void attention_forward(float* out, float* att, const float* qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV, int64_t D) {
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> kt(D * T);  // K of one (b, kv head) block, transposed: (D, T)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        for (int64_t j = 0; j < T; j++) {
          const float* k = base + j * stride + (H + g) * D;
          for (int64_t d = 0; d < D; d++) kt[d * T + j] = k[d];
        }
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          for (int64_t i = 0; i < T; i++) {
            const float* q = base + i * stride + h * D;
            float* p = att + ((b * H + h) * T + i) * T;
            const int64_t n = i + 1;
            std::fill(p, p + T, 0.0f);
            for (int64_t d = 0; d < D; d++) {
              const float qd = q[d] * scale;
              const float* kr = kt.data() + d * T;
              for (int64_t j = 0; j < n; j++) p[j] += qd * kr[j];
            }
            softmax_inplace(p, n);
            float* o = out + (b * T + i) * H * D + h * D;
            std::fill(o, o + D, 0.0f);
            for (int64_t j = 0; j < n; j++) {
              const float pj = p[j];
              const float* v = base + j * stride + (H + KV + g) * D;
              for (int64_t d = 0; d < D; d++) o[d] += pj * v[d];
            }
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
  const int64_t stride = (H + 2 * KV) * D;
  const int64_t group = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> vt(D * T);  // V transposed (D, T)
    std::vector<float> dk(T * D), dv(T * D), ds(T);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++) {
      for (int64_t g = 0; g < KV; g++) {
        const float* base = qkv + b * T * stride;
        float* dbase = dqkv + b * T * stride;
        for (int64_t j = 0; j < T; j++) {
          const float* v = base + j * stride + (H + KV + g) * D;
          for (int64_t d = 0; d < D; d++) vt[d * T + j] = v[d];
        }
        std::fill(dk.begin(), dk.end(), 0.0f);
        std::fill(dv.begin(), dv.end(), 0.0f);
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          for (int64_t i = 0; i < T; i++) {
            const int64_t n = i + 1;
            const float* p = att + ((b * H + h) * T + i) * T;
            const float* dO = dout + (b * T + i) * H * D + h * D;
            const float* q = base + i * stride + h * D;
            float* dq = dbase + i * stride + h * D;
            // dP row into ds
            std::fill(ds.begin(), ds.begin() + n, 0.0f);
            for (int64_t d = 0; d < D; d++) {
              const float od = dO[d];
              const float* vr = vt.data() + d * T;
              for (int64_t j = 0; j < n; j++) ds[j] += od * vr[j];
            }
            float dot = 0.0f;
            for (int64_t j = 0; j < n; j++) dot += p[j] * ds[j];
            for (int64_t j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
            for (int64_t j = 0; j < n; j++) {
              const float* k = base + j * stride + (H + g) * D;
              const float dsj = ds[j], pj = p[j];
              float* dkj = dk.data() + j * D;
              float* dvj = dv.data() + j * D;
              for (int64_t d = 0; d < D; d++) {
                dq[d] += dsj * k[d];
                dkj[d] += dsj * q[d];
                dvj[d] += pj * dO[d];
              }
            }
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
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float* g = gateup + n * 2 * F;
    const float* u = g + F;
    float* o = out + n * F;
    for (int64_t f = 0; f < F; f++) o[f] = g[f] / (1.0f + std::exp(-g[f])) * u[f];
  }
}

void swiglu_backward(float* dgateup, const float* dout, const float* gateup, int64_t N, int64_t F) {
  // d/dg [g sigma(g)] = sigma(g) (1 + g (1 - sigma(g))).
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float* g = gateup + n * 2 * F;
    const float* u = g + F;
    const float* dy = dout + n * F;
    float* dg = dgateup + n * 2 * F;
    float* du = dg + F;
    for (int64_t f = 0; f < F; f++) {
      const float sg = 1.0f / (1.0f + std::exp(-g[f]));
      dg[f] += dy[f] * u[f] * sg * (1.0f + g[f] * (1.0f - sg));
      du[f] += dy[f] * g[f] * sg;
    }
  }
}

// ---- cross-entropy ----------------------------------------------------------------------------

void crossentropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                          int64_t N, int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    const float* l = logits + n * V;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, l[v]);
    float sum = 0.0f;
    for (int64_t v = 0; v < V; v++) sum += std::exp(l[v] - mx);
    lse[n] = mx + std::log(sum);
    losses[n] = targets[n] >= 0 ? lse[n] - l[targets[n]] : 0.0f;
  }
}

void crossentropy_backward_inplace(float* logits_to_dlogits, const float* lse,
                                   const int32_t* targets, int64_t N, int64_t V, float dloss) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) {
    float* l = logits_to_dlogits + n * V;
    if (targets[n] < 0) {
      std::fill(l, l + V, 0.0f);
      continue;
    }
    const float m = lse[n];
    for (int64_t v = 0; v < V; v++) l[v] = std::exp(l[v] - m) * dloss;
    l[targets[n]] -= dloss;
  }
}

// ---- MoE router -------------------------------------------------------------------------------

void moe_route(float* probs, int32_t* topk_idx, float* gates, const float* router_logits,
               int64_t N, int64_t E, int64_t k, bool norm_topk) {
#pragma omp parallel for schedule(static)
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
