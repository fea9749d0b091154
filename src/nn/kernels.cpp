// Fast versions of the kernels of nn/kernels.h: projections through OpenBLAS SGEMM, everything
// else as OpenMP loops over token positions with contiguous inner loops.
// Each function here has a `_ref` twin in kernels_ref.cpp that the tests compare against.
// fp32 data; the per-row reductions (sums of squares, gate dot products) accumulate in double:
// the gate's signed square root has slope 1/(2 sqrt|s|), so near s = 0 it amplifies any rounding
// in s, and double sums keep the gate at least as accurate as PyTorch's fp32 reductions.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "nn/kernels.h"
#include "nn/softmax.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace engram::nn {
namespace {
// Below this many inner-loop elements a kernel runs on the calling thread: waking a team costs
// more than the work, and on a loaded machine spinning threads cost far more.
[[maybe_unused]] constexpr int64_t kParallelMin = int64_t{1} << 15;
int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
}  // namespace

void embedding_gather(float* e, const float* table, const int64_t* row_ids, int64_t N, int64_t cols,
                      int64_t width) {
#pragma omp parallel for schedule(static) if (N * cols * width >= kParallelMin)
  for (int64_t i = 0; i < N * cols; i++)
    std::memcpy(e + i * width, table + row_ids[i] * width, sizeof(float) * width);
}

void embedding_backward_sparse(RowGrads& out, const float* de, const int64_t* row_ids, int64_t N,
                               int64_t cols, int64_t width) {
  // Sort the reads by row id (stable, so sums run in read order), then one output row per run.
  const int64_t reads = N * cols;
  std::vector<int64_t> order(reads);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return row_ids[a] < row_ids[b]; });
  std::vector<int64_t> starts;  // first index into order of each distinct row
  for (int64_t i = 0; i < reads; i++)
    if (i == 0 || row_ids[order[i]] != row_ids[order[i - 1]]) starts.push_back(i);
  const int64_t unique = static_cast<int64_t>(starts.size());
  starts.push_back(reads);
  out.width = width;
  out.rows.resize(unique);
  out.grads.assign(unique * width, 0.0f);
#pragma omp parallel for schedule(static) if (reads * width >= kParallelMin)
  for (int64_t u = 0; u < unique; u++) {
    out.rows[u] = row_ids[order[starts[u]]];
    float* dst = out.grads.data() + u * width;
    for (int64_t i = starts[u]; i < starts[u + 1]; i++) {
      const float* src = de + order[i] * width;
#pragma omp simd
      for (int64_t k = 0; k < width; k++) dst[k] += src[k];
    }
  }
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N,
                    int64_t C, int64_t OC, bool accumulate) {
  if (N == 0 || OC == 0) return;
  if (bias) {
#pragma omp parallel for schedule(static) if (N * OC >= kParallelMin)
    for (int64_t n = 0; n < N; n++) {
      float* o = out + n * OC;
      if (accumulate) {
        for (int64_t j = 0; j < OC; j++) o[j] += bias[j];
      } else {
        std::memcpy(o, bias, sizeof(float) * OC);
      }
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
              bias || accumulate ? 1.0f : 0.0f, out, OC);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC) {
  if (N == 0) return;
  if (dinp)  // [N, C] += [N, OC] @ [OC, C]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
  if (dweight)  // [OC, C] += [N, OC]^T @ [N, C]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, C);
  if (dbias) {  // [OC] += [N, OC]^T @ ones[N]
    std::vector<float> ones(N, 1.0f);
    cblas_sgemv(CblasRowMajor, CblasTrans, N, OC, 1.0f, dout, OC, ones.data(), 1, 1.0f, dbias, 1);
  }
}

void rmsnorm_forward(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx,
                     const float* weight, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = x + n * ldx;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < C; j++) ss += double(xr[j]) * xr[j];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(C) + eps));
    rstd[n] = r;
    float* o = out + n * ldo;
