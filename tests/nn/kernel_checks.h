// The two checks every kernel test in tests/nn makes: a fast kernel's output against its `_ref`
// twin, and an analytic gradient against central finite differences of the forward (fp32, eps
// 1e-2 on O(1) inputs, losses summed in double; tolerance 2e-3 absolute + 1e-2 relative).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace engram::testing {

// Central differences of loss() with respect to every entry of x, against the analytic grad.
inline void expect_grad_matches(std::vector<float>& x, const std::vector<float>& grad,
                                const std::function<double()>& loss, const char* what) {
  ASSERT_EQ(x.size(), grad.size());
  const float eps = 1e-2f;
  for (size_t i = 0; i < x.size(); i++) {
    const float keep = x[i];
    x[i] = keep + eps;
    const double up = loss();
    x[i] = keep - eps;
    const double down = loss();
    x[i] = keep;
    const double fd = (up - down) / (2.0 * eps);
    EXPECT_NEAR(grad[i], fd, 2e-3 + 1e-2 * std::fabs(fd)) << what << " index " << i;
  }
}

// a == b within tol relative to b's largest magnitude (at least 1).
inline void expect_all_near(const std::vector<float>& a, const std::vector<float>& b, float tol,
                            const char* what) {
  ASSERT_EQ(a.size(), b.size());
  float scale = 0.0f;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); i++)
    ASSERT_NEAR(a[i], b[i], tol * std::max(1.0f, scale)) << what << " index " << i;
}

}  // namespace engram::testing
