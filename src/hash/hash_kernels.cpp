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

// Positions per block: the fast kernel first computes a block's mixes (kOrders x kBlock), then
// reduces them modulo every column's prime.
constexpr int64_t kBlock = 128;
constexpr int kMaxOrders = EngramConfig::kMaxNgram - 1;

struct MixBlock {
  alignas(64) int64_t mix[kMaxOrders * kBlock];  // [order][position in block]
  alignas(64) double dmix[kMaxOrders * kBlock];  // the same as doubles (AVX-512 path)
};

// Mixes of positions [a, b) of the block starting at `base`, all of whose lookbacks are inside the
// row and live: mix_o[t] = XOR_{s <= o+1} x[t-s] * m[s].
void mix_straight(const LayerKernel& k, const int64_t* x, int64_t a, int64_t b, int64_t base,
                  MixBlock& blk) {
  const int n = k.max_ngram;
#if ENGRAM_HASH_AVX512
  if (k.use_simd) {
    __m512i m[EngramConfig::kMaxNgram];
    for (int s = 0; s < n; ++s) m[s] = _mm512_set1_epi64(static_cast<int64_t>(k.multipliers[s]));
    for (int64_t t = a; t < b; t += 8) {
      const __mmask8 mask = static_cast<__mmask8>((1u << std::min<int64_t>(8, b - t)) - 1u);
      __m512i acc = _mm512_mullo_epi64(_mm512_maskz_loadu_epi64(mask, x + t), m[0]);
      for (int s = 1; s < n; ++s) {
        acc = _mm512_xor_si512(acc,
                               _mm512_mullo_epi64(_mm512_maskz_loadu_epi64(mask, x + t - s), m[s]));
        const int64_t i = (s - 1) * kBlock + (t - base);
        _mm512_mask_storeu_epi64(blk.mix + i, mask, acc);
        _mm512_mask_storeu_pd(blk.dmix + i, mask, _mm512_cvtepi64_pd(acc));
      }
    }
    return;
  }
#endif
  for (int64_t t = a; t < b; ++t) {
    uint64_t acc = static_cast<uint64_t>(x[t]) * k.multipliers[0];
    for (int s = 1; s < n; ++s) {
      acc ^= static_cast<uint64_t>(x[t - s]) * k.multipliers[s];
      blk.mix[(s - 1) * kBlock + (t - base)] = static_cast<int64_t>(acc);  // dmix: SIMD only
    }
  }
}

// Mixes of one position t whose walk back meets the row start or a dead position.
void mix_walk(const LayerKernel& k, const int64_t* x, const uint8_t* dead, int64_t t,
              const History& history, int64_t base, MixBlock& blk) {
  bool blocked = false;
  uint64_t acc = 0;
  for (int s = 0; s < k.max_ngram; ++s) {
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
    acc ^= static_cast<uint64_t>(value) * k.multipliers[s];
    if (s > 0) {
      blk.mix[(s - 1) * kBlock + (t - base)] = static_cast<int64_t>(acc);
      blk.dmix[(s - 1) * kBlock + (t - base)] = static_cast<double>(static_cast<int64_t>(acc));
    }
  }
}