#pragma omp simd
    for (int64_t j = 0; j < C; j++) o[j] = xr[j] * r * weight[j];
  }
}

void rmsnorm_backward(float* dx, int64_t lddx, float* dweight, const float* dout, int64_t lddo,
                      const float* x, int64_t ldx, const float* weight, const float* rstd,
                      int64_t N, int64_t C) {
  if (dx) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
    for (int64_t n = 0; n < N; n++) {
      const float* xr = x + n * ldx;
      const float* dr = dout + n * lddo;
      const float r = rstd[n];
      double dot = 0.0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < C; j++) dot += double(dr[j] * weight[j]) * xr[j];
      const float coef = static_cast<float>(double(r) * r * r * dot / static_cast<double>(C));
      float* d = dx + n * lddx;
#pragma omp simd
      for (int64_t j = 0; j < C; j++) d[j] += r * dr[j] * weight[j] - coef * xr[j];
    }
  }
  if (dweight) {
    // Per-thread partial sums over rows, then one reduction: no atomics on the hot path.
    const int nt = max_threads();
    std::vector<float> partial(static_cast<size_t>(nt) * C, 0.0f);
#pragma omp parallel if (N * C >= kParallelMin)
    {
      float* acc = partial.data() + static_cast<size_t>(thread_id()) * C;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; n++) {
        const float* xr = x + n * ldx;
        const float* dr = dout + n * lddo;
        const float r = rstd[n];
#pragma omp simd
        for (int64_t j = 0; j < C; j++) acc[j] += dr[j] * xr[j] * r;
      }
    }
    for (int t = 0; t < nt; t++)
      for (int64_t j = 0; j < C; j++) dweight[j] += partial[static_cast<size_t>(t) * C + j];
  }
}

void gate_forward(float* gate, float* score, int64_t ldg, const float* k, int64_t ldk,
                  const float* q, int64_t ldq, int64_t N, int64_t C, GateSign sign) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* kr = k + n * ldk;
    const float* qr = q + n * ldq;
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < C; j++) dot += double(kr[j]) * qr[j];
    const float s = static_cast<float>(dot / std::sqrt(static_cast<double>(C)));
    const float mag = std::sqrt(std::max(std::fabs(s), kGateClamp));
    float signed_mag;
    if (sign == GateSign::copysign)
      signed_mag = std::copysign(mag, s);
    else
      signed_mag = s > 0.0f ? mag : (s < 0.0f ? -mag : 0.0f);
    score[n * ldg] = s;
    gate[n * ldg] = 1.0f / (1.0f + std::exp(-signed_mag));
  }
}

void gate_backward(float* dk, int64_t lddk, float* dq, int64_t lddq, const float* dgate,
                   const float* score, const float* gate, int64_t ldg, const float* k, int64_t ldk,
                   const float* q, int64_t ldq, int64_t N, int64_t C) {
  const float inv_sqrt_c = 1.0f / std::sqrt(static_cast<float>(C));
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float a = std::fabs(score[n * ldg]);
    if (a < kGateClamp) continue;  // clamp_min passes no gradient
    const float g = gate[n * ldg];
    const float ds = dgate[n * ldg] * g * (1.0f - g) * 0.5f / std::sqrt(a) * inv_sqrt_c;
    if (dk) {
      float* d = dk + n * lddk;
      const float* qr = q + n * ldq;
#pragma omp simd
      for (int64_t j = 0; j < C; j++) d[j] += ds * qr[j];
    }
    if (dq) {
      float* d = dq + n * lddq;
      const float* kr = k + n * ldk;
#pragma omp simd
      for (int64_t j = 0; j < C; j++) d[j] += ds * kr[j];
    }
  }
}

