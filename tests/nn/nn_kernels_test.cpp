// Tests of the Engram layer kernels (nn/kernels.h), one group per op, each in the two
// modes ggml's test-backend-ops uses: the fast kernel against its plain reference, and the
// backward against central finite differences of the forward (fp32, eps 1e-2 on O(1) inputs,
// losses summed in double; tolerance 2e-3 absolute + 1e-2 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "nn/kernel_checks.h"
#include "nn/kernels.h"
#include "nn/kernels_ref.h"
#include "test_helpers.h"

namespace engram::nn {
namespace {

using engram::testing::expect_all_near;
using engram::testing::expect_grad_matches;
using engram::testing::randn;
using engram::testing::weighted_sum;

TEST(EmbeddingGather, FastMatchesReference) {
  const int64_t rows = 50, N = 7, cols = 3, W = 5;
  auto table = randn(rows * W, 1);
  std::vector<int64_t> ids = {0, 49, 3, 3, 3, 7, 12, 0, 0, 48, 1, 2, 5, 5, 6, 9, 10, 11, 49, 49, 1};
  std::vector<float> a(N * cols * W), b(N * cols * W);
  embedding_gather(a.data(), table.data(), ids.data(), N, cols, W);
  embedding_gather_ref(b.data(), table.data(), ids.data(), N, cols, W);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[(1 * cols + 0) * W + 2], table[3 * W + 2]);  // position 1, column 0 read row 3
}

TEST(EmbeddingBackward, SparseSumsDuplicatesAndMatchesDense) {
  const int64_t rows = 20, N = 6, cols = 2, W = 4;
  std::vector<int64_t> ids = {5, 5, 7, 5, 19, 0, 7, 7, 0, 0, 3, 5};  // many repeats
  auto de = randn(N * cols * W, 2);
  RowGrads fast, ref;
  embedding_backward_sparse(fast, de.data(), ids.data(), N, cols, W);
  embedding_backward_sparse_ref(ref, de.data(), ids.data(), N, cols, W);
  EXPECT_EQ(fast.rows, (std::vector<int64_t>{0, 3, 5, 7, 19}));
  EXPECT_EQ(fast.rows, ref.rows);
  expect_all_near(fast.grads, ref.grads, 1e-6f, "sparse");
  std::vector<float> dense(rows * W, 0.0f), from_sparse(rows * W, 0.0f);
  embedding_backward_dense(dense.data(), de.data(), ids.data(), N, cols, W);
  row_grads_add_to_dense(from_sparse.data(), fast);
  expect_all_near(from_sparse, dense, 1e-6f, "dense");
  // Row 5 was read 4 times: its gradient is the sum of those 4 slices of de.
  for (int64_t k = 0; k < W; k++) {
    const float want = de[0 * W + k] + de[1 * W + k] + de[3 * W + k] + de[11 * W + k];
    EXPECT_NEAR(dense[5 * W + k], want, 1e-6f);
  }
}

TEST(EmbeddingBackward, DenseMatchesFiniteDifferences) {
  const int64_t rows = 6, N = 4, cols = 2, W = 3;
  auto table = randn(rows * W, 3);
  std::vector<int64_t> ids = {1, 1, 4, 0, 1, 5, 2, 2};
  auto r = randn(N * cols * W, 4);
  std::vector<float> grad(rows * W, 0.0f);
  embedding_backward_dense(grad.data(), r.data(), ids.data(), N, cols, W);
  expect_grad_matches(
      table, grad,
      [&] {
        std::vector<float> e(N * cols * W);
        embedding_gather(e.data(), table.data(), ids.data(), N, cols, W);
        return weighted_sum(e, r);
      },
      "dtable");
}

TEST(Linear, FastMatchesReference) {
  const int64_t N = 9, C = 37, OC = 21;
  auto x = randn(N * C, 5), w = randn(OC * C, 6), bias = randn(OC, 7), dout = randn(N * OC, 8);
  std::vector<float> a(N * OC), b(N * OC);
  linear_forward(a.data(), x.data(), w.data(), bias.data(), N, C, OC);
  linear_forward_ref(b.data(), x.data(), w.data(), bias.data(), N, C, OC);
  expect_all_near(a, b, 1e-5f, "out");
  linear_forward(a.data(), x.data(), w.data(), nullptr, N, C, OC);
  linear_forward_ref(b.data(), x.data(), w.data(), nullptr, N, C, OC);
  expect_all_near(a, b, 1e-5f, "out, no bias");
  auto start = randn(N * OC, 16);  // accumulate: out += projection (+ bias)
  a = start;
  b = start;
  linear_forward(a.data(), x.data(), w.data(), bias.data(), N, C, OC, true);
  linear_forward_ref(b.data(), x.data(), w.data(), bias.data(), N, C, OC, true);
  expect_all_near(a, b, 1e-5f, "out += with bias");
  // Backward accumulates: start both from the same nonzero grads.
  auto dx1 = randn(N * C, 9), dw1 = randn(OC * C, 10), db1 = randn(OC, 11);
  auto dx2 = dx1, dw2 = dw1, db2 = db1;
  linear_backward(dx1.data(), dw1.data(), db1.data(), dout.data(), x.data(), w.data(), N, C, OC);
  linear_backward_ref(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(), N, C,
                      OC);
  expect_all_near(dx1, dx2, 1e-5f, "dx");
  expect_all_near(dw1, dw2, 1e-5f, "dw");
  expect_all_near(db1, db2, 1e-5f, "db");
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  const int64_t N = 3, C = 5, OC = 4;
  auto x = randn(N * C, 12), w = randn(OC * C, 13), bias = randn(OC, 14), r = randn(N * OC, 15);
  std::vector<float> dx(N * C, 0.0f), dw(OC * C, 0.0f), db(OC, 0.0f);
  linear_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), N, C, OC);
  auto loss = [&] {
    std::vector<float> out(N * OC);
    linear_forward(out.data(), x.data(), w.data(), bias.data(), N, C, OC);
    return weighted_sum(out, r);
  };
  expect_grad_matches(x, dx, loss, "dx");
  expect_grad_matches(w, dw, loss, "dw");
  expect_grad_matches(bias, db, loss, "db");
}

