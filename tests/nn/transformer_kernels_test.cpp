// Tests of the transformer kernels of the kernel library (nn/attention.h, and in nn/kernels.h the
// token embedding, linear, RMSNorm, SwiGLU and cross-entropy): every backward against central
// finite differences of its forward, every fast kernel against its plain reference.
//
// Finite differences: the scalar checked is loss = sum(w * out) with fixed random w (so
// dout = w); each input element x_i is nudged by +-eps (eps = 1e-2 for O(1) inputs) and
// (loss(x+) - loss(x-)) / 2eps, computed from fp32 forwards summed in double, must match the
// analytic gradient within |fd - an| <= 2e-2 * max(|fd|, |an|) + 2e-3 (fp32 forwards leave
// ~1e-6 relative noise in the loss, i.e. ~1e-4 absolute in the difference quotient, and the
// O(eps^2) truncation error of a smooth kernel is ~1e-4 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "nn/attention.h"
#include "nn/kernels.h"
#include "nn/kernels_ref.h"
#include "nn/moe.h"
#include "nn/softmax.h"
#include "test_helpers.h"

namespace engram::nn {
namespace {

using engram::testing::randn;
using engram::testing::weighted_sum;

// Checks `grad` (analytic d loss / d x) against finite differences of loss(x) at up to
// `samples` evenly spread coordinates of x (all of them if x is small).
void expect_fd_match(const std::string& what, std::vector<float>& x, const std::vector<float>& grad,
                     const std::function<double(const std::vector<float>&)>& loss,
                     float eps = 1e-2f, int samples = 64) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  const size_t step = std::max<size_t>(1, x.size() / samples);
  int checked = 0;
  for (size_t i = 0; i < x.size(); i += step) {
    const float orig = x[i];
    x[i] = orig + eps;
    const double lp = loss(x);
    x[i] = orig - eps;
    const double lm = loss(x);
    x[i] = orig;
    const double fd = (lp - lm) / (2.0 * eps);
    const double an = grad[i];
    EXPECT_LE(std::abs(fd - an), 2e-2 * std::max(std::abs(fd), std::abs(an)) + 2e-3)
        << what << "[" << i << "]: finite difference " << fd << " vs analytic " << an;
    checked++;
  }
  EXPECT_GT(checked, 0);
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float rtol, float atol,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); i++) {
    ASSERT_LE(std::abs(a[i] - b[i]), atol + rtol * std::abs(b[i]))
        << what << "[" << i << "]: " << a[i] << " vs " << b[i];
  }
}

TEST(Kernels, ExpApproxIsWithinItsStatedErrorAndClamps) {
  double worst = 0.0;
  for (float x = -80.0f; x <= 80.0f; x += 0.01337f) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(exp_approx(x) - ref) / ref);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(exp_approx(1000.0f)));
  EXPECT_GE(exp_approx(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_LT(exp_approx(-std::numeric_limits<float>::infinity()), 1e-37f);
}

TEST(Kernels, EmbeddingForwardGathersAndBackwardScatterAdds) {
  const int64_t V = 7, C = 5, N = 6;
  const std::vector<int32_t> ids = {3, 0, 3, 6, 1, 3};  // repeated id 3
  auto wte = randn(V * C, 1);
  std::vector<float> out(N * C);
  embedding_forward(out.data(), ids.data(), wte.data(), N, C);
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) EXPECT_EQ(out[n * C + c], wte[ids[n] * C + c]);
  }
  auto w = randn(N * C, 2);
  std::vector<float> dwte(V * C, 0.0f);
  embedding_backward(dwte.data(), w.data(), ids.data(), N, C);
  expect_fd_match("dwte", wte, dwte, [&](const std::vector<float>& t) {
    std::vector<float> o(N * C);
    embedding_forward(o.data(), ids.data(), t.data(), N, C);
    return weighted_sum(o, w);
  });
}

