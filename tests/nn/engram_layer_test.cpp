// Tests of the paper-form EngramLayer (engram/engram_layer.h): reference parameter names and
// shapes, input checks, backward against finite differences of forward for every parameter
// and the hidden state, accumulation over two backward calls, and decode == full forward.
// The PyTorch parity tests are in tests/python/test_layer.py.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "engram/engram_layer.h"
#include "nn/kernels.h"
#include "engram/error.h"
#include "test_helpers.h"

namespace engram {
namespace {

using engram::testing::randn;

EngramLayerShape small_shape(int64_t hc) {
  EngramLayerShape s;
  s.hidden = 8;
  s.hc = hc;
  s.row_width = 3;
  s.primes = {5, 7, 11, 13};
  s.kernel = 4;
  s.dilation = 2;
  return s;
}

// Every parameter random (so the conv and norms are not at their identity init).
void randomize(EngramLayer& layer, uint64_t seed) {
  for (auto& t : layer.named_parameters()) {
    const bool norm = t.name.find("norm") != std::string::npos;
    auto v = randn(t.numel(), seed++, norm ? 0.2f : 0.5f);
    for (int64_t i = 0; i < t.numel(); i++) t.data[i] = v[i] + (norm ? 1.0f : 0.0f);
  }
}

std::vector<int64_t> random_hash_ids(const EngramLayerShape& s, int64_t N, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ids(N * s.cols());
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < s.cols(); c++) ids[n * s.cols() + c] = rng() % s.primes[c];
  return ids;
}

TEST(EngramLayer, ParameterNamesAndShapesFollowTheDemo) {
  EngramLayer layer(small_shape(2));
  std::map<std::string, std::vector<int64_t>> got;
  for (auto& t : layer.named_parameters()) got[t.name] = t.shape;
  const std::map<std::string, std::vector<int64_t>> want = {
      {"multi_head_embedding.embedding.weight", {36, 3}},
      {"short_conv.conv.weight", {16, 1, 4}},
      {"short_conv.norms.0.weight", {8}},
      {"short_conv.norms.1.weight", {8}},
      {"value_proj.weight", {8, 12}},
      {"value_proj.bias", {8}},
      {"key_projs.0.weight", {8, 12}},
      {"key_projs.0.bias", {8}},
      {"key_projs.1.weight", {8, 12}},
      {"key_projs.1.bias", {8}},
      {"norm1.0.weight", {8}},
      {"norm1.1.weight", {8}},
      {"norm2.0.weight", {8}},
      {"norm2.1.weight", {8}},
  };
  EXPECT_EQ(got, want);
  // Initialization: norms 1, conv 0, biases 0, weights small and not all equal.
  const auto& p = layer.params();
  EXPECT_EQ(p.norm1[0], 1.0f);
  EXPECT_EQ(p.conv_w[0], 0.0f);
  EXPECT_EQ(p.b_vk[0], 0.0f);
  EXPECT_NE(p.w_vk[0], p.w_vk[1]);
  EXPECT_LT(std::fabs(p.table[0]), 0.2f);
}

TEST(EngramLayer, RejectsBadInput) {
  EXPECT_THROW(EngramLayer(EngramLayerShape{}), Error);
  EngramLayer layer(small_shape(1));
  std::vector<float> h(2 * 8), out(2 * 8), dh(2 * 8);
  std::vector<int64_t> ids = {0, 0, 0, 0, 4, 6, 11, 0};  // column 2 has 11 rows: id 11 is out
  try {
    layer.forward(out.data(), h.data(), ids.data(), 1, 2);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_NE(std::string(e.what()).find("position 1, column 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(layer.backward(dh.data(), out.data()), Error);
  EXPECT_THROW(layer.decode_step(out.data(), h.data(), ids.data(), 1), Error);
}

TEST(EngramLayer, BackwardMatchesFiniteDifferences) {
  for (int64_t hc : {1, 2}) {
    const EngramLayerShape s = small_shape(hc);
    EngramLayer layer(s, 7);
    randomize(layer, 100);
    const int64_t B = 2, T = 6, N = B * T, HD = hc * s.hidden;
    auto hidden = randn(N * HD, 1);
    auto ids = random_hash_ids(s, N, 2);
    ids[3] = ids[0];  // the same row read twice: gradients must add up
    auto r = randn(N * HD, 3);
    std::vector<float> out(N * HD), dhidden(N * HD, 0.0f);
    layer.zero_grad();
    layer.forward(out.data(), hidden.data(), ids.data(), B, T);
    layer.backward(dhidden.data(), r.data());

    auto loss = [&] {
      std::vector<float> o(N * HD);
      layer.forward(o.data(), hidden.data(), ids.data(), B, T);
      double l = 0.0;
      for (size_t i = 0; i < o.size(); i++) l += double(o[i]) * r[i];
      return l;
    };
    // Central differences in fp32 with eps 1e-2: a few entries of every tensor.
    auto check = [&](float* x, float analytic, const std::string& what) {
      const float eps = 1e-3f, keep = *x;
      *x = keep + eps;
      const double up = loss();
      *x = keep - eps;
      const double down = loss();
      *x = keep;
      const double fd = (up - down) / (2.0 * eps);
      EXPECT_NEAR(analytic, fd, 3e-3 + 2e-2 * std::fabs(fd)) << what << " hc " << hc;
    };
    for (int64_t i = 0; i < N * HD; i += 7) check(&hidden[i], dhidden[i], "hidden");
    auto grads = layer.named_grads();
    for (auto& p : layer.named_parameters()) {
      if (p.name == "multi_head_embedding.embedding.weight") continue;
      const auto& g = *std::find_if(grads.begin(), grads.end(),
                                    [&](const NamedTensor& t) { return t.name == p.name; });
      for (int64_t i = 0; i < p.numel(); i += std::max<int64_t>(1, p.numel() / 5))
        check(&p.data[i], g.data[i], p.name);
    }
    // The table: every row read, dense from the sparse gradient.
    std::vector<float> dtable(s.table_rows() * s.row_width, 0.0f);
    nn::row_grads_add_to_dense(dtable.data(), layer.table_grad());
    const auto& tg = layer.table_grad();
    for (size_t k = 0; k < tg.rows.size(); k += 3)
      for (int64_t j = 0; j < s.row_width; j++) {
        const int64_t i = tg.rows[k] * s.row_width + j;
        check(&layer.named_parameters()[0].data[i], dtable[i], "table");
      }
  }
}

TEST(EngramLayer, BackwardAccumulatesUntilZeroGrad) {
  const EngramLayerShape s = small_shape(2);
  EngramLayer layer(s, 1);
  randomize(layer, 5);
  const int64_t B = 1, T = 5, N = B * T, HD = 2 * s.hidden;
  auto hidden = randn(N * HD, 6);
  auto ids = random_hash_ids(s, N, 7);
  auto r = randn(N * HD, 8);
  std::vector<float> out(N * HD), dh1(N * HD, 0.0f), dh2(N * HD, 0.0f);
  layer.forward(out.data(), hidden.data(), ids.data(), B, T);
  layer.backward(dh1.data(), r.data());
  const auto once = layer.table_grad().grads;
  const float w_once = layer.named_grads()[0].data[3];
  layer.backward(dh2.data(), r.data());
  EXPECT_EQ(dh1, dh2);  // dhidden is +=, here into separate buffers
  ASSERT_EQ(layer.table_grad().grads.size(), once.size());
  for (size_t i = 0; i < once.size(); i++)
    EXPECT_NEAR(layer.table_grad().grads[i], 2.0f * once[i], 1e-6f);
  EXPECT_NEAR(layer.named_grads()[0].data[3], 2.0f * w_once, 1e-6f);
  layer.zero_grad();
  EXPECT_TRUE(layer.table_grad().rows.empty());
  EXPECT_EQ(layer.named_grads()[0].data[3], 0.0f);
}

TEST(EngramLayer, DecodeStepsEqualFullForward) {
  for (int64_t hc : {1, 3}) {
    const EngramLayerShape s = small_shape(hc);
    EngramLayer layer(s, 3);
    randomize(layer, 50);
    const int64_t B = 2, T = 12, N = B * T, HD = hc * s.hidden;
    auto hidden = randn(N * HD, 9);
    auto ids = random_hash_ids(s, N, 10);
    std::vector<float> full(N * HD);
    layer.forward(full.data(), hidden.data(), ids.data(), B, T);
    for (int64_t prefill : {0, 1, 4, 7}) {
      std::vector<float> hp(B * std::max<int64_t>(prefill, 1) * HD);
      std::vector<int64_t> ip(B * std::max<int64_t>(prefill, 1) * s.cols());
      if (prefill == 0) {
        layer.reset_decode(B);
      } else {
        for (int64_t b = 0; b < B; b++) {
          std::copy_n(hidden.begin() + b * T * HD, prefill * HD, hp.begin() + b * prefill * HD);
          std::copy_n(ids.begin() + b * T * s.cols(), prefill * s.cols(),
                      ip.begin() + b * prefill * s.cols());
        }
        std::vector<float> o(B * prefill * HD);
        layer.forward(o.data(), hp.data(), ip.data(), B, prefill);
      }
      for (int64_t t = prefill; t < T; t++) {
        std::vector<float> ht(B * HD), ot(B * HD);
        std::vector<int64_t> it(B * s.cols());
        for (int64_t b = 0; b < B; b++) {
          std::copy_n(hidden.begin() + (b * T + t) * HD, HD, ht.begin() + b * HD);
          std::copy_n(ids.begin() + (b * T + t) * s.cols(), s.cols(), it.begin() + b * s.cols());
        }
        layer.decode_step(ot.data(), ht.data(), it.data(), B);
        for (int64_t b = 0; b < B; b++)
          for (int64_t j = 0; j < HD; j++)
            ASSERT_NEAR(ot[b * HD + j], full[(b * T + t) * HD + j], 1e-5f)
                << "hc " << hc << " prefill " << prefill << " t " << t << " b " << b;
      }
    }
  }
}

}  // namespace
}  // namespace engram