// RMSNorm on a strided view: rows of width C inside rows of width ld.
TEST(RmsNorm, FastMatchesReferenceStrided) {
  const int64_t N = 11, C = 24, ld = 3 * C;
  auto x = randn(N * ld, 16, 2.0f), w = randn(C, 17), dout = randn(N * ld, 18);
  std::vector<float> a(N * ld, 0.0f), b(N * ld, 0.0f), ra(N), rb(N);
  rmsnorm_forward(a.data() + C, ld, ra.data(), x.data() + C, ld, w.data(), N, C, 1e-5f);
  rmsnorm_forward_ref(b.data() + C, ld, rb.data(), x.data() + C, ld, w.data(), N, C, 1e-5f);
  expect_all_near(a, b, 1e-5f, "out");
  expect_all_near(ra, rb, 1e-5f, "rstd");
  std::vector<float> dxa(N * ld, 0.5f), dxb(N * ld, 0.5f), dwa(C, 0.25f), dwb(C, 0.25f);
  rmsnorm_backward(dxa.data() + C, ld, dwa.data(), dout.data() + C, ld, x.data() + C, ld, w.data(),
                   ra.data(), N, C);
  rmsnorm_backward_ref(dxb.data() + C, ld, dwb.data(), dout.data() + C, ld, x.data() + C, ld,
                       w.data(), rb.data(), N, C);
  expect_all_near(dxa, dxb, 1e-5f, "dx");
  expect_all_near(dwa, dwb, 1e-5f, "dw");
}

TEST(RmsNorm, BackwardMatchesFiniteDifferences) {
  for (bool fast : {false, true}) {
    const int64_t N = 3, C = 6;
    const float eps = 1e-5f;
    auto x = randn(N * C, 19), w = randn(C, 20), r = randn(N * C, 21);
    std::vector<float> out(N * C), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f);
    rmsnorm_forward_ref(out.data(), C, rstd.data(), x.data(), C, w.data(), N, C, eps);
    (fast ? rmsnorm_backward : rmsnorm_backward_ref)(dx.data(), C, dw.data(), r.data(), C, x.data(),
                                                     C, w.data(), rstd.data(), N, C);
    auto loss = [&] {
      std::vector<float> o(N * C), rs(N);
      rmsnorm_forward_ref(o.data(), C, rs.data(), x.data(), C, w.data(), N, C, eps);
      return weighted_sum(o, r);
    };
    expect_grad_matches(x, dx, loss, fast ? "dx fast" : "dx ref");
    expect_grad_matches(w, dw, loss, fast ? "dw fast" : "dw ref");
  }
}

