// Tests of the mixture-of-experts kernels (nn/moe.h) in the two modes of nn_kernels_test: each
// fast kernel against its `_ref` twin (nn/kernels_ref.h), and each backward against central
// finite differences of its forward (fp32, eps 1e-2 on O(1) inputs, losses summed in double;
// tolerance 2e-3 absolute + 1e-2 relative). The router's inputs keep the top-k choice away from
// ties, so that the finite differences do not cross a change of experts.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "nn/kernel_checks.h"
#include "nn/kernels_ref.h"
#include "nn/moe.h"
#include "test_helpers.h"

namespace engram::nn {
namespace {

using engram::testing::expect_all_near;
using engram::testing::expect_grad_matches;
using engram::testing::randn;
using engram::testing::weighted_sum;

// Router logits whose sorted values are at least 0.5 apart in every row (no top-k tie within
// a finite-difference step).
std::vector<float> spread_logits(int64_t N, int64_t E, uint64_t seed) {
  auto noise = randn(N * E, seed, 0.05f);
  std::vector<float> z(N * E);
  for (int64_t n = 0; n < N; n++)
    for (int64_t e = 0; e < E; e++) {
      const int64_t rank = (e * 3 + n) % E;  // a permutation of 0..E-1 per row (E coprime to 3)
      z[n * E + e] = 0.5f * float(rank) - 1.0f + noise[n * E + e];
    }
  return z;
}

struct Routed {
  std::vector<float> probs, gates;
  std::vector<int32_t> idx;
};

Routed route(const std::vector<float>& z, int64_t N, int64_t E, int64_t k, bool norm, bool ref) {
  Routed r{std::vector<float>(N * E), std::vector<float>(N * k), std::vector<int32_t>(N * k)};
  (ref ? moe_route_forward_ref : moe_route_forward)(r.probs.data(), r.idx.data(), r.gates.data(),
                                                    z.data(), N, E, k, norm);
  return r;
}

class MoeRouteTest : public ::testing::TestWithParam<bool> {};

TEST_P(MoeRouteTest, FastMatchesReference) {
  const bool norm = GetParam();
  const int64_t N = 37, E = 7, k = 3;
  auto z = randn(N * E, 1, 2.0f);
  const Routed a = route(z, N, E, k, norm, false), b = route(z, N, E, k, norm, true);
  EXPECT_EQ(a.idx, b.idx);
  expect_all_near(a.probs, b.probs, 1e-6f, "probs");
  expect_all_near(a.gates, b.gates, 1e-6f, "gates");
  auto dgates = randn(N * k, 2), dprobs = randn(N * E, 3);
  auto d1 = randn(N * E, 4), d2 = d1;  // backward accumulates: start from the same values
  moe_route_backward(d1.data(), dgates.data(), dprobs.data(), a.probs.data(), a.idx.data(),
                     a.gates.data(), N, E, k, norm);
  moe_route_backward_ref(d2.data(), dgates.data(), dprobs.data(), b.probs.data(), b.idx.data(),
                         b.gates.data(), N, E, k, norm);
  expect_all_near(d1, d2, 1e-5f, "dlogits");
  // Without a direct probability gradient.
  moe_route_backward(d1.data(), dgates.data(), nullptr, a.probs.data(), a.idx.data(),
                     a.gates.data(), N, E, k, norm);
  moe_route_backward_ref(d2.data(), dgates.data(), nullptr, b.probs.data(), b.idx.data(),
                         b.gates.data(), N, E, k, norm);
  expect_all_near(d1, d2, 1e-5f, "dlogits, no dprobs");
}

TEST_P(MoeRouteTest, BackwardMatchesFiniteDifferences) {
  const bool norm = GetParam();
  const int64_t N = 4, E = 5, k = 2;
  auto z = spread_logits(N, E, 5);
  auto rg = randn(N * k, 6), rp = randn(N * E, 7);
  const Routed r = route(z, N, E, k, norm, true);
  std::vector<float> dz(N * E, 0.0f);
  moe_route_backward_ref(dz.data(), rg.data(), rp.data(), r.probs.data(), r.idx.data(),
                         r.gates.data(), N, E, k, norm);
  expect_grad_matches(
      z, dz,
      [&] {
        const Routed f = route(z, N, E, k, norm, true);
        EXPECT_EQ(f.idx, r.idx);  // the step did not change the experts
        return weighted_sum(f.gates, rg) + weighted_sum(f.probs, rp);
      },
      "dlogits");
}

INSTANTIATE_TEST_SUITE_P(NormTopK, MoeRouteTest, ::testing::Bool());

TEST(MoeRoute, TakesTopKByProbabilityLowerIdOnTies) {
  const int64_t N = 2, E = 4, k = 2;
  const std::vector<float> z = {1.0f,  3.0f, 3.0f, 0.0f,   // tie: 1 before 2
                                -1.0f, 0.0f, 2.0f, 5.0f};  // 3, 2
  for (bool ref : {false, true}) {
    const Routed r = route(z, N, E, k, true, ref);
    EXPECT_EQ(r.idx, (std::vector<int32_t>{1, 2, 3, 2})) << ref;
    EXPECT_NEAR(r.gates[0] + r.gates[1], 1.0f, 1e-6f);
  }
}

// A plan for N tokens of k slots over E experts, from a routing of random logits.
struct Plan {
  std::vector<int32_t> idx, slot, order;
  std::vector<int64_t> start;
};

Plan plan(int64_t N, int64_t E, int64_t k, uint64_t seed) {
  const Routed r = route(randn(N * E, seed, 2.0f), N, E, k, false, true);
  Plan p{r.idx, std::vector<int32_t>(N * k), std::vector<int32_t>(N * k),
         std::vector<int64_t>(E + 1)};
  moe_dispatch_plan(p.slot.data(), p.order.data(), p.start.data(), p.idx.data(), N, E, k);
  return p;
}

TEST(MoeDispatch, PlanGroupsAssignmentsByExpertInTokenOrder) {
  const int64_t N = 23, E = 5, k = 2;
  const Plan p = plan(N, E, k, 8);
  EXPECT_EQ(p.start[0], 0);
  EXPECT_EQ(p.start[E], N * k);
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < k; s++) {
      const int64_t pos = p.slot[n * k + s], e = p.idx[n * k + s];
      EXPECT_EQ(p.order[pos], n);
      EXPECT_GE(pos, p.start[e]);
      EXPECT_LT(pos, p.start[e + 1]);
    }
  for (int64_t e = 0; e < E; e++)
    for (int64_t pos = p.start[e] + 1; pos < p.start[e + 1]; pos++)
      EXPECT_LT(p.order[pos - 1], p.order[pos]);  // stable: token order within an expert
}

TEST(MoeDispatch, FastMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const int64_t N = 9, E = 4, k = 2, C = 6, A = N * k;
  const Plan p = plan(N, E, k, 9);
  auto x = randn(N * C, 10);
  std::vector<float> a(A * C), b(A * C);
  moe_dispatch_forward(a.data(), x.data(), p.order.data(), A, C);
  moe_dispatch_forward_ref(b.data(), x.data(), p.order.data(), A, C);
  EXPECT_EQ(a, b);
  auto r = randn(A * C, 11);
  auto dx1 = randn(N * C, 12), dx2 = dx1;
  moe_dispatch_backward(dx1.data(), r.data(), p.slot.data(), N, k, C);
  moe_dispatch_backward_ref(dx2.data(), r.data(), p.slot.data(), N, k, C);
  expect_all_near(dx1, dx2, 1e-6f, "dx");
  std::vector<float> dx(N * C, 0.0f);
  moe_dispatch_backward_ref(dx.data(), r.data(), p.slot.data(), N, k, C);
  expect_grad_matches(
      x, dx,
      [&] {
        std::vector<float> xg(A * C);
        moe_dispatch_forward_ref(xg.data(), x.data(), p.order.data(), A, C);
        return weighted_sum(xg, r);
      },
      "dx");
}

TEST(MoeCombine, FastMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const int64_t N = 8, E = 3, k = 2, C = 5, A = N * k;
  const Plan p = plan(N, E, k, 13);
  auto e_out = randn(A * C, 14), gates = randn(N * k, 15), base = randn(N * C, 16);
  auto a = base, b = base;  // the combine adds into out
  moe_combine_forward(a.data(), e_out.data(), gates.data(), p.slot.data(), N, k, C);
  moe_combine_forward_ref(b.data(), e_out.data(), gates.data(), p.slot.data(), N, k, C);
  expect_all_near(a, b, 1e-6f, "out");
  auto dout = randn(N * C, 17);
  auto de1 = randn(A * C, 18), de2 = de1, dg1 = randn(N * k, 19), dg2 = dg1;
  moe_combine_backward(de1.data(), dg1.data(), dout.data(), e_out.data(), gates.data(),
                       p.slot.data(), N, k, C);
  moe_combine_backward_ref(de2.data(), dg2.data(), dout.data(), e_out.data(), gates.data(),
                           p.slot.data(), N, k, C);
  expect_all_near(de1, de2, 1e-6f, "de_out");
  expect_all_near(dg1, dg2, 1e-6f, "dgates");
  std::vector<float> de(A * C, 0.0f), dg(N * k, 0.0f);
  moe_combine_backward_ref(de.data(), dg.data(), dout.data(), e_out.data(), gates.data(),
                           p.slot.data(), N, k, C);
  auto loss = [&] {
    std::vector<float> out(N * C, 0.0f);
    moe_combine_forward_ref(out.data(), e_out.data(), gates.data(), p.slot.data(), N, k, C);
    return weighted_sum(out, dout);
  };
  expect_grad_matches(e_out, de, loss, "de_out");
  expect_grad_matches(gates, dg, loss, "dgates");
}

TEST(MoeAuxLoss, FastMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const int64_t N = 11, E = 4, k = 2;
  const Routed r = route(randn(N * E, 20, 2.0f), N, E, k, false, true);
  const float alpha = 0.3f;
  const float fast = moe_aux_loss_forward(r.probs.data(), r.idx.data(), N, E, k, alpha);
  const float ref = moe_aux_loss_forward_ref(r.probs.data(), r.idx.data(), N, E, k, alpha);
  EXPECT_NEAR(fast, ref, 1e-6f * std::fabs(ref));
  // Perfect balance with uniform probabilities gives alpha: E * sum_e (1/E)(1/E) = 1.
  std::vector<float> uniform(4 * 2, 0.5f);
  const std::vector<int32_t> balanced = {0, 1, 1, 0, 0, 1, 1, 0};
  EXPECT_NEAR(moe_aux_loss_forward(uniform.data(), balanced.data(), 4, 2, 2, alpha), alpha, 1e-6f);
  auto d1 = randn(N * E, 21), d2 = d1;
  moe_aux_loss_backward(d1.data(), r.idx.data(), N, E, k, alpha, 0.7f);
  moe_aux_loss_backward_ref(d2.data(), r.idx.data(), N, E, k, alpha, 0.7f);
  expect_all_near(d1, d2, 1e-6f, "dprobs");
  // f is a constant: the gradient is that of the probabilities' term with the counts frozen.
  auto probs = r.probs;
  std::vector<float> dp(N * E, 0.0f);
  moe_aux_loss_backward_ref(dp.data(), r.idx.data(), N, E, k, alpha, 1.0f);
  expect_grad_matches(
      probs, dp,
      [&] { return double(moe_aux_loss_forward_ref(probs.data(), r.idx.data(), N, E, k, alpha)); },
      "dprobs");
}

}  // namespace
}  // namespace engram::nn
