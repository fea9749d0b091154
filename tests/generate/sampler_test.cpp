// sample_token and sampling_distribution (engram/sampler.h) against the distribution they
// promise: over many draws at a fixed seed, the frequencies of each id match softmax(logits / T)
// (over the kept set, renormalized, with top-k and top-p) by a chi-square test; excluded ids never
// come out; temperature 0 is the argmax; a seed's stream of ids stays what it was.
//
// The chi-square critical values are the 0.1% upper quantiles of the chi-square distribution
// (degrees of freedom = kept ids - 1). The draws are seeded, so each test is deterministic: a
// correct sampler passes with these seeds, and a wrong distribution (a missing temperature, an
// unrenormalized kept set, an off-by-one in the nucleus) lands far above the critical value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "engram/error.h"
#include "engram/sampler.h"
#include "test_helpers.h"

namespace engram {
namespace {

// Upper 0.1% quantiles of chi-square with df = 1..7 degrees of freedom.
constexpr double kChi2Critical[] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322};

const std::vector<float> kLogits = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.2f, 1.4f, 0.9f};

// What the options promise, written out plainly: softmax(logits / T) over every id; keep the k
// largest (ties: lower id first); keep the shortest most-likely-first prefix whose probability
// reaches top_p; renormalize. Returns id -> probability for the kept ids.
std::map<int32_t, double> expected_distribution(const std::vector<float>& logits,
                                                const SamplingOptions& o) {
  const size_t V = logits.size();
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (o.top_k > 0 && size_t(o.top_k) < V) order.resize(size_t(o.top_k));
  std::vector<double> p;
  double z = 0;
  for (int32_t id : order) {
    p.push_back(std::exp(double(logits[id]) / double(o.temperature)));
    z += p.back();
  }
  size_t keep = order.size();
  double cum = 0;
  for (size_t i = 0; i < order.size() && o.top_p < 1.0f; i++) {
    cum += p[i] / z;
    if (cum >= double(o.top_p)) {
      keep = i + 1;
      break;
    }
  }
  double kept_z = 0;
  for (size_t i = 0; i < keep; i++) kept_z += p[i];
  std::map<int32_t, double> out;
  for (size_t i = 0; i < keep; i++) out[order[i]] = p[i] / kept_z;
  return out;
}

struct Chi2 {
  double statistic = 0;
  int df = 0;
  int64_t excluded = 0;  // draws of ids outside the expected set
};

Chi2 chi_square(const std::vector<float>& logits, const SamplingOptions& o, int64_t draws) {
  const std::map<int32_t, double> want = expected_distribution(logits, o);
  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> count(logits.size(), 0);
  for (int64_t i = 0; i < draws; i++) count[size_t(sample_token(logits, o, rng))]++;
  Chi2 c;
  for (size_t id = 0; id < logits.size(); id++) {
    const auto it = want.find(int32_t(id));
    if (it == want.end()) {
      c.excluded += count[id];
      continue;
    }
    const double e = double(draws) * it->second;
    c.statistic += (double(count[id]) - e) * (double(count[id]) - e) / e;
  }
  c.df = int(want.size()) - 1;
  return c;
}

void expect_matches_softmax(const SamplingOptions& o, int expected_df) {
  const Chi2 c = chi_square(kLogits, o, 200000);
  ASSERT_EQ(c.df, expected_df);
  EXPECT_EQ(c.excluded, 0);
  ::testing::Test::RecordProperty("chi2_df" + std::to_string(c.df), std::to_string(c.statistic));
  EXPECT_LT(c.statistic, kChi2Critical[c.df])
      << "T " << o.temperature << " top_k " << o.top_k << " top_p " << o.top_p;
}

TEST(Sampler, FrequenciesMatchSoftmaxOverTemperature) {
  for (float t : {0.5f, 1.0f, 2.0f}) {
    SamplingOptions o{t, 0, 1.0f, 42};
    expect_matches_softmax(o, 7);
  }
}

TEST(Sampler, FrequenciesMatchTheRenormalizedTopK) {
  expect_matches_softmax(SamplingOptions{1.0f, 3, 1.0f, 7}, 2);
  expect_matches_softmax(SamplingOptions{0.7f, 5, 1.0f, 8}, 4);
}

TEST(Sampler, FrequenciesMatchTheRenormalizedNucleus) {
  // At T = 1 the sorted probabilities are 0.364, 0.200, 0.134, 0.121, 0.081, ...: top_p 0.6 keeps
  // three ids, 0.75 four.
  expect_matches_softmax(SamplingOptions{1.0f, 0, 0.6f, 9}, 2);
  expect_matches_softmax(SamplingOptions{1.0f, 0, 0.75f, 10}, 3);
  // Both cuts: top_k first, then the nucleus of what is left.
  expect_matches_softmax(SamplingOptions{1.5f, 4, 0.8f, 11}, 2);
}