#if ENGRAM_HASH_AVX512
// floor(mix / p) for 8 heads, minus 0 or 1: q = floor(mix * (1/p) - 0.5). The double product is
// within 2^-4 of mix / p because |mix / p| < 2^63 / 2^16 = 2^47 and its relative error is below
// 2^-51, so subtracting 0.5 makes the estimate one-sided; r = mix - q p (exact in wrapping int64)
// then lies in [0, 2p) and one masked subtraction finishes the floor modulo.
inline __m512i floor_mod8(__m512i vmix, __m512d dmix, __m512i p, __m512d inv) {
  const __m512d q = _mm512_fmsub_pd(dmix, inv, _mm512_set1_pd(0.5));
  const __m512i qi = _mm512_cvt_roundpd_epi64(q, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512i r = _mm512_sub_epi64(vmix, _mm512_mullo_epi64(qi, p));
  return _mm512_mask_sub_epi64(r, _mm512_cmpge_epi64_mask(r, p), r, p);
}

// Up to 8 heads and kOrders orders: each order's primes stay in registers for the whole block.
template <int kOrders, bool kOffsets>
void emit_block_h8(const LayerKernel& k, const MixBlock& blk, int64_t count, int64_t* out) {
  const int64_t heads = k.n_head, columns = kOrders * heads;
  const __mmask8 mask = static_cast<__mmask8>((1u << heads) - 1u);
  __m512i p[kOrders], off[kOrders];
  __m512d inv[kOrders];
  for (int o = 0; o < kOrders; ++o) {
    p[o] = _mm512_loadu_si512(k.primes.data() + o * 8);
    inv[o] = _mm512_loadu_pd(k.inverse.data() + o * 8);
    off[o] = _mm512_loadu_si512(k.offsets.data() + o * 8);
  }
  for (int64_t t = 0; t < count; ++t) {
    for (int o = 0; o < kOrders; ++o) {
      __m512i r = floor_mod8(_mm512_set1_epi64(blk.mix[o * kBlock + t]),
                             _mm512_set1_pd(blk.dmix[o * kBlock + t]), p[o], inv[o]);
      if (kOffsets) r = _mm512_add_epi64(r, off[o]);
      _mm512_mask_storeu_epi64(out + t * columns + o * heads, mask, r);
    }
  }
}

// Any number of heads and orders.
void emit_block_generic(const LayerKernel& k, const MixBlock& blk, int64_t count, int64_t* out,
                        bool add_offsets) {
  const int orders = k.max_ngram - 1;
  const int64_t heads = k.n_head, columns = orders * heads;
  for (int64_t t = 0; t < count; ++t) {
    for (int o = 0; o < orders; ++o) {
      const __m512i vmix = _mm512_set1_epi64(blk.mix[o * kBlock + t]);
      const __m512d dmix = _mm512_set1_pd(blk.dmix[o * kBlock + t]);
      const int64_t base = o * k.n_head_padded;
      for (int64_t h = 0; h < heads; h += 8) {
        __m512i r = floor_mod8(vmix, dmix, _mm512_loadu_si512(k.primes.data() + base + h),
                               _mm512_loadu_pd(k.inverse.data() + base + h));
        if (add_offsets) r = _mm512_add_epi64(r, _mm512_loadu_si512(k.offsets.data() + base + h));
        const __mmask8 mask = static_cast<__mmask8>((1u << std::min<int64_t>(8, heads - h)) - 1u);
        _mm512_mask_storeu_epi64(out + t * columns + o * heads + h, mask, r);
      }
    }
  }
}

template <bool kOffsets>
void emit_block_avx512(const LayerKernel& k, const MixBlock& blk, int64_t count, int64_t* out) {
  if (k.n_head <= 8) {
    switch (k.max_ngram - 1) {
      case 1:
        return emit_block_h8<1, kOffsets>(k, blk, count, out);
      case 2:
        return emit_block_h8<2, kOffsets>(k, blk, count, out);
      case 3:
        return emit_block_h8<3, kOffsets>(k, blk, count, out);
      case 4:
        return emit_block_h8<4, kOffsets>(k, blk, count, out);
      default:
        break;
    }
  }
  emit_block_generic(k, blk, count, out, kOffsets);
}
#endif

// Writes out[t, c] for the block's count positions from their mixes.
void emit_block(const LayerKernel& k, const MixBlock& blk, int64_t count, int64_t* out,
                bool add_offsets) {
#if ENGRAM_HASH_AVX512
  if (k.use_simd) {
    if (add_offsets) {
      emit_block_avx512<true>(k, blk, count, out);
    } else {
      emit_block_avx512<false>(k, blk, count, out);
    }
    return;
  }
#endif
  const int orders = k.max_ngram - 1;
  const int64_t heads = k.n_head, columns = orders * heads;
  for (int64_t t = 0; t < count; ++t) {
    for (int o = 0; o < orders; ++o) {
      const int64_t mix = blk.mix[o * kBlock + t];
      const int64_t base = o * k.n_head_padded;
      for (int64_t h = 0; h < heads; ++h) {
        int64_t r =
            floor_mod_barrett(mix, k.primes[base + h], k.barrett[base + h], k.wrap[base + h]);
        if (add_offsets) r += k.offsets[base + h];
        out[t * columns + o * heads + h] = r;
      }
    }
  }
}

}  // namespace

bool simd_compiled() {
  return ENGRAM_HASH_AVX512 != 0;
}

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
  MixBlock blk;
  // The most recent dead position at or before t: a window [t-n+1, t] inside the row and without
  // one takes the straight path.
  int64_t last_dead = INT64_MIN / 2;
  if (dead != nullptr) {
    for (int64_t s = std::max<int64_t>(0, t0 - n + 1); s < t0; ++s) {
      if (dead[s]) last_dead = s;
    }
  }
  for (int64_t base = t0; base < t1; base += kBlock) {
    const int64_t end = std::min(t1, base + kBlock);
    mix_straight(k, x, std::max<int64_t>(base, n - 1), end, base, blk);
    if (dead == nullptr) {
      for (int64_t t = base; t < std::min<int64_t>(end, n - 1); ++t) {
        mix_walk(k, x, dead, t, history, base, blk);
      }
    } else {
      for (int64_t t = base; t < end; ++t) {
        if (dead[t]) last_dead = t;
        if (t < n - 1 || t - last_dead < n) mix_walk(k, x, dead, t, history, base, blk);
      }
    }
    emit_block(k, blk, end - base, out + base * columns, add_offsets);
  }
}

}  // namespace engram::hash_detail
