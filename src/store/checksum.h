// checksum64: the store's 64-bit digest of a byte range (shared-file checksums, checkpoint
// fingerprints). Not cryptographic: it catches corruption and mix-ups, not an adversary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace engram {

inline constexpr uint64_t kChecksumSeed = 0x9E3779B97F4A7C15ull;

// Chainable: pass the previous result as `h` to digest several ranges as one.
inline uint64_t checksum64(const std::byte* p, size_t n, uint64_t h = kChecksumSeed) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h ^= w * 0xff51afd7ed558ccdull;
    h = ((h << 27) | (h >> 37)) * 0xc4ceb9fe1a85ec53ull;
  }
  for (; i < n; ++i) h = (h ^ uint64_t(p[i])) * 0x100000001b3ull;
  return h ^ (h >> 33);
}

}  // namespace engram