TEST(Kernels, RmsNormBackwardMatchesFiniteDifferences) {
  const int64_t N = 4, C = 16;
  const float eps = 1e-5f;
  auto x = randn(N * C, 3);
  auto weight = randn(C, 4, 0.5f);
  for (float& v : weight) v += 1.0f;
  auto w = randn(N * C, 5);
  auto run = [&](const std::vector<float>& xx, const std::vector<float>& ww) {
    std::vector<float> o(N * C), r(N);
    rmsnorm_forward(o.data(), C, r.data(), xx.data(), C, ww.data(), N, C, eps);
    return weighted_sum(o, w);
  };
  std::vector<float> out(N * C), rstd(N), dx(N * C, 0.0f), dweight(C, 0.0f);
  rmsnorm_forward(out.data(), C, rstd.data(), x.data(), C, weight.data(), N, C, eps);
  // Forward against the formula.
  for (int64_t n = 0; n < N; n++) {
    double ss = 0.0;
    for (int64_t c = 0; c < C; c++) ss += double(x[n * C + c]) * x[n * C + c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t c = 0; c < C; c++) {
      EXPECT_NEAR(out[n * C + c], x[n * C + c] * r * weight[c], 1e-5);
    }
  }
  rmsnorm_backward(dx.data(), C, dweight.data(), w.data(), C, x.data(), C, weight.data(),
                   rstd.data(), N, C);
  expect_fd_match("dx", x, dx, [&](const std::vector<float>& t) { return run(t, weight); });
  expect_fd_match("dweight", weight, dweight,
                  [&](const std::vector<float>& t) { return run(x, t); });
}

TEST(Kernels, LinearAccumulatingFastMatchesReferenceAndReferenceMatchesFiniteDifferences) {
  const int64_t N = 9, IC = 13, OC = 7;
  auto x = randn(N * IC, 6);
  auto W = randn(OC * IC, 7);
  auto w = randn(N * OC, 8);
  std::vector<float> out(N * OC), out_ref(N * OC);
  linear_forward(out.data(), x.data(), W.data(), nullptr, N, IC, OC);
  linear_forward_ref(out_ref.data(), x.data(), W.data(), nullptr, N, IC, OC);
  expect_close(out, out_ref, 1e-5f, 1e-5f, "matmul out");
  // accumulate mode adds onto what is there
  std::vector<float> acc = w, acc_ref = w;
  linear_forward(acc.data(), x.data(), W.data(), nullptr, N, IC, OC, true);
  linear_forward_ref(acc_ref.data(), x.data(), W.data(), nullptr, N, IC, OC, true);
  expect_close(acc, acc_ref, 1e-5f, 1e-5f, "matmul accumulate");
  // backward: start from non-zero gradients to check accumulation
  std::vector<float> dx(N * IC, 0.5f), dW(OC * IC, -0.25f), dx_ref = dx, dW_ref = dW;
  linear_backward(dx.data(), dW.data(), nullptr, w.data(), x.data(), W.data(), N, IC, OC);
  linear_backward_ref(dx_ref.data(), dW_ref.data(), nullptr, w.data(), x.data(), W.data(), N, IC,
                      OC);
  expect_close(dx, dx_ref, 1e-5f, 1e-5f, "matmul dx");
  expect_close(dW, dW_ref, 1e-5f, 1e-5f, "matmul dW");
  std::vector<float> gx(N * IC, 0.0f), gW(OC * IC, 0.0f);
  linear_backward_ref(gx.data(), gW.data(), nullptr, w.data(), x.data(), W.data(), N, IC, OC);
  auto run = [&](const std::vector<float>& xx, const std::vector<float>& ww) {
    std::vector<float> o(N * OC);
    linear_forward_ref(o.data(), xx.data(), ww.data(), nullptr, N, IC, OC);
    return weighted_sum(o, w);
  };
  expect_fd_match("dx", x, gx, [&](const std::vector<float>& t) { return run(t, W); });
  expect_fd_match("dW", W, gW, [&](const std::vector<float>& t) { return run(x, t); });
}