TEST(Sampler, DistributionIsTheOneDrawnFrom) {
  for (const SamplingOptions& o :
       {SamplingOptions{1.0f, 0, 1.0f, 0}, SamplingOptions{0.7f, 3, 1.0f, 0},
        SamplingOptions{1.0f, 0, 0.75f, 0}, SamplingOptions{1.5f, 4, 0.8f, 0}}) {
    const TokenDistribution d = sampling_distribution(kLogits, o);
    const std::map<int32_t, double> want = expected_distribution(kLogits, o);
    ASSERT_EQ(d.ids.size(), want.size());
    double sum = 0;
    for (size_t i = 0; i < d.ids.size(); i++) {
      ASSERT_TRUE(want.count(d.ids[i])) << d.ids[i];
      EXPECT_NEAR(d.probs[i], want.at(d.ids[i]), 1e-12);
      if (i > 0) {
        EXPECT_GE(d.probs[i - 1], d.probs[i]);
      }
      sum += d.probs[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

TEST(Sampler, TopKAndTopPNeverEmitAnExcludedId) {
  // Random logits over 64 ids with many near-ties; each case draws 2000 times.
  for (uint64_t seed = 0; seed < 20; seed++) {
    std::vector<float> logits = testing::randn(64, 1000 + seed, 2.0f);
    for (size_t i = 0; i < logits.size(); i += 7) logits[i] = logits[0];  // exact ties
    for (const SamplingOptions& o :
         {SamplingOptions{1.0f, 5, 1.0f, seed}, SamplingOptions{2.0f, 0, 0.5f, seed},
          SamplingOptions{0.8f, 12, 0.9f, seed}, SamplingOptions{1.0f, 1, 1.0f, seed}}) {
      const std::map<int32_t, double> kept = expected_distribution(logits, o);
      std::mt19937_64 rng(seed);
      for (int i = 0; i < 2000; i++) {
        const int32_t id = sample_token(logits, o, rng);
        ASSERT_TRUE(kept.count(id))
            << "id " << id << " outside the kept set of " << kept.size() << " (seed " << seed
            << ", top_k " << o.top_k << ", top_p " << o.top_p << ")";
      }
    }
  }
}

TEST(Sampler, TemperatureZeroIsArgmaxAndDrawsNothing) {
  for (uint64_t seed = 0; seed < 50; seed++) {
    const std::vector<float> logits = testing::randn(100, seed);
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    std::mt19937_64 rng(seed), untouched(seed);
    EXPECT_EQ(sample_token(logits, SamplingOptions{0.0f, 40, 0.95f, seed}, rng), want);
    EXPECT_EQ(rng, untouched);  // a greedy step leaves the stream where it was
  }
  // Equal maxima: the lowest id.
  const std::vector<float> tied = {0.0f, 3.0f, 1.0f, 3.0f};
  std::mt19937_64 rng(0);
  EXPECT_EQ(sample_token(tied, SamplingOptions{0.0f, 0, 1.0f, 0}, rng), 1);
  EXPECT_EQ(sampling_distribution(tied, SamplingOptions{0.0f, 0, 1.0f, 0}).ids,
            std::vector<int32_t>{1});
}

TEST(Sampler, TopKOfOneIsArgmaxAtAnyTemperature) {
  const std::vector<float> logits = testing::randn(30, 5);
  const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; i++)
    EXPECT_EQ(sample_token(logits, SamplingOptions{5.0f, 1, 1.0f, 0}, rng), want);
}

// The ids a seed gives must not move: texts generated before stay reproducible. These are the
// first draws of seed 0 over kLogits with the CLI's defaults (T 0.8, top-k 40, top-p 0.95),
// as the sampler gave them when it lived in the CLI.
TEST(Sampler, SeedStreamIsStable) {
  std::mt19937_64 rng(0);
  std::vector<int32_t> got;
  for (int i = 0; i < 16; i++) got.push_back(sample_token(kLogits, SamplingOptions{}, rng));
  const std::vector<int32_t> want = {3, 4, 3, 6, 6, 3, 6, 3, 7, 1, 3, 0, 1, 3, 3, 3};
  EXPECT_EQ(got, want);
}

TEST(Sampler, BadOptionsAreRefused) {
  std::mt19937_64 rng(0);
  Errc code{};
  EXPECT_NE(testing::error_of([&] { sample_token(kLogits, SamplingOptions{-1.0f}, rng); }, &code)
                .find("temperature"),
            std::string::npos);
  EXPECT_EQ(code, Errc::invalid_argument);
  EXPECT_NE(testing::error_of([&] {
              sample_token(kLogits, SamplingOptions{1.0f, 0, 0.0f}, rng);
            }).find("top_p"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              sample_token(kLogits, SamplingOptions{1.0f, 0, 1.5f}, rng);
            }).find("top_p"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              sample_token(kLogits, SamplingOptions{1.0f, -2}, rng);
            }).find("top_k"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { sample_token({}, SamplingOptions{}, rng); }).find("no logits"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              sample_token(kLogits, SamplingOptions{std::nanf(""), 0}, rng);
            }).find("temperature"),
            std::string::npos);
}

}  // namespace
}  // namespace engram
