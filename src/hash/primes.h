// Primality for Engram's table sizes: a deterministic Miller-Rabin test for every 64-bit
// integer, the trial-division reference it is tested against, and the next-unused-prime search
// of DESIGN.md 2.2. Private to src/hash (tests include it directly).
#pragma once

#include <cstdint>
#include <unordered_set>

namespace engram::hash_detail {

// Deterministic for all n < 2^64 (bases 2..37 suffice below 3.3e24).
bool is_prime(uint64_t n);

// Reference: trial division by 2 and odd numbers up to sqrt(n). Slow; for tests only.
bool is_prime_trial_division(uint64_t n);

// The smallest prime > start that is not in used (start may be negative: the answer is then 2
// unless used). Throws Errc::out_of_range when no such prime fits in int64.
int64_t next_unused_prime(int64_t start, const std::unordered_set<int64_t>& used);

}  // namespace engram::hash_detail
