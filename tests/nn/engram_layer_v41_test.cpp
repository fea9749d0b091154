// Tests of the DeepSeek-V4.1-form EngramLayerV41 (engram/engram_layer.h): the fast forward
// against the plain reference (engram_v41_forward_ref), the token mask, the zero-dot gate, and
// the gather from an fp8 table against dequantizing the same rows by hand. The PyTorch parity
// test is tests/python/test_layer_v41.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engram/engram_layer.h"
#include "engram/error.h"
#include "engram/row_format.h"
#include "engram/row_gather.h"
#include "nn/kernels_ref.h"
#include "test_helpers.h"

namespace engram {
namespace {

using engram::testing::randn;

struct Case {
  EngramV41Shape shape;
  std::vector<uint8_t> wkv_w, wkv_s;
  std::vector<float> q, k;
};

Case make_case(int64_t hc, int64_t d, int64_t cols, int64_t head_dim) {
  Case c;
  c.shape.hidden = d;
  c.shape.hc = hc;
  c.shape.cols = cols;
  c.shape.head_dim = head_dim;
  const int64_t out = (hc + 1) * d, in = cols * head_dim;
  auto w = randn(out * in, 1, 0.05f);
  c.wkv_w.resize(out * in);
  c.wkv_s.resize(((out + 31) / 32) * ((in + 31) / 32));
  quantize_blocks(w.data(), out, in, c.wkv_w.data(), c.wkv_s.data());
  c.q = randn(hc * d, 2, 0.3f);
  c.k = randn(hc * d, 3, 0.3f);
  for (auto& x : c.q) x += 1.0f;
  for (auto& x : c.k) x += 1.0f;
  return c;
}

TEST(EngramLayerV41, ForwardMatchesReference) {
  for (int64_t hc : {1, 4}) {
    Case c = make_case(hc, 64, 3, 32);
    EngramLayerV41 layer(c.shape, c.wkv_w, c.wkv_s, c.q, c.k);
    const int64_t N = 9, HD = hc * 64;
    auto rows = randn(N * c.shape.emb_dim(), 4);
    auto hidden = randn(N * HD, 5);
    std::fill_n(hidden.begin(), 64, 0.0f);  // token 0, branch 0: a zero dot (copysign: +)
    std::vector<uint8_t> mask = {1, 1, 0, 1, 1, 1, 0, 1, 1};
    std::vector<float> fast(N * HD), ref(N * HD);
    layer.forward_rows(fast.data(), hidden.data(), rows.data(), mask.data(), N);
    nn::engram_v41_forward_ref(ref.data(), hidden.data(), rows.data(), mask.data(),
                               layer.wkv().data(), c.q.data(), c.k.data(), c.shape, N);
    float scale = 0.0f;
    for (float v : ref) scale = std::max(scale, std::fabs(v));
    for (int64_t i = 0; i < N * HD; i++) ASSERT_NEAR(fast[i], ref[i], 1e-5f * scale) << i;
    for (int64_t i = 2 * HD; i < 3 * HD; i++) EXPECT_EQ(fast[i], hidden[i]);  // masked
    // Token 0 branch 0: h = 0 so out = gate * value with gate = sigmoid(+sqrt(1e-6)).
    std::vector<float> kv((hc + 1) * 64);
    nn::linear_forward_ref(kv.data(), rows.data(), layer.wkv().data(), nullptr, 1,
                           c.shape.emb_dim(), (hc + 1) * 64);
    const float gate = 1.0f / (1.0f + std::exp(-1e-3f));
    EXPECT_NEAR(fast[5], gate * kv[hc * 64 + 5], 1e-5f);
  }
}

TEST(EngramLayerV41, GathersAndDequantizesTableRows) {
  Case c = make_case(2, 32, 2, 32);
  EngramLayerV41 layer(c.shape, c.wkv_w, c.wkv_s, c.q, c.k);
  const int64_t rows = 20, W = 32;
  auto t = randn(rows * W, 6);
  const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, W);
  std::vector<uint8_t> data(rows * W), scale(rows);
  for (int64_t r = 0; r < rows; r++)
    quantize_row(fmt, t.data() + r * W, data.data() + r * W, scale.data() + r);
  const int64_t N = 3;
  std::vector<int64_t> ids = {0, 19, 7, 7, 3, 0};
  std::vector<float> hidden = randn(N * 2 * 32, 7), a(N * 64), b(N * 64);
  EXPECT_THROW(layer.forward(a.data(), hidden.data(), ids.data(), nullptr, N), Error);  // no table
  layer.attach_table({data.data(), scale.data(), rows});
  layer.forward(a.data(), hidden.data(), ids.data(), nullptr, N);
  std::vector<float> e(N * 2 * W);
  for (int64_t i = 0; i < N * 2; i++)
    dequantize_row(fmt, data.data() + ids[i] * W, scale.data() + ids[i], e.data() + i * W);
  layer.forward_rows(b.data(), hidden.data(), e.data(), nullptr, N);
  EXPECT_EQ(a, b);
  ids[5] = rows;
  try {
    layer.forward(a.data(), hidden.data(), ids.data(), nullptr, N);
    FAIL() << "no throw";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), Errc::out_of_range);
  }
}

TEST(EngramLayerV41, RejectsMismatchedWeights) {
  Case c = make_case(2, 32, 2, 32);
  c.wkv_w.pop_back();
  EXPECT_THROW(EngramLayerV41(c.shape, c.wkv_w, c.wkv_s, c.q, c.k), Error);
  Case d = make_case(2, 32, 2, 32);
  d.shape.head_dim = 30;
  EXPECT_THROW(EngramLayerV41(d.shape, d.wkv_w, d.wkv_s, d.q, d.k), Error);
}

}  // namespace
}  // namespace engram
