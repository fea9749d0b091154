// sample_token and sampling_distribution (engram/sampler.h): both go through kept_set, so the
// distribution a test checks is the one the draw uses.
#include "engram/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engram/error.h"

namespace engram {

namespace {

// The ids that survive top-k and top-p, most likely first, with their unnormalized weights
// exp((logit - max) / T). Weights stay unnormalized because the draw scales its uniform by their
// sum: dividing first would change the last bits and so, rarely, the id a seed gives.
struct KeptSet {
  std::vector<int32_t> ids;
  std::vector<double> weights;
  double total = 0;
};

KeptSet kept_set(std::span<const float> logits, const SamplingOptions& a) {
  const int64_t V = int64_t(logits.size());
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Descending logit, ties by id, so the kept set never depends on the sort's stability.
  const auto by_logit = [&](int32_t x, int32_t y) {
    return logits[x] != logits[y] ? logits[x] > logits[y] : x < y;
  };
  const int64_t k = a.top_k > 0 ? std::min(a.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
  order.resize(size_t(k));
  std::vector<double> p(order.size());
  const double mx = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < order.size(); i++) {
    p[i] = std::exp((double(logits[order[i]]) - mx) / double(a.temperature));
    sum += p[i];
  }
  size_t keep = order.size();
  if (a.top_p < 1.0f) {
    double c = 0;
    for (size_t i = 0; i < order.size(); i++) {
      c += p[i] / sum;
      if (c >= double(a.top_p)) {
        keep = i + 1;
        break;
      }
    }
  }
  order.resize(keep);
  p.resize(keep);
  KeptSet s;
  s.total = std::accumulate(p.begin(), p.end(), 0.0);
  s.ids = std::move(order);
  s.weights = std::move(p);
  return s;
}

int32_t argmax(std::span<const float> logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void check_logits(std::span<const float> logits) {
  if (logits.empty()) fail(Errc::invalid_argument, "sampling: no logits (vocabulary of 0 ids)");
}

}  // namespace

void check_sampling(const SamplingOptions& a) {
  if (!(a.temperature >= 0.0f))
    fail(Errc::invalid_argument, "temperature must be >= 0, got ", a.temperature);
  if (a.top_k < 0) fail(Errc::invalid_argument, "top_k must be >= 0, got ", a.top_k);
  if (!(a.top_p > 0.0f && a.top_p <= 1.0f))
    fail(Errc::invalid_argument, "top_p must be in (0, 1], got ", a.top_p);
}

TokenDistribution sampling_distribution(std::span<const float> logits, const SamplingOptions& a) {
  check_sampling(a);
  check_logits(logits);
  TokenDistribution d;
  if (a.temperature == 0.0f) {
    d.ids = {argmax(logits)};
    d.probs = {1.0};
    return d;
  }
  KeptSet s = kept_set(logits, a);
  d.ids = std::move(s.ids);
  d.probs.resize(s.weights.size());
  for (size_t i = 0; i < s.weights.size(); i++) d.probs[i] = s.weights[i] / s.total;
  return d;
}

int32_t sample_token(std::span<const float> logits, const SamplingOptions& a,
                     std::mt19937_64& rng) {
  check_sampling(a);
  check_logits(logits);
  if (a.temperature == 0.0f) return argmax(logits);
  const KeptSet s = kept_set(logits, a);
  const double u = double(rng() >> 11) * 0x1.0p-53 * s.total;
  double c = 0;
  for (size_t i = 0; i < s.ids.size(); i++) {
    c += s.weights[i];
    if (u < c) return s.ids[i];
  }
  return s.ids.back();
}

}  // namespace engram
