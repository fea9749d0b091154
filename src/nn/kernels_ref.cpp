// Reference versions of the kernels (nn/kernels_ref.h): plain single-threaded
// loops that read like the math. Not for speed; the fast kernels in kernels.cpp are tested
// against these. Accumulations of a dot product use double so that the reference is the
// more accurate side of every comparison.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "nn/kernels_ref.h"

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
                        int64_t N, int64_t C, int64_t OC, bool accumulate) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < OC; o++) {
      double acc = bias ? bias[o] : 0.0;
      if (accumulate) acc += out[n * OC + o];
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

// ---- mixture of experts ----------------------------------------------------------------------

void moe_route_forward_ref(float* probs, int32_t* topk_idx, float* gates, const float* logits,
                           int64_t N, int64_t E, int64_t k, bool norm_topk) {
  for (int64_t n = 0; n < N; n++) {
    const float* z = logits + n * E;
    double mx = z[0], sum = 0.0;
    for (int64_t e = 1; e < E; e++) mx = std::max(mx, double(z[e]));
    for (int64_t e = 0; e < E; e++) sum += std::exp(double(z[e]) - mx);
    for (int64_t e = 0; e < E; e++) probs[n * E + e] = float(std::exp(double(z[e]) - mx) / sum);
    // Rank of expert e: how many beat it (higher probability, or equal with a lower id).
    double total = 0.0;
    for (int64_t e = 0; e < E; e++) {
      int64_t rank = 0;
      for (int64_t r = 0; r < E; r++) {
        const float pr = probs[n * E + r], pe = probs[n * E + e];
        rank += pr > pe || (pr == pe && r < e);
      }
      if (rank < k) {
        topk_idx[n * k + rank] = static_cast<int32_t>(e);
        total += probs[n * E + e];
      }
    }
    for (int64_t s = 0; s < k; s++) {
      const double p = probs[n * E + topk_idx[n * k + s]];
      gates[n * k + s] = float(norm_topk ? p / total : p);
    }
  }
}

void moe_route_backward_ref(float* dlogits, const float* dgates, const float* dprobs,
                            const float* probs, const int32_t* topk_idx, const float* gates,
                            int64_t N, int64_t E, int64_t k, bool norm_topk) {
  std::vector<double> dp(E);
  for (int64_t n = 0; n < N; n++) {
    const float* p = probs + n * E;
    const int32_t* idx = topk_idx + n * k;
    for (int64_t e = 0; e < E; e++) dp[e] = dprobs != nullptr ? dprobs[n * E + e] : 0.0;
    double S = 0.0;
    for (int64_t s = 0; s < k; s++) S += p[idx[s]];
    // d gate_s / d p_idx[r]: delta_sr without renormalization; (delta_sr - gate_s) / S with it.
    for (int64_t r = 0; r < k; r++) {
      for (int64_t s = 0; s < k; s++) {
        const double jac = norm_topk ? ((s == r) - double(gates[n * k + s])) / S : double(s == r);
        dp[idx[r]] += double(dgates[n * k + s]) * jac;
      }
    }
    // d p_e / d z_j = p_e (delta_ej - p_j)
    for (int64_t j = 0; j < E; j++) {
      double d = 0.0;
      for (int64_t e = 0; e < E; e++) d += dp[e] * double(p[e]) * ((e == j) - double(p[j]));
      dlogits[n * E + j] += float(d);
    }
  }
}

void moe_dispatch_forward_ref(float* xg, const float* x, const int32_t* order, int64_t A,
                              int64_t C) {
  for (int64_t i = 0; i < A; i++)
    for (int64_t c = 0; c < C; c++) xg[i * C + c] = x[int64_t(order[i]) * C + c];
}

void moe_dispatch_backward_ref(float* dx, const float* dxg, const int32_t* slot, int64_t N,
                               int64_t k, int64_t C) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < k; s++)
      for (int64_t c = 0; c < C; c++) dx[n * C + c] += dxg[int64_t(slot[n * k + s]) * C + c];
}

