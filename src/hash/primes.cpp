// Deterministic Miller-Rabin for 64-bit integers, and the prime search behind table sizes.
#include "hash/primes.h"

#include "engram/error.h"

namespace engram::hash_detail {
namespace {

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
  uint64_t result = 1 % m;
  base %= m;
  while (exp != 0) {
    if (exp & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exp >>= 1;
  }
  return result;
}

}  // namespace

bool is_prime(uint64_t n) {
  static constexpr uint64_t kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return false;
  for (uint64_t p : kBases) {
    if (n % p == 0) return n == p;
  }
  // n - 1 = d * 2^s with d odd.
  uint64_t d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++s;
  }
  for (uint64_t a : kBases) {
    uint64_t x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < s; ++r) {
      x = mul_mod(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

bool is_prime_trial_division(uint64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t f = 3; f <= n / f; f += 2) {
    if (n % f == 0) return false;
  }
  return true;
}

int64_t next_unused_prime(int64_t start, const std::unordered_set<int64_t>& used) {
  if (start == INT64_MAX) fail(Errc::out_of_range, "no prime above ", start, " fits in int64");
  int64_t candidate = start < 1 ? 2 : start + 1;
  for (;;) {
    if (is_prime(static_cast<uint64_t>(candidate)) && !used.count(candidate)) return candidate;
    if (candidate == INT64_MAX) {
      fail(Errc::out_of_range, "no unused prime above ", start, " fits in int64");
    }
    ++candidate;
  }
}

}  // namespace engram::hash_detail
