// NumPy's SeedSequence, PCG64 and Generator.integers(dtype=int64), reproduced bit for bit.
// Written from NumPy's documented algorithms (bit_generator.pyx, pcg64.h, distributions.c);
// tests/python/test_hash_rng.py compares every piece with /usr/bin/python3's NumPy.
#include "hash/numpy_rng.h"

#include "engram/error.h"

namespace engram {
namespace {

// SeedSequence's hashing constants (O'Neill's seed_seq_fe, as NumPy uses them).
constexpr uint32_t kInitA = 0x43b0d7e5u;
constexpr uint32_t kMultA = 0x931e8875u;
constexpr uint32_t kInitB = 0x8b51f9ddu;
constexpr uint32_t kMultB = 0x58f38dedu;
constexpr uint32_t kMixMultL = 0xca01f9ddu;
constexpr uint32_t kMixMultR = 0x4973f715u;
constexpr int kXShift = 16;  // half the bits of a uint32

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128).
constexpr unsigned __int128 kPcgMult =
    (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) | 4865540595714422341ULL;

uint64_t rotr64(uint64_t value, unsigned rot) {
  return (value >> rot) | (value << ((64u - rot) & 63u));
}

// Lemire's bounded draw in [0, rng] for rng < 2^32 - 1, from 32-bit draws
// (NumPy's buffered_bounded_lemire_uint32; the "buffer" is the generator's own half-word).
uint32_t bounded_lemire_u32(Pcg64& gen, uint32_t rng) {
  const uint32_t rng_excl = rng + 1;
  uint64_t m = static_cast<uint64_t>(gen.next_u32()) * rng_excl;
  uint32_t leftover = static_cast<uint32_t>(m);
  if (leftover < rng_excl) {
    const uint32_t threshold = (UINT32_MAX - rng) % rng_excl;  // 2^32 mod rng_excl
    while (leftover < threshold) {
      m = static_cast<uint64_t>(gen.next_u32()) * rng_excl;
      leftover = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

// The same for 64-bit ranges, rng < 2^64 - 1 (NumPy's bounded_lemire_uint64).
uint64_t bounded_lemire_u64(Pcg64& gen, uint64_t rng) {
  const uint64_t rng_excl = rng + 1;
  unsigned __int128 m = static_cast<unsigned __int128>(gen.next_u64()) * rng_excl;
  uint64_t leftover = static_cast<uint64_t>(m);
  if (leftover < rng_excl) {
    const uint64_t threshold = (UINT64_MAX - rng) % rng_excl;  // 2^64 mod rng_excl
    while (leftover < threshold) {
      m = static_cast<unsigned __int128>(gen.next_u64()) * rng_excl;
      leftover = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace

std::vector<uint32_t> seed_words(unsigned __int128 value) {
  std::vector<uint32_t> words;
  do {
    words.push_back(static_cast<uint32_t>(value));
    value >>= 32;
  } while (value != 0);
  return words;
}

SeedSequence::SeedSequence(std::span<const uint32_t> entropy) {
  const uint32_t zero = 0;
  if (entropy.empty()) entropy = std::span<const uint32_t>(&zero, 1);
  uint32_t hash_const = kInitA;
  // Hash the first kPoolSize words into the pool (zeros when the entropy is shorter).
  for (int i = 0; i < kPoolSize; ++i) {
    const uint32_t word = static_cast<size_t>(i) < entropy.size() ? entropy[i] : 0u;
    pool_[i] = hashmix(word, hash_const);
  }
  // Let every pool word influence every other one.
  for (int src = 0; src < kPoolSize; ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
    }
  }
  // Fold in any entropy beyond the pool size.
  for (size_t src = kPoolSize; src < entropy.size(); ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      pool_[dst] = mix(pool_[dst], hashmix(entropy[src], hash_const));
    }
  }
}

SeedSequence::SeedSequence(uint64_t seed) : SeedSequence(seed_words(seed)) {}

std::vector<uint32_t> SeedSequence::generate_state_u32(int64_t n_words) const {
  if (n_words < 0) fail(Errc::invalid_argument, "SeedSequence: negative word count ", n_words);
  std::vector<uint32_t> state(static_cast<size_t>(n_words));
  uint32_t hash_const = kInitB;
  for (int64_t i = 0; i < n_words; ++i) {
    uint32_t value = pool_[i % kPoolSize];
    value ^= hash_const;
    hash_const *= kMultB;
    value *= hash_const;
    value ^= value >> kXShift;
    state[static_cast<size_t>(i)] = value;
  }
  return state;
}

std::vector<uint64_t> SeedSequence::generate_state_u64(int64_t n_words) const {
  if (n_words < 0) fail(Errc::invalid_argument, "SeedSequence: negative word count ", n_words);
  // NumPy draws twice as many uint32 words and reads them as little-endian uint64 pairs.
  const std::vector<uint32_t> words = generate_state_u32(2 * n_words);
  std::vector<uint64_t> state(static_cast<size_t>(n_words));
  for (size_t i = 0; i < state.size(); ++i) {
    state[i] =
        static_cast<uint64_t>(words[2 * i]) | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
  }
  return state;
}

Pcg64::Pcg64(const SeedSequence& seq) {
  const std::vector<uint64_t> words = seq.generate_state_u64(4);
  const unsigned __int128 initstate = (static_cast<unsigned __int128>(words[0]) << 64) | words[1];
  const unsigned __int128 initseq = (static_cast<unsigned __int128>(words[2]) << 64) | words[3];
  // pcg_setseq_128_srandom_r: state 0, odd increment, one step, add the seed, one step.
  state_ = 0;
  inc_ = (initseq << 1) | 1u;
  state_ = state_ * kPcgMult + inc_;
  state_ += initstate;
  state_ = state_ * kPcgMult + inc_;
}

Pcg64 Pcg64::from_seed(unsigned __int128 seed) {
  const std::vector<uint32_t> words = seed_words(seed);
  return Pcg64(SeedSequence(words));
}

uint64_t Pcg64::next_u64() {
  state_ = state_ * kPcgMult + inc_;
  const uint64_t hi = static_cast<uint64_t>(state_ >> 64);
  const uint64_t lo = static_cast<uint64_t>(state_);
  return rotr64(hi ^ lo, static_cast<unsigned>(state_ >> 122));
}

uint32_t Pcg64::next_u32() {
  if (has_u32_) {
    has_u32_ = false;
    return u32_;
  }
  const uint64_t next = next_u64();
  has_u32_ = true;
  u32_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next);
}

std::vector<int64_t> integers_i64(Pcg64& rng, int64_t low, int64_t high, int64_t n) {
  if (n < 0) fail(Errc::invalid_argument, "integers: negative size ", n);
  if (low >= high) fail(Errc::invalid_argument, "integers: low (", low, ") >= high (", high, ")");
  // NumPy works on the closed range [low, high - 1] as an unsigned span plus an offset.
  const uint64_t span = static_cast<uint64_t>(high - 1) - static_cast<uint64_t>(low);
  const uint64_t off = static_cast<uint64_t>(low);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (auto& v : out) {
    uint64_t draw;
    if (span == 0) {
      draw = 0;  // no draw is consumed
    } else if (span < 0xFFFFFFFFull) {
      draw = bounded_lemire_u32(rng, static_cast<uint32_t>(span));
    } else if (span == 0xFFFFFFFFull) {
      draw = rng.next_u32();
    } else {  // span <= 2^64 - 2 for int64 bounds, so Lemire's 64-bit draw always applies
      draw = bounded_lemire_u64(rng, span);
    }
    v = static_cast<int64_t>(off + draw);
  }
  return out;
}

}  // namespace engram