void moe_combine_forward_ref(float* out, const float* e_out, const float* gates,
                             const int32_t* slot, int64_t N, int64_t k, int64_t C) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      double sum = 0.0;
      for (int64_t s = 0; s < k; s++)
        sum += double(gates[n * k + s]) * e_out[int64_t(slot[n * k + s]) * C + c];
      out[n * C + c] += float(sum);
    }
}

void moe_combine_backward_ref(float* de_out, float* dgates, const float* dout, const float* e_out,
                              const float* gates, const int32_t* slot, int64_t N, int64_t k,
                              int64_t C) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < k; s++) {
      const int64_t pos = slot[n * k + s];
      double dot = 0.0;
      for (int64_t c = 0; c < C; c++) {
        de_out[pos * C + c] += gates[n * k + s] * dout[n * C + c];
        dot += double(dout[n * C + c]) * e_out[pos * C + c];
      }
      dgates[n * k + s] += float(dot);
    }
}

float moe_aux_loss_forward_ref(const float* probs, const int32_t* topk_idx, int64_t N, int64_t E,
                               int64_t k, float alpha) {
  double aux = 0.0;
  for (int64_t e = 0; e < E; e++) {
    int64_t count = 0;
    for (int64_t i = 0; i < N * k; i++) count += topk_idx[i] == e;
    double P = 0.0;
    for (int64_t n = 0; n < N; n++) P += probs[n * E + e];
    aux += double(count) / double(N * k) * (P / double(N));
  }
  return float(double(alpha) * double(E) * aux);
}

void moe_aux_loss_backward_ref(float* dprobs, const int32_t* topk_idx, int64_t N, int64_t E,
                               int64_t k, float alpha, float dloss) {
  for (int64_t e = 0; e < E; e++) {
    int64_t count = 0;
    for (int64_t i = 0; i < N * k; i++) count += topk_idx[i] == e;
    const double d = double(dloss) * alpha * double(E) * double(count) / double(N * k) / double(N);
    for (int64_t n = 0; n < N; n++) dprobs[n * E + e] += float(d);
  }
}

// ---- attention ---------------------------------------------------------------------------------

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

// ---- the DeepSeek-V4.1 Engram layer ------------------------------------------------------------

void engram_v41_forward_ref(float* out, const float* hidden, const float* rows,
                            const uint8_t* token_mask, const float* wkv, const float* q_weight,
                            const float* k_weight, const EngramV41Shape& shape, int64_t N) {
  const int64_t D = shape.hidden, H = shape.hc, E = shape.emb_dim(), KV = (H + 1) * D;
  std::vector<double> kv(KV);
  for (int64_t n = 0; n < N; n++) {
    for (int64_t o = 0; o < KV; o++) {
      double acc = 0.0;
      for (int64_t c = 0; c < E; c++) acc += double(rows[n * E + c]) * wkv[o * E + c];
      kv[o] = acc;
    }
    for (int64_t b = 0; b < H; b++) {
      const float* h = hidden + (n * H + b) * D;
      double hh = 0.0, kk = 0.0, dot = 0.0;
      for (int64_t j = 0; j < D; j++) {
        const double key = kv[b * D + j];
        hh += double(h[j]) * h[j];
        kk += key * key;
        dot += double(h[j]) * q_weight[b * D + j] * k_weight[b * D + j] * key;
      }
      const double s = dot / std::sqrt(hh / D + shape.norm_eps) /
                       std::sqrt(kk / D + shape.norm_eps) / std::sqrt(double(D));
      double gate =
          1.0 / (1.0 + std::exp(-std::copysign(std::sqrt(std::max(std::fabs(s), 1e-6)), s)));
      if (token_mask && token_mask[n] == 0) gate = 0.0;
      for (int64_t j = 0; j < D; j++)
        out[(n * H + b) * D + j] = static_cast<float>(h[j] + gate * kv[H * D + j]);
    }
  }
}

}  // namespace engram::nn
