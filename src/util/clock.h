// Steady-clock helpers for timing lines and decode/prefetch statistics.
#pragma once

#include <chrono>
#include <cstdint>

namespace engram {

// Nanoseconds on the steady clock (an arbitrary epoch: only differences mean anything).
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Wall seconds since t0.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace engram
