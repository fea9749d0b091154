// Mixture-of-experts kernels (nn/moe.h): OpenMP over tokens with contiguous inner loops; every
// parallel loop writes disjoint rows and every sum runs in a fixed order, so the results do not
// depend on thread timing. The `_ref` twins are in kernels_ref.cpp.
#include "nn/moe.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "nn/softmax.h"

namespace engram::nn {
namespace {
// Below this many elements a loop runs on the calling thread (a team costs more than the work).
[[maybe_unused]] constexpr int64_t kParallelMin = int64_t{1} << 14;

// How many of the N*k assignments went to each expert.
std::vector<int64_t> expert_counts(const int32_t* topk_idx, int64_t A, int64_t E) {
  std::vector<int64_t> counts(E, 0);
  for (int64_t i = 0; i < A; i++) counts[topk_idx[i]]++;
  return counts;
}
}  // namespace

void moe_route_forward(float* probs, int32_t* topk_idx, float* gates, const float* logits,
                       int64_t N, int64_t E, int64_t k, bool norm_topk) {
#pragma omp parallel for schedule(static) if (N * E >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float* p = probs + n * E;
    std::memcpy(p, logits + n * E, E * sizeof(float));
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

void moe_route_backward(float* dlogits, const float* dgates, const float* dprobs,
                        const float* probs, const int32_t* topk_idx, const float* gates, int64_t N,
                        int64_t E, int64_t k, bool norm_topk) {
#pragma omp parallel if (N * E >= kParallelMin)
  {
    std::vector<float> dp(E);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; n++) {
      const float* pr = probs + n * E;
      if (dprobs != nullptr) {
        std::memcpy(dp.data(), dprobs + n * E, E * sizeof(float));
      } else {
        std::fill(dp.begin(), dp.end(), 0.0f);
      }
      const int32_t* idx = topk_idx + n * k;
      const float* gt = gates + n * k;
      const float* dg = dgates + n * k;
      if (norm_topk) {
        // g_s = p_s / S, S = sum_r p_r:  dp_s = (dg_s - sum_r dg_r g_r) / S
        float S = 0.0f, dot = 0.0f;
        for (int64_t s = 0; s < k; s++) {
          S += pr[idx[s]];
          dot += dg[s] * gt[s];
        }
        for (int64_t s = 0; s < k; s++) dp[idx[s]] += (dg[s] - dot) / S;
      } else {
        for (int64_t s = 0; s < k; s++) dp[idx[s]] += dg[s];
      }
      // softmax backward: dlogit = p * (dp - sum p dp)
      float pdp = 0.0f;
      for (int64_t e = 0; e < E; e++) pdp += pr[e] * dp[e];
      float* dl = dlogits + n * E;
      for (int64_t e = 0; e < E; e++) dl[e] += pr[e] * (dp[e] - pdp);
    }
  }
}

void moe_dispatch_plan(int32_t* slot, int32_t* order, int64_t* expert_start,
                       const int32_t* topk_idx, int64_t N, int64_t E, int64_t k) {
  // Counting sort, stable.
  const std::vector<int64_t> counts = expert_counts(topk_idx, N * k, E);
  expert_start[0] = 0;
  for (int64_t e = 0; e < E; e++) expert_start[e + 1] = expert_start[e] + counts[e];
  std::vector<int64_t> fill(expert_start, expert_start + E);
  for (int64_t i = 0; i < N * k; i++) {
    const int64_t pos = fill[topk_idx[i]]++;
    slot[i] = static_cast<int32_t>(pos);
    order[pos] = static_cast<int32_t>(i / k);
  }
}

void moe_dispatch_forward(float* xg, const float* x, const int32_t* order, int64_t A, int64_t C) {
#pragma omp parallel for schedule(static) if (A * C >= kParallelMin)
  for (int64_t i = 0; i < A; i++) {
    std::memcpy(xg + i * C, x + int64_t(order[i]) * C, C * sizeof(float));
  }
}

void moe_dispatch_backward(float* dx, const float* dxg, const int32_t* slot, int64_t N, int64_t k,
                           int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float* d = dx + n * C;
    for (int64_t s = 0; s < k; s++) {
      const float* src = dxg + int64_t(slot[n * k + s]) * C;
      for (int64_t c = 0; c < C; c++) d[c] += src[c];
    }
  }
}

void moe_combine_forward(float* out, const float* e_out, const float* gates, const int32_t* slot,
                         int64_t N, int64_t k, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float* o = out + n * C;
    for (int64_t s = 0; s < k; s++) {
      const float gt = gates[n * k + s];
      const float* y = e_out + int64_t(slot[n * k + s]) * C;
      for (int64_t c = 0; c < C; c++) o[c] += gt * y[c];
    }
  }
}

void moe_combine_backward(float* de_out, float* dgates, const float* dout, const float* e_out,
                          const float* gates, const int32_t* slot, int64_t N, int64_t k,
                          int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* d = dout + n * C;
    for (int64_t s = 0; s < k; s++) {
      const int64_t pos = slot[n * k + s];
      const float gt = gates[n * k + s];
      const float* y = e_out + pos * C;
      float* dy = de_out + pos * C;
      float dot = 0.0f;
      for (int64_t c = 0; c < C; c++) {
        dy[c] += gt * d[c];
        dot += d[c] * y[c];
      }
      dgates[n * k + s] += dot;
    }
  }
}

float moe_aux_loss_forward(const float* probs, const int32_t* topk_idx, int64_t N, int64_t E,
                           int64_t k, float alpha) {
  const std::vector<int64_t> counts = expert_counts(topk_idx, N * k, E);
  double aux = 0.0;
  for (int64_t e = 0; e < E; e++) {
    double pe = 0.0;
    for (int64_t n = 0; n < N; n++) pe += probs[n * E + e];
    const double fe = double(counts[e]) / double(N * k);
    aux += fe * pe / double(N);
  }
  return static_cast<float>(alpha * double(E) * aux);
}

void moe_aux_loss_backward(float* dprobs, const int32_t* topk_idx, int64_t N, int64_t E, int64_t k,
                           float alpha, float dloss) {
  const std::vector<int64_t> counts = expert_counts(topk_idx, N * k, E);
  const double alpha_e = alpha * double(E);
  std::vector<float> d(E);
  for (int64_t e = 0; e < E; e++) {
    const double fe = double(counts[e]) / double(N * k);
    d[e] = static_cast<float>(double(dloss) * (alpha_e * fe / double(N)));
  }
#pragma omp parallel for schedule(static) if (N * E >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t e = 0; e < E; e++) dprobs[n * E + e] += d[e];
  }
}

}  // namespace engram::nn
