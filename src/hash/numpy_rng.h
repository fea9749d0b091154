// hash/numpy_rng.h: NumPy's random streams, reproduced bit for bit.
//
// Engram's hash multipliers are drawn with `np.random.default_rng(seed).integers(0, B, size=n,
// dtype=np.int64)` (DESIGN.md 2.2), so a checkpoint's row ids depend on NumPy's exact output.
// This header reproduces the three pieces that call needs:
//   SeedSequence  numpy.random.SeedSequence: entropy words -> hashed pool of 4 uint32 -> state
//   Pcg64         numpy.random.PCG64: 128-bit LCG with XSL-RR output, seeded from a SeedSequence
//   integers_i64  numpy.random.Generator.integers(low, high, size, dtype=np.int64), i.e. NumPy's
//                 bounded-integer fill with Lemire's rejection (32-bit buffered draws when the
//                 range fits in 32 bits, 64-bit draws otherwise)
// Not a general random library: no floats, no spawn keys, no other bit generators.
// Thread safety: a Pcg64 is a plain value; use one per thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace engram {

// numpy.random.SeedSequence with no spawn key and the default pool size (4 words).
class SeedSequence {
 public:
  static constexpr int kPoolSize = 4;

  // entropy: the seed as little-endian uint32 words, as NumPy splits a Python int
  // (seed_words() below). An empty span is treated as the single word 0, as NumPy does for 0.
  explicit SeedSequence(std::span<const uint32_t> entropy);
  // Shorthand for SeedSequence(seed_words(seed)).
  explicit SeedSequence(uint64_t seed);

  // SeedSequence.generate_state(n_words, np.uint32) / (n_words, np.uint64).
  std::vector<uint32_t> generate_state_u32(int64_t n_words) const;
  std::vector<uint64_t> generate_state_u64(int64_t n_words) const;

  const uint32_t* pool() const { return pool_; }

 private:
  uint32_t pool_[kPoolSize];
};

// A non-negative integer as NumPy's SeedSequence sees it: little-endian uint32 words,
// at least one word (0 -> {0}). Works for seeds up to 128 bits (seed + 10007 * layer).
std::vector<uint32_t> seed_words(unsigned __int128 value);

// numpy.random.PCG64 (the bit generator behind np.random.default_rng).
class Pcg64 {
 public:
  // Seeded exactly as PCG64(SeedSequence): 4 uint64 state words -> (state, increment).
  explicit Pcg64(const SeedSequence& seq);
  // np.random.default_rng(seed) for a non-negative seed of up to 128 bits.
  static Pcg64 from_seed(unsigned __int128 seed);

  // PCG64.random_raw(): advance, then XSL-RR output of the new state.
  uint64_t next_u64();
  // NumPy's next_uint32: the low half of a 64-bit draw, then the buffered high half.
  uint32_t next_u32();

  unsigned __int128 state() const { return state_; }
  unsigned __int128 increment() const { return inc_; }

 private:
  unsigned __int128 state_ = 0;
  unsigned __int128 inc_ = 0;
  bool has_u32_ = false;
  uint32_t u32_ = 0;
};

// Generator.integers(low, high, size=n, dtype=np.int64) with endpoint=False: n values in
// [low, high). Throws Errc::invalid_argument when low >= high (NumPy raises ValueError).
// Advances rng exactly as NumPy does, so consecutive calls continue the same stream.
std::vector<int64_t> integers_i64(Pcg64& rng, int64_t low, int64_t high, int64_t n);

}  // namespace engram
