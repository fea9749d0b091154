// A 64-bit digest as the 16 lowercase hex digits that checkpoints, token files and shared tables
// record and that error messages show.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace engram {

inline std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace engram
