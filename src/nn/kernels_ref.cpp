// Reference versions of the Engram layer kernels (nn/kernels.h): plain single-threaded
// loops that read like the math. Not for speed; the fast kernels in kernels.cpp are tested
// against these. Accumulations of a dot product use double so that the reference is the
// more accurate side of every comparison.
#include <cmath>
#include <cstring>
#include <map>

#include "nn/kernels.h"

namespace engram::nn {

void embedding_gather_ref(float* e, const float* table, const int64_t* row_ids, int64_t N,
                          int64_t cols, int64_t width) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < cols; c++) {
      const float* row = table + row_ids[n * cols + c] * width;
      float* dst = e + (n * cols + c) * width;
      for (int64_t k = 0; k < width; k++) dst[k] = row[k];
    }
}

void embedding_backward_sparse_ref(RowGrads& out, const float* de, const int64_t* row_ids,
                                   int64_t N, int64_t cols, int64_t width) {
  std::map<int64_t, std::vector<float>> sums;
  for (int64_t i = 0; i < N * cols; i++) {
    auto& g = sums[row_ids[i]];
    g.resize(width, 0.0f);
    for (int64_t k = 0; k < width; k++) g[k] += de[i * width + k];
  }
  out.width = width;
  out.rows.clear();
  out.grads.clear();
  for (const auto& [row, g] : sums) {
    out.rows.push_back(row);
    out.grads.insert(out.grads.end(), g.begin(), g.end());
  }
}

void embedding_backward_dense(float* dtable, const float* de, const int64_t* row_ids, int64_t N,
                              int64_t cols, int64_t width) {
  for (int64_t i = 0; i < N * cols; i++) {
    float* dst = dtable + row_ids[i] * width;
    for (int64_t k = 0; k < width; k++) dst[k] += de[i * width + k];
  }
}

void row_grads_add_to_dense(float* dtable, const RowGrads& g) {
  for (size_t r = 0; r < g.rows.size(); r++) {
    float* dst = dtable + g.rows[r] * g.width;
    const float* src = g.grads.data() + r * g.width;
    for (int64_t k = 0; k < g.width; k++) dst[k] += src[k];
  }
}

void linear_forward_ref(float* out, const float* inp, const float* weight, const float* bias,
                        int64_t N, int64_t C, int64_t OC) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < OC; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t c = 0; c < C; c++) acc += double(inp[n * C + c]) * weight[o * C + c];
      out[n * OC + o] = static_cast<float>(acc);
    }
}

void linear_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int64_t N, int64_t C, int64_t OC) {
  if (dinp)
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++) {
        double acc = 0.0;
        for (int64_t o = 0; o < OC; o++) acc += double(dout[n * OC + o]) * weight[o * C + c];
        dinp[n * C + c] += static_cast<float>(acc);
      }
  if (dweight)
    for (int64_t o = 0; o < OC; o++)
      for (int64_t c = 0; c < C; c++) {
        double acc = 0.0;
        for (int64_t n = 0; n < N; n++) acc += double(dout[n * OC + o]) * inp[n * C + c];
        dweight[o * C + c] += static_cast<float>(acc);
      }
  if (dbias)
    for (int64_t o = 0; o < OC; o++) {
      double acc = 0.0;
      for (int64_t n = 0; n < N; n++) acc += dout[n * OC + o];
      dbias[o] += static_cast<float>(acc);
    }
}

void rmsnorm_forward_ref(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx,
                         const float* weight, int64_t N, int64_t C, float eps) {
  for (int64_t n = 0; n < N; n++) {
    const float* xr = x + n * ldx;
    double ss = 0.0;
    for (int64_t j = 0; j < C; j++) ss += double(xr[j]) * xr[j];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / C + eps));
    rstd[n] = r;
    for (int64_t j = 0; j < C; j++) out[n * ldo + j] = xr[j] * r * weight[j];
  }
}