// k, q with |score| well away from the clamp so the signed square root is smooth there.
void make_gate_inputs(std::vector<float>& k, std::vector<float>& q, int64_t N, int64_t C,
                      uint64_t seed) {
  k = randn(N * C, seed);
  q = randn(N * C, seed + 1, 0.3f);
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < C; j++) q[n * C + j] += (n % 2 ? -1.0f : 1.0f) * k[n * C + j];
}

TEST(Gate, FastMatchesReference) {
  const int64_t N = 13, C = 32;
  std::vector<float> k, q;
  make_gate_inputs(k, q, N, C, 22);
  // Rows 0 and 1: an exact zero score; the two sign conventions differ only there.
  std::fill(q.begin(), q.begin() + 2 * C, 0.0f);
  for (GateSign sign : {GateSign::torch_sign, GateSign::copysign}) {
    std::vector<float> ga(N), sa(N), gb(N), sb(N);
    gate_forward(ga.data(), sa.data(), 1, k.data(), C, q.data(), C, N, C, sign);
    gate_forward_ref(gb.data(), sb.data(), 1, k.data(), C, q.data(), C, N, C, sign);
    expect_all_near(ga, gb, 1e-6f, "gate");
    expect_all_near(sa, sb, 1e-5f, "score");
    EXPECT_FLOAT_EQ(ga[0], sign == GateSign::copysign ? 1.0f / (1.0f + std::exp(-1e-3f)) : 0.5f);
  }
  std::vector<float> g(N), s(N), dg = randn(N, 24);
  gate_forward(g.data(), s.data(), 1, k.data(), C, q.data(), C, N, C, GateSign::torch_sign);
  std::vector<float> dka(N * C, 0.0f), dqa(N * C, 0.0f), dkb(N * C, 0.0f), dqb(N * C, 0.0f);
  gate_backward(dka.data(), C, dqa.data(), C, dg.data(), s.data(), g.data(), 1, k.data(), C,
                q.data(), C, N, C);
  gate_backward_ref(dkb.data(), C, dqb.data(), C, dg.data(), s.data(), g.data(), 1, k.data(), C,
                    q.data(), C, N, C);
  expect_all_near(dka, dkb, 1e-6f, "dk");
  expect_all_near(dqa, dqb, 1e-6f, "dq");
  for (int64_t j = 0; j < 2 * C; j++) EXPECT_EQ(dka[j], 0.0f);  // clamped: no gradient
}

TEST(Gate, BackwardMatchesFiniteDifferences) {
  for (bool fast : {false, true}) {
    const int64_t N = 4, C = 8;
    std::vector<float> k, q;
    make_gate_inputs(k, q, N, C, 25);
    auto r = randn(N, 27);
    std::vector<float> g(N), s(N), dk(N * C, 0.0f), dq(N * C, 0.0f);
    gate_forward(g.data(), s.data(), 1, k.data(), C, q.data(), C, N, C, GateSign::torch_sign);
    for (float v : s) ASSERT_GT(std::fabs(v), 0.1f);
    (fast ? gate_backward : gate_backward_ref)(dk.data(), C, dq.data(), C, r.data(), s.data(),
                                               g.data(), 1, k.data(), C, q.data(), C, N, C);
    auto loss = [&] {
      std::vector<float> gg(N), ss(N);
      gate_forward(gg.data(), ss.data(), 1, k.data(), C, q.data(), C, N, C, GateSign::torch_sign);
      return weighted_sum(gg, r);
    };
    expect_grad_matches(k, dk, loss, fast ? "dk fast" : "dk ref");
    expect_grad_matches(q, dq, loss, fast ? "dq fast" : "dq ref");
  }
}

TEST(GatedValue, BackwardMatchesFiniteDifferences) {
  const int64_t N = 3, H = 2, C = 5, ld = 2 * C;  // value is the first half of wider rows
  auto gate = randn(N * H, 28), value = randn(N * ld, 29), r = randn(N * H * C, 30);
  std::vector<float> dgate(N * H, 0.0f), dvalue(N * ld, 0.0f);
  gated_value_backward(dgate.data(), dvalue.data(), ld, r.data(), gate.data(), value.data(), ld, N,
                       H, C);
  auto loss = [&] {
    std::vector<float> v(N * H * C);
    gated_value_forward(v.data(), gate.data(), value.data(), ld, N, H, C);
    return weighted_sum(v, r);
  };
  expect_grad_matches(gate, dgate, loss, "dgate");
  expect_grad_matches(value, dvalue, loss, "dvalue");
}