void gated_value_forward(float* v, const float* gate, const float* value, int64_t ldval, int64_t N,
                         int64_t H, int64_t C) {
#pragma omp parallel for schedule(static) if (N * H * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++)
    for (int64_t b = 0; b < H; b++) {
      const float g = gate[n * H + b];
      const float* src = value + n * ldval;
      float* dst = v + (n * H + b) * C;
#pragma omp simd
      for (int64_t j = 0; j < C; j++) dst[j] = g * src[j];
    }
}

void gated_value_backward(float* dgate, float* dvalue, int64_t lddval, const float* dv,
                          const float* gate, const float* value, int64_t ldval, int64_t N,
                          int64_t H, int64_t C) {
#pragma omp parallel for schedule(static) if (N * H * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* val = value + n * ldval;
    for (int64_t b = 0; b < H; b++) {
      const float* d = dv + (n * H + b) * C;
      if (dgate) {
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < C; j++) dot += double(d[j]) * val[j];
        dgate[n * H + b] += static_cast<float>(dot);
      }
      if (dvalue) {
        const float g = gate[n * H + b];
        float* dst = dvalue + n * lddval;
#pragma omp simd
        for (int64_t j = 0; j < C; j++) dst[j] += g * d[j];
      }
    }
  }
}

void causal_conv_forward(float* y, const float* x, const float* weight, int64_t B, int64_t T,
                         int64_t C, int64_t K, int64_t dil) {
#pragma omp parallel for collapse(2) schedule(static) if (B * T * C * K >= kParallelMin)
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      float* yr = y + (b * T + t) * C;
      std::fill(yr, yr + C, 0.0f);
      for (int64_t i = 0; i < K; i++) {
        const int64_t ts = t - (K - 1 - i) * dil;
        if (ts < 0) continue;
        const float* xr = x + (b * T + ts) * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yr[c] += weight[c * K + i] * xr[c];
      }
    }
}

void causal_conv_backward(float* dx, float* dweight, const float* dy, const float* x,
                          const float* weight, int64_t B, int64_t T, int64_t C, int64_t K,
                          int64_t dil) {
  if (dx) {
    // Written as a gather over the outputs each input fed, so positions never collide.
#pragma omp parallel for collapse(2) schedule(static) if (B * T * C * K >= kParallelMin)
    for (int64_t b = 0; b < B; b++)
      for (int64_t ts = 0; ts < T; ts++) {
        float* dxr = dx + (b * T + ts) * C;
        for (int64_t i = 0; i < K; i++) {
          const int64_t t = ts + (K - 1 - i) * dil;
          if (t >= T) continue;
          const float* dyr = dy + (b * T + t) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; c++) dxr[c] += weight[c * K + i] * dyr[c];
        }
      }
  }
  if (dweight) {
    // Per-thread partial [K, C] (tap-major so the inner loop is contiguous), then reduce.
    const int nt = max_threads();
    std::vector<float> partial(static_cast<size_t>(nt) * K * C, 0.0f);
#pragma omp parallel if (B * T * C * K >= kParallelMin)
    {
      float* acc = partial.data() + static_cast<size_t>(thread_id()) * K * C;
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
          const float* dyr = dy + (b * T + t) * C;
          for (int64_t i = 0; i < K; i++) {
            const int64_t ts = t - (K - 1 - i) * dil;
            if (ts < 0) continue;
            const float* xr = x + (b * T + ts) * C;
            float* a = acc + i * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) a[c] += dyr[c] * xr[c];
          }
        }
    }
    for (int t = 0; t < nt; t++)
      for (int64_t i = 0; i < K; i++)
        for (int64_t c = 0; c < C; c++)
          dweight[c * K + i] += partial[(static_cast<size_t>(t) * K + i) * C + c];
  }
}

