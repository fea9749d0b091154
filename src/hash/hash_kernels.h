// The n-gram hash kernels behind NgramHasher: a plain reference version written to read like
// DESIGN.md 2.3, and the fast version (AVX-512 floor modulo across heads where the CPU has it,
// a Barrett-reduction scalar loop otherwise) that tests/hash/hash_kernels_test.cpp checks
// against it. Private to src/hash.
#pragma once

#include <cstdint>
#include <vector>

#include "engram/hasher.h"

namespace engram::hash_detail {

// Lookback history before position 0 of a row: ids[k] / dead[k] describe position -1-k,
// valid for k < avail. avail = 0 means the row is the start of its sequence.
struct History {
  const int64_t* ids = nullptr;
  const uint8_t* dead = nullptr;
  int64_t avail = 0;
};

// Reference: one row of compressed ids x [T] (dead [T] or null) -> out [T, C].
void hash_row_reference(const LayerHashLayout& layout, int max_ngram, int64_t n_head, int64_t pad,
                        const int64_t* x, const uint8_t* dead, int64_t time, History history,
                        int64_t* out, bool add_offsets);

// Per-layer constants of the fast kernel.
struct LayerKernel {
  int max_ngram = 0;
  int64_t n_head = 0;
  int64_t n_head_padded = 0;          // n_head rounded up to 8 (SIMD lanes)
  int64_t pad = 0;                    // pad'
  std::vector<uint64_t> multipliers;  // [N]
  std::vector<int64_t> primes;        // [N-1, n_head_padded] (padding lanes hold 1)
  std::vector<int64_t> offsets;       // [N-1, n_head_padded]
  std::vector<uint64_t> barrett;      // [N-1, n_head_padded] floor((2^64 - 1) / p)
  std::vector<int64_t> wrap;          // [N-1, n_head_padded] 2^64 mod p
  std::vector<double> inverse;        // [N-1, n_head_padded] 1.0 / p
  bool use_simd = false;              // AVX-512 available and every prime >= kSimdMinPrime

  // The floating-point quotient is within 2^-4 of the true one only when |mix| / p < 2^47.
  static constexpr int64_t kSimdMinPrime = int64_t{1} << 16;

  LayerKernel(const LayerHashLayout& layout, int max_ngram, int64_t n_head, int64_t pad);
};

// True when this build has the AVX-512 path (compiled with AVX512F and AVX512DQ).
bool simd_compiled();

// Fast: positions [t0, t1) of one row; x and dead point at the row's position 0 (the kernel
// reads x[t - s] for t - s >= 0 and the history below that). out points at the row's [T, C].
void hash_row_fast(const LayerKernel& kernel, const int64_t* x, const uint8_t* dead, int64_t t0,
                   int64_t t1, History history, int64_t* out, bool add_offsets);

}  // namespace engram::hash_detail