TEST(CausalConv, FastMatchesReference) {
  const int64_t B = 3, T = 17, C = 10, K = 4, dil = 3;
  auto x = randn(B * T * C, 31), w = randn(C * K, 32), dy = randn(B * T * C, 33);
  std::vector<float> a(B * T * C), b(B * T * C);
  causal_conv_forward(a.data(), x.data(), w.data(), B, T, C, K, dil);
  causal_conv_forward_ref(b.data(), x.data(), w.data(), B, T, C, K, dil);
  expect_all_near(a, b, 1e-6f, "y");
  // Causality: y at t < (K-1)*dil... only sees x[0..t]; y[0] = w[:, K-1] * x[0].
  for (int64_t c = 0; c < C; c++) EXPECT_FLOAT_EQ(a[c], w[c * K + K - 1] * x[c]);
  std::vector<float> dxa(B * T * C, 0.0f), dxb(B * T * C, 0.0f), dwa(C * K, 0.0f), dwb(C * K, 0.0f);
  causal_conv_backward(dxa.data(), dwa.data(), dy.data(), x.data(), w.data(), B, T, C, K, dil);
  causal_conv_backward_ref(dxb.data(), dwb.data(), dy.data(), x.data(), w.data(), B, T, C, K, dil);
  expect_all_near(dxa, dxb, 1e-5f, "dx");
  expect_all_near(dwa, dwb, 1e-5f, "dw");
}

TEST(CausalConv, BackwardMatchesFiniteDifferences) {
  for (bool fast : {false, true}) {
    const int64_t B = 2, T = 9, C = 3, K = 4, dil = 2;
    auto x = randn(B * T * C, 34), w = randn(C * K, 35), r = randn(B * T * C, 36);
    std::vector<float> dx(B * T * C, 0.0f), dw(C * K, 0.0f);
    (fast ? causal_conv_backward : causal_conv_backward_ref)(dx.data(), dw.data(), r.data(),
                                                             x.data(), w.data(), B, T, C, K, dil);
    auto loss = [&] {
      std::vector<float> y(B * T * C);
      causal_conv_forward_ref(y.data(), x.data(), w.data(), B, T, C, K, dil);
      return weighted_sum(y, r);
    };
    expect_grad_matches(x, dx, loss, fast ? "dx fast" : "dx ref");
    expect_grad_matches(w, dw, loss, fast ? "dw fast" : "dw ref");
  }
}

TEST(CausalConv, DecodeStepsEqualFullForward) {
  const int64_t B = 2, T = 14, C = 6, K = 4, dil = 3;
  auto x = randn(B * T * C, 37), w = randn(C * K, 38);
  std::vector<float> full(B * T * C);
  causal_conv_forward_ref(full.data(), x.data(), w.data(), B, T, C, K, dil);
  for (int64_t prefix : {0, 1, 5, 9, 13}) {  // shorter and longer than the state
    std::vector<float> state(B * (K - 1) * dil * C);
    std::vector<float> xp(B * prefix * C);
    for (int64_t b = 0; b < B; b++)
      std::copy(x.begin() + b * T * C, x.begin() + (b * T + prefix) * C,
                xp.begin() + b * prefix * C);
    causal_conv_state_from_prefix(state.data(), xp.data(), B, prefix, C, K, dil);
    for (int64_t t = prefix; t < T; t++) {
      std::vector<float> xt(B * C), yt(B * C);
      for (int64_t b = 0; b < B; b++)
        std::copy(x.begin() + (b * T + t) * C, x.begin() + (b * T + t + 1) * C, xt.begin() + b * C);
      causal_conv_decode_step(yt.data(), state.data(), xt.data(), w.data(), B, C, K, dil);
      for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
          ASSERT_NEAR(yt[b * C + c], full[(b * T + t) * C + c], 1e-5f)
              << "prefix " << prefix << " t " << t << " b " << b << " c " << c;
    }
  }
}

TEST(Silu, BackwardMatchesFiniteDifferences) {
  const int64_t n = 12;
  auto y = randn(n, 39, 2.0f), res = randn(n, 40), r = randn(n, 41);
  std::vector<float> dy(n, 0.0f);
  silu_backward(dy.data(), r.data(), y.data(), n);
  expect_grad_matches(
      y, dy,
      [&] {
        std::vector<float> out(n);
        residual_silu_forward(out.data(), res.data(), y.data(), n);
        return weighted_sum(out, r);
      },
      "dy");
}

}  // namespace
}  // namespace engram::nn
