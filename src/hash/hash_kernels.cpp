// N-gram hash kernels: reference and fast versions (see hash_kernels.h).
//
// Overflow: for compressed ids 0 <= x < V' and multipliers m = 2r + 1 with
// r < max(1, ((2^63-1) // V') // 2), m <= (2^63-1) // V', so x * m <= (V'-1) * ((2^63-1) // V')
// < 2^63 - 1: every product, and every XOR of such products, is a non-negative int64. Negative
// ids that the demo passes through uncompressed can overflow; NumPy's int64 multiply wraps, and
// so do we (the products are computed in uint64, where wrapping is defined, then reinterpreted).
#include "hash/hash_kernels.h"

#include <algorithm>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define ENGRAM_HASH_AVX512 1
#else
#define ENGRAM_HASH_AVX512 0
#endif

namespace engram::hash_detail {
namespace {

int64_t wrapping_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

// NumPy's int64 % for a positive divisor: the result has the divisor's sign.
int64_t floor_mod_reference(int64_t a, int64_t p) {
  const int64_t r = a % p;
  return r < 0 ? r + p : r;
}

// The same without a division. barrett = floor((2^64-1) / p) underestimates u / p by less than
// 2, so one subtraction fixes the remainder of u = (uint64)a; a negative a is u - 2^64, whose
// remainder is (u mod p) - (2^64 mod p), fixed by one addition.
inline int64_t floor_mod_barrett(int64_t a, int64_t p, uint64_t barrett, int64_t wrap) {
  const uint64_t u = static_cast<uint64_t>(a);
  const uint64_t q = static_cast<uint64_t>((static_cast<unsigned __int128>(u) * barrett) >> 64);
  uint64_t r = u - q * static_cast<uint64_t>(p);
  if (r >= static_cast<uint64_t>(p)) r -= static_cast<uint64_t>(p);
  int64_t s = static_cast<int64_t>(r);
  if (a < 0) {
    s -= wrap;
    if (s < 0) s += p;
  }
  return s;
}

// Writes one position's C columns from its N-1 mixes.
inline void emit_columns(const LayerKernel& k, const int64_t* mixes, int64_t* out,
                         bool add_offsets) {
  const int orders = k.max_ngram - 1;
  const int64_t heads = k.n_head;
#if ENGRAM_HASH_AVX512
  if (k.use_simd) {
    // Across heads, 8 lanes: q = floor(mix * (1/p)) is within 1 of floor(mix / p) because
    // |mix / p| < 2^63 / 2^16 and the double product's relative error is < 2^-51, so the
    // remainder mix - q p (exact in wrapping int64) lies in [-p, 2p): two masked fixes.
    const __m512i zero = _mm512_setzero_si512();
    for (int o = 0; o < orders; ++o) {
      const __m512i vmix = _mm512_set1_epi64(mixes[o]);
      const __m512d dmix = _mm512_set1_pd(static_cast<double>(mixes[o]));
      const int64_t base = o * k.n_head_padded;
      for (int64_t h = 0; h < heads; h += 8) {
        const __m512i p = _mm512_loadu_si512(k.primes.data() + base + h);
        const __m512d inv = _mm512_loadu_pd(k.inverse.data() + base + h);
        const __m512i q = _mm512_cvt_roundpd_epi64(_mm512_mul_pd(dmix, inv),
                                                   _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512i r = _mm512_sub_epi64(vmix, _mm512_mullo_epi64(q, p));
        r = _mm512_mask_add_epi64(r, _mm512_cmplt_epi64_mask(r, zero), r, p);
        r = _mm512_mask_sub_epi64(r, _mm512_cmpge_epi64_mask(r, p), r, p);
        if (add_offsets) r = _mm512_add_epi64(r, _mm512_loadu_si512(k.offsets.data() + base + h));
        const int64_t lanes = std::min<int64_t>(8, heads - h);
        const __mmask8 mask = static_cast<__mmask8>((1u << lanes) - 1u);
        _mm512_mask_storeu_epi64(out + o * heads + h, mask, r);
      }
    }
    return;
  }
#endif
  for (int o = 0; o < orders; ++o) {
    const int64_t base = o * k.n_head_padded;
    for (int64_t h = 0; h < heads; ++h) {
      int64_t r = floor_mod_barrett(mixes[o], k.primes[base + h], k.barrett[base + h],
                                    k.wrap[base + h]);
      if (add_offsets) r += k.offsets[base + h];
      out[o * heads + h] = r;
    }
  }
}

}  // namespace

bool simd_compiled() { return ENGRAM_HASH_AVX512 != 0; }

void hash_row_reference(const LayerHashLayout& layout, int max_ngram, int64_t n_head, int64_t pad,
                        const int64_t* x, const uint8_t* dead, int64_t time, History history,
                        int64_t* out, bool add_offsets) {
  const int64_t columns = (max_ngram - 1) * n_head;
  std::vector<int64_t> tokens(static_cast<size_t>(max_ngram));
  for (int64_t t = 0; t < time; ++t) {
    // Walk back from s = 0; the first position before the start or dead blocks the rest.
    bool blocked = false;
    for (int s = 0; s < max_ngram; ++s) {
      const int64_t src = t - s;
      bool usable;
      int64_t value = 0;
      if (src >= 0) {
        usable = dead == nullptr || dead[src] == 0;
        value = x[src];
      } else {
        const int64_t k = -src - 1;
        usable = k < history.avail && (history.dead == nullptr || history.dead[k] == 0);
        if (usable) value = history.ids[k];
      }
      blocked = blocked || !usable;
      tokens[s] = blocked ? pad : value;
    }
    for (int n = 2; n <= max_ngram; ++n) {
      int64_t mix = wrapping_mul(tokens[0], layout.multipliers[0]);
      for (int s = 1; s < n; ++s) mix ^= wrapping_mul(tokens[s], layout.multipliers[s]);
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t c = (n - 2) * n_head + h;
        const int64_t value = floor_mod_reference(mix, layout.primes[c]);
        out[t * columns + c] = add_offsets ? value + layout.offsets[c] : value;
      }
    }
  }
}

LayerKernel::LayerKernel(const LayerHashLayout& layout, int max_ngram_, int64_t n_head_,
                         int64_t pad_)
    : max_ngram(max_ngram_), n_head(n_head_), n_head_padded((n_head_ + 7) / 8 * 8), pad(pad_) {
  for (int64_t m : layout.multipliers) multipliers.push_back(static_cast<uint64_t>(m));
  const size_t size = static_cast<size_t>((max_ngram - 1) * n_head_padded);
  primes.assign(size, 1);
  offsets.assign(size, 0);
  barrett.assign(size, UINT64_MAX);
  wrap.assign(size, 0);
  inverse.assign(size, 1.0);
  bool all_large = true;
  for (int o = 0; o < max_ngram - 1; ++o) {
    for (int64_t h = 0; h < n_head; ++h) {
      const size_t c = static_cast<size_t>(o * n_head + h);
      const size_t i = static_cast<size_t>(o * n_head_padded + h);
      const int64_t p = layout.primes[c];
      const uint64_t up = static_cast<uint64_t>(p);
      primes[i] = p;
      offsets[i] = layout.offsets[c];
      barrett[i] = UINT64_MAX / up;
      wrap[i] = static_cast<int64_t>((UINT64_MAX % up + 1) % up);
      inverse[i] = 1.0 / static_cast<double>(p);
      all_large = all_large && p >= kSimdMinPrime;
    }
  }
  use_simd = simd_compiled() && all_large;
}

void hash_row_fast(const LayerKernel& k, const int64_t* x, const uint8_t* dead, int64_t t0,
                   int64_t t1, History history, int64_t* out, bool add_offsets) {
  const int n = k.max_ngram;
  const int64_t columns = (n - 1) * k.n_head;
  const uint64_t* m = k.multipliers.data();
  int64_t mixes[EngramConfig::kMaxNgram];
  // The most recent dead position at or before t; a window [t-n+1, t] without one, inside the
  // row, is hashed on the straight path.
  int64_t last_dead = INT64_MIN / 2;
  if (dead != nullptr) {
    for (int64_t s = std::max<int64_t>(0, t0 - n + 1); s < t0; ++s) {
      if (dead[s]) last_dead = s;
    }
  }
  for (int64_t t = t0; t < t1; ++t) {
    if (dead != nullptr && dead[t]) last_dead = t;
    if (t >= n - 1 && t - last_dead >= n) {
      uint64_t mix = static_cast<uint64_t>(x[t]) * m[0];
      for (int s = 1; s < n; ++s) {
        mix ^= static_cast<uint64_t>(x[t - s]) * m[s];
        mixes[s - 1] = static_cast<int64_t>(mix);
      }
    } else {
      bool blocked = false;
      uint64_t mix = 0;
      for (int s = 0; s < n; ++s) {
        const int64_t src = t - s;
        int64_t value = k.pad;
        if (!blocked) {
          if (src >= 0) {
            blocked = dead != nullptr && dead[src] != 0;
            if (!blocked) value = x[src];
          } else {
            const int64_t i = -src - 1;
            blocked = i >= history.avail || (history.dead != nullptr && history.dead[i] != 0);
            if (!blocked) value = history.ids[i];
          }
        }
        mix ^= static_cast<uint64_t>(value) * m[s];
        if (s > 0) mixes[s - 1] = static_cast<int64_t>(mix);
      }
    }
    emit_columns(k, mixes, out + t * columns, add_offsets);
  }
}

}  // namespace engram::hash_detail