TEST(Kernels, RopeRotatesHalvesAndBackwardIsTheInverse) {
  const int64_t B = 2, T = 5, Hh = 3, D = 8, stride = Hh * D + 4;  // padded rows
  std::vector<float> cos_t(T * D / 2), sin_t(T * D / 2);
  rope_tables(cos_t.data(), sin_t.data(), T, D, 10000.0f);
  auto x = randn(B * T * stride, 9);
  auto y = x;
  rope_forward(y.data(), cos_t.data(), sin_t.data(), B, T, Hh, D, stride);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++) {
      for (int64_t h = 0; h < Hh; h++) {
        for (int64_t i = 0; i < D / 2; i++) {
          const double ang = double(t) * std::pow(10000.0, -2.0 * i / D);
          const int64_t o = (b * T + t) * stride + h * D;
          const double a = x[o + i], c = x[o + i + D / 2];
          EXPECT_NEAR(y[o + i], a * std::cos(ang) - c * std::sin(ang), 1e-5);
          EXPECT_NEAR(y[o + i + D / 2], c * std::cos(ang) + a * std::sin(ang), 1e-5);
        }
      }
      for (int64_t pad = Hh * D; pad < stride; pad++) {
        EXPECT_EQ(y[(b * T + t) * stride + pad], x[(b * T + t) * stride + pad]);
      }
    }
  }
  auto w = randn(B * T * stride, 10);
  auto g = w;
  rope_backward(g.data(), cos_t.data(), sin_t.data(), B, T, Hh, D, stride);
  expect_fd_match("dx", x, g, [&](const std::vector<float>& t) {
    auto o = t;
    rope_forward(o.data(), cos_t.data(), sin_t.data(), B, T, Hh, D, stride);
    return weighted_sum(o, w);
  });
}

struct AttnCase {
  int64_t B, T, H, KV, D;
};

class AttentionTest : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionTest, FastMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const auto [B, T, H, KV, D] = GetParam();
  const int64_t QKV = (H + 2 * KV) * D;
  auto qkv = randn(B * T * QKV, 11);
  auto w = randn(B * T * H * D, 12);
  std::vector<float> out(B * T * H * D), att(B * H * T * T), out_ref(out.size()),
      att_ref(att.size());
  attention_forward(out.data(), att.data(), qkv.data(), B, T, H, KV, D);
  attention_forward_ref(out_ref.data(), att_ref.data(), qkv.data(), B, T, H, KV, D);
  expect_close(out, out_ref, 1e-4f, 1e-5f, "attention out");
  expect_close(att, att_ref, 1e-4f, 1e-6f, "attention probs");
  std::vector<float> dqkv(qkv.size(), 0.125f), dqkv_ref = dqkv;
  attention_backward(dqkv.data(), w.data(), qkv.data(), att.data(), B, T, H, KV, D);
  attention_backward_ref(dqkv_ref.data(), w.data(), qkv.data(), att_ref.data(), B, T, H, KV, D);
  expect_close(dqkv, dqkv_ref, 1e-4f, 1e-5f, "attention dqkv");
  std::vector<float> g(qkv.size(), 0.0f);
  attention_backward_ref(g.data(), w.data(), qkv.data(), att_ref.data(), B, T, H, KV, D);
  expect_fd_match(
      "dqkv", qkv, g,
      [&](const std::vector<float>& t) {
        std::vector<float> o(out.size()), a(att.size());
        attention_forward_ref(o.data(), a.data(), t.data(), B, T, H, KV, D);
        return weighted_sum(o, w);
      },
      1e-2f, 200);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(AttnCase{1, 1, 1, 1, 4}, AttnCase{2, 7, 2, 2, 8},
                                           AttnCase{2, 9, 4, 2, 6}, AttnCase{1, 5, 3, 1, 4},
                                           // full 4 x 32 register tiles plus edge tiles in
                                           // both directions (T and D not multiples of 4, 32)
                                           AttnCase{1, 70, 2, 1, 40},
                                           // head-size products in 4 x 64 tiles (D % 64 == 0)
                                           AttnCase{2, 37, 2, 1, 64}));

TEST(Kernels, AttentionDecodeMatchesTheLastRowOfTheFullForward) {
  const int64_t T = 6, H = 4, KV = 2, D = 8, QKV = (H + 2 * KV) * D;
  auto qkv = randn(T * QKV, 13);
  std::vector<float> out(T * H * D), att(H * T * T);
  attention_forward(out.data(), att.data(), qkv.data(), 1, T, H, KV, D);
  std::vector<float> kc(T * KV * D), vc(T * KV * D), o(H * D), scratch(T);
  for (int64_t t = 0; t < T; t++) {
    for (int64_t i = 0; i < KV * D; i++) {
      kc[t * KV * D + i] = qkv[t * QKV + H * D + i];
      vc[t * KV * D + i] = qkv[t * QKV + (H + KV) * D + i];
    }
  }
  for (int64_t t = 0; t < T; t++) {
    attention_decode(o.data(), qkv.data() + t * QKV, kc.data(), vc.data(), t + 1, H, KV, D,
                     scratch.data());
    for (int64_t i = 0; i < H * D; i++) EXPECT_NEAR(o[i], out[t * H * D + i], 1e-5);
  }
}

