// nn/softmax.h: the exponential and the softmax every kernel shares (attention, SwiGLU,
// cross-entropy, the MoE router), inline so that the loops calling them vectorize.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace engram::nn {

// exp(x) for the softmaxes and SiLU, written so that loops over it vectorize (libm's expf is a
// scalar call without -ffast-math). x = n ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor
// polynomial (truncation < 2e-8 relative), 2^n put into the exponent bits. Inputs are clamped to
// [-87, 88], so e^-inf gives ~1.6e-38 instead of 0, which no sum here can notice.
// Max relative error against std::exp: ~2e-7 (tested in tests/nn/transformer_kernels_test.cpp).
// Needs no -ffast-math; -ffast-math could fold the rounding trick away, so do not build with it.
#pragma omp declare simd
inline float exp_approx(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));
  // round to nearest by the 1.5 * 2^23 trick (|x log2 e| < 2^22), which vectorizes everywhere
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// In-place stable softmax of p[0..n) (the maximum is subtracted first).
inline void softmax_inplace(float* __restrict p, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;  // vectorizes; std::max does not
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) {
    p[j] = exp_approx(p[j] - mx);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

}  // namespace engram::nn
