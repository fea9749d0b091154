// The widest fp32 vector the build targets, as a GCC / Clang vector-extension type: 16 lanes
// with AVX-512 (-march=native on this project's machines), 8 with AVX, 4 otherwise. Shared by the
// register-tiled kernels (nn/attention.cpp) and bench/bench_cpu_peak.cpp, which measures what one
// core's FMAs of this width reach.
#pragma once

namespace engram::nn {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float vfloat __attribute__((vector_size(kLanes * sizeof(float))));

}  // namespace engram::nn