void rmsnorm_backward_ref(float* dx, int64_t lddx, float* dweight, const float* dout, int64_t lddo,
                          const float* x, int64_t ldx, const float* weight, const float* rstd,
                          int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; n++) {
    const float* xr = x + n * ldx;
    const float* dr = dout + n * lddo;
    const double r = rstd[n];
    // y_j = x_j r w_j, r = (mean x^2 + eps)^-1/2, dr/dx_j = -r^3 x_j / C
    double dot = 0.0;  // sum_j dout_j w_j x_j
    for (int64_t j = 0; j < C; j++) dot += double(dr[j]) * weight[j] * xr[j];
    if (dx)
      for (int64_t j = 0; j < C; j++)
        dx[n * lddx + j] += static_cast<float>(r * dr[j] * weight[j] - r * r * r * xr[j] * dot / C);
    if (dweight)
      for (int64_t j = 0; j < C; j++) dweight[j] += static_cast<float>(dr[j] * xr[j] * r);
  }
}

static float signed_sqrt(float s, GateSign sign) {
  const float mag = std::sqrt(std::max(std::fabs(s), kGateClamp));
  if (sign == GateSign::copysign) return std::copysign(mag, s);
  return s > 0.0f ? mag : (s < 0.0f ? -mag : 0.0f);
}

void gate_forward_ref(float* gate, float* score, int64_t ldg, const float* k, int64_t ldk,
                      const float* q, int64_t ldq, int64_t N, int64_t C, GateSign sign) {
  for (int64_t n = 0; n < N; n++) {
    double dot = 0.0;
    for (int64_t j = 0; j < C; j++) dot += double(k[n * ldk + j]) * q[n * ldq + j];
    const float s = static_cast<float>(dot / std::sqrt(double(C)));
    score[n * ldg] = s;
    gate[n * ldg] = 1.0f / (1.0f + std::exp(-signed_sqrt(s, sign)));
  }
}

// d gate / d score: sigmoid' * d signed_sqrt / d s; the clamp passes no gradient below 1e-6.
static float gate_dscore(float dgate, float score, float gate, int64_t C) {
  const float a = std::fabs(score);
  if (a < kGateClamp) return 0.0f;
  return dgate * gate * (1.0f - gate) * 0.5f / std::sqrt(a) / std::sqrt(float(C));
}

void gate_backward_ref(float* dk, int64_t lddk, float* dq, int64_t lddq, const float* dgate,
                       const float* score, const float* gate, int64_t ldg, const float* k,
                       int64_t ldk, const float* q, int64_t ldq, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; n++) {
    const float ds = gate_dscore(dgate[n * ldg], score[n * ldg], gate[n * ldg], C);
    for (int64_t j = 0; j < C; j++) {
      if (dk) dk[n * lddk + j] += ds * q[n * ldq + j];
      if (dq) dq[n * lddq + j] += ds * k[n * ldk + j];
    }
  }
}

void causal_conv_forward_ref(float* y, const float* x, const float* weight, int64_t B, int64_t T,
                             int64_t C, int64_t K, int64_t dil) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) {
        double acc = 0.0;
        for (int64_t i = 0; i < K; i++) {
          const int64_t ts = t - (K - 1 - i) * dil;
          if (ts >= 0) acc += double(weight[c * K + i]) * x[(b * T + ts) * C + c];
        }
        y[(b * T + t) * C + c] = static_cast<float>(acc);
      }
}

void causal_conv_backward_ref(float* dx, float* dweight, const float* dy, const float* x,
                              const float* weight, int64_t B, int64_t T, int64_t C, int64_t K,
                              int64_t dil) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) {
        const float g = dy[(b * T + t) * C + c];
        for (int64_t i = 0; i < K; i++) {
          const int64_t ts = t - (K - 1 - i) * dil;
          if (ts < 0) continue;
          if (dx) dx[(b * T + ts) * C + c] += weight[c * K + i] * g;
          if (dweight) dweight[c * K + i] += x[(b * T + ts) * C + c] * g;
        }
      }
}

}  // namespace engram::nn
