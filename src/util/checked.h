// Checked size arithmetic for sizes that come from files (configs, headers): a product or sum
// that does not fit in int64 is an error naming what was being computed, never a wrapped value
// that later sizes a buffer too small. Also the machine's physical memory, for estimates.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <string_view>

#include "engram/error.h"

namespace engram {

inline int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    fail(Errc::invalid_argument, what, ": ", a, " * ", b, " overflows int64");
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    fail(Errc::invalid_argument, what, ": ", a, " + ", b, " overflows int64");
  return r;
}

// Bytes of physical memory, or 0 when the system does not say.
inline uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return uint64_t(pages) * uint64_t(page);
}

}  // namespace engram
