// Small helpers shared by the C++ tests: seeded random tensors, the scalar loss used by
// finite-difference gradient checks, the message of an expected error, and the rule for a test
// whose asset is missing (skip on a developer's machine, fail in CI).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engram/error.h"

namespace engram::testing {

// n values drawn from N(0, scale^2), the same for the same seed on every platform's libstdc++.
inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// sum_i out[i] * w[i] in double: a scalar loss whose gradient with respect to out is w.
inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& w) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); i++) s += double(out[i]) * w[i];
  return s;
}

// The message of the engram::Error that f() throws (and its code into *code), or "<no error>".
template <typename F>
std::string error_of(F&& f, Errc* code = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "<no error>";
}

// True when the environment says CI=true (what CI services and .ci/run set).
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace engram::testing

// In a test body: when `asset` does not exist, skips the test, or fails it under CI=true, where a
// parity test that did not run must not count as passed. `asset` is a file or folder path.
#define ENGRAM_REQUIRE_ASSET(asset)                                          \
  do {                                                                       \
    const std::filesystem::path engram_asset_ = (asset);                     \
    if (!std::filesystem::exists(engram_asset_)) {                           \
      if (::engram::testing::in_ci())                                        \
        GTEST_FAIL() << "asset missing: " << engram_asset_.string()          \
                     << " (CI=true: fetch it with scripts/fetch-assets.sh)"; \
      GTEST_SKIP() << "asset missing: " << engram_asset_.string();           \
    }                                                                        \
  } while (0)