void causal_conv_decode_step(float* y, float* state, const float* x_new, const float* weight,
                             int64_t B, int64_t C, int64_t K, int64_t dil) {
  const int64_t S = (K - 1) * dil;  // state rows per sequence
  for (int64_t b = 0; b < B; b++) {
    float* st = state + b * S * C;
    const float* xn = x_new + b * C;
    float* yr = y + b * C;
    // Tap i reads the input (K-1-i)*dil steps back: state row S - (K-1-i)*dil, or x_new.
    for (int64_t c = 0; c < C; c++) yr[c] = weight[c * K + K - 1] * xn[c];
    for (int64_t i = 0; i + 1 < K; i++) {
      const float* xr = st + (S - (K - 1 - i) * dil) * C;
      for (int64_t c = 0; c < C; c++) yr[c] += weight[c * K + i] * xr[c];
    }
    if (S > 0) {
      std::memmove(st, st + C, sizeof(float) * (S - 1) * C);
      std::memcpy(st + (S - 1) * C, xn, sizeof(float) * C);
    }
  }
}

void causal_conv_state_from_prefix(float* state, const float* x, int64_t B, int64_t T, int64_t C,
                                   int64_t K, int64_t dil) {
  const int64_t S = (K - 1) * dil;
  for (int64_t b = 0; b < B; b++)
    for (int64_t s = 0; s < S; s++) {
      const int64_t t = T - S + s;  // state row s holds position T - S + s
      float* dst = state + (b * S + s) * C;
      if (t < 0)
        std::fill(dst, dst + C, 0.0f);
      else
        std::memcpy(dst, x + (b * T + t) * C, sizeof(float) * C);
    }
}

void residual_silu_forward(float* out, const float* res, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = res[i] + y[i] / (1.0f + std::exp(-y[i]));
}

void silu_backward(float* dy, const float* dout, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + std::exp(-y[i]));
    dy[i] += dout[i] * s * (1.0f + y[i] * (1.0f - s));
  }
}

// ---- The transformer's token embedding, SwiGLU and loss ------------------------------------

// Their loops are per row (or per element) with no reduction across rows, so the threshold only
// decides speed; these fork at half the layer kernels' threshold, as they were tuned.
[[maybe_unused]] constexpr int64_t kRowParallelMin = int64_t{1} << 14;

// ---- token embedding --------------------------------------------------------------------------

void embedding_forward(float* out, const int32_t* ids, const float* wte, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kRowParallelMin)
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

// ---- SwiGLU -----------------------------------------------------------------------------------

void swiglu_forward(float* out, const float* gateup, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F >= kRowParallelMin)
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
#pragma omp parallel for schedule(static) if (N * F >= kRowParallelMin)
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
#pragma omp parallel for schedule(static) if (N * V >= kRowParallelMin)
  for (int64_t n = 0; n < N; n++) {
    // One pass over the row from memory: per chunk of 1024 logits (4 KB, still in L1 for its
    // second read) its max, the running sum rescaled to a new max, then the chunk's exp sum.
    // The max is a plain compare-select: std::max in an omp simd reduction does not vectorize.
    const float* l = logits + n * V;
    float mx = -std::numeric_limits<float>::infinity();
    float sum = 0.0f;
    for (int64_t v0 = 0; v0 < V; v0 += 1024) {
      const float* c = l + v0;
      const int64_t len = std::min<int64_t>(1024, V - v0);
      float cm = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : cm)
      for (int64_t v = 0; v < len; v++) cm = c[v] > cm ? c[v] : cm;
      if (cm > mx) {
        sum = v0 == 0 ? 0.0f : sum * std::exp(mx - cm);
        mx = cm;
      }
      float cs = 0.0f;
#pragma omp simd reduction(+ : cs)
      for (int64_t v = 0; v < len; v++) cs += exp_approx(c[v] - mx);
      sum += cs;
    }
    lse[n] = mx + std::log(sum);
    losses[n] = targets[n] >= 0 ? lse[n] - l[targets[n]] : 0.0f;
  }
}

void crossentropy_backward_inplace(float* logits_to_dlogits, const float* lse,
                                   const int32_t* targets, int64_t N, int64_t V, float dloss) {
#pragma omp parallel for schedule(static) if (N * V >= kRowParallelMin)
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

}  // namespace engram::nn