TEST(Kernels, SwigluBackwardMatchesFiniteDifferences) {
  const int64_t N = 5, F = 11;
  auto gu = randn(N * 2 * F, 14, 2.0f);
  auto w = randn(N * F, 15);
  std::vector<float> out(N * F), dgu(gu.size(), 0.0f);
  swiglu_forward(out.data(), gu.data(), N, F);
  for (int64_t n = 0; n < N; n++) {
    for (int64_t f = 0; f < F; f++) {
      const double g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
      EXPECT_NEAR(out[n * F + f], g / (1.0 + std::exp(-g)) * u, 1e-5);
    }
  }
  swiglu_backward(dgu.data(), w.data(), gu.data(), N, F);
  expect_fd_match("dgateup", gu, dgu, [&](const std::vector<float>& t) {
    std::vector<float> o(N * F);
    swiglu_forward(o.data(), t.data(), N, F);
    return weighted_sum(o, w);
  });
}

TEST(Kernels, CrossEntropyIsStableAndBackwardMatchesFiniteDifferences) {
  const int64_t N = 4, V = 9;
  auto logits = randn(N * V, 16, 3.0f);
  logits[5] = 80.0f;                                   // large logit: a naive exp would overflow
  const std::vector<int32_t> targets = {2, -1, 8, 0};  // row 1 ignored
  std::vector<float> losses(N), lse(N);
  crossentropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
  for (int64_t n = 0; n < N; n++) {
    double mx = -1e300, s = 0.0;
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, double(logits[n * V + v]));
    for (int64_t v = 0; v < V; v++) s += std::exp(logits[n * V + v] - mx);
    const double expect = targets[n] < 0 ? 0.0 : mx + std::log(s) - logits[n * V + targets[n]];
    EXPECT_NEAR(losses[n], expect, 1e-4) << "row " << n;
    EXPECT_TRUE(std::isfinite(losses[n]));
  }
  auto total = [&](const std::vector<float>& t) {
    std::vector<float> l(N), s(N);
    crossentropy_forward(l.data(), s.data(), t.data(), targets.data(), N, V);
    double sum = 0.0;
    for (float x : l) sum += x;
    return sum / 3.0;  // mean over the 3 counted rows
  };
  auto d = logits;
  crossentropy_backward_inplace(d.data(), lse.data(), targets.data(), N, V, 1.0f / 3.0f);
  for (int64_t v = 0; v < V; v++) EXPECT_EQ(d[1 * V + v], 0.0f);
  expect_fd_match("dlogits", logits, d, total, 1e-2f, 64);
}

TEST(Kernels, MoeRouteTakesTopKByProbability) {
  const int64_t N = 3, E = 5, K = 2;
  const std::vector<float> logits = {0.1f,  2.0f,  -1.0f, 1.5f, 0.0f,   // top: 1, 3
                                     3.0f,  3.0f,  0.0f,  0.0f, -2.0f,  // tie: 0 before 1
                                     -1.0f, -1.0f, -1.0f, 4.0f, 5.0f};  // 4, 3
  std::vector<float> probs(N * E), gates(N * K);
  std::vector<int32_t> idx(N * K);
  moe_route_forward(probs.data(), idx.data(), gates.data(), logits.data(), N, E, K, false);
  EXPECT_EQ(idx, (std::vector<int32_t>{1, 3, 0, 1, 4, 3}));
  for (int64_t n = 0; n < N; n++) {
    double s = 0.0;
    for (int64_t e = 0; e < E; e++) s += probs[n * E + e];
    EXPECT_NEAR(s, 1.0, 1e-6);
    for (int64_t k = 0; k < K; k++) EXPECT_EQ(gates[n * K + k], probs[n * E + idx[n * K + k]]);
  }
  moe_route_forward(probs.data(), idx.data(), gates.data(), logits.data(), N, E, K, true);
  for (int64_t n = 0; n < N; n++) EXPECT_NEAR(gates[n * K] + gates[n * K + 1], 1.0, 1e-6);
}

}  // namespace
}  // namespace engram::nn
