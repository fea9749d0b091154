// Fuzz target for the ids JSON reader (text/ids_json.h): parses the input with and without
// range limits and, when accepted, writes it back and checks that the round trip is exact.
// engram::Error is the expected outcome of bad input; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engram/error.h"
#include "text/ids_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const engram::IdsLimits limits : {engram::IdsLimits{}, engram::IdsLimits{1000, true}}) {
    try {
      const engram::IdsBatch b = engram::parse_ids_json(text, "fuzz.json", limits);
      const engram::IdsBatch r =
          engram::parse_ids_json(engram::ids_json_string(b), "roundtrip", limits);
      if (r.ids != b.ids || r.batch != b.batch || r.length != b.length ||
          r.dead_mask != b.dead_mask || r.has_dead_mask != b.has_dead_mask) {
        std::abort();
      }
    } catch (const engram::Error&) {
    }
  }
  return 0;
}
