// text/ids_json.h: the ids JSON file that the CLI reads and writes:
//   {"input_ids": [[id, ...], ...], "dead_mask": [[0|1|bool, ...], ...]}   (dead_mask optional)
// input_ids is a rectangular batch [B][T]; dead_mask, when present, has the same shape.
// Every violation (not an object, missing key, not a list of lists of integers, ragged rows,
// an id out of range, a mask value other than 0/1/true/false) throws Errc::parse or
// Errc::out_of_range with a message naming the file and the position [b][t].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

struct IdsBatch {
  int64_t batch = 0;         // B
  int64_t length = 0;        // T
  std::vector<int64_t> ids;  // [B*T], row-major
  bool has_dead_mask = false;
  std::vector<uint8_t> dead_mask;  // [B*T] of 0/1 when has_dead_mask

  int64_t at(int64_t b, int64_t t) const { return ids[static_cast<size_t>(b * length + t)]; }
};

struct IdsLimits {
  int64_t vocab_size = -1;      // ids must be < vocab_size (when >= 0)
  bool allow_negative = false;  // negative ids (padding) pass when true
};

IdsBatch parse_ids_json(std::string_view json_text, const std::string& origin,
                        const IdsLimits& limits = {});
IdsBatch read_ids_json(const std::string& path, const IdsLimits& limits = {});

// {"input_ids": [[...], ...]} (plus "dead_mask" when present), one row per line.
std::string ids_json_string(const IdsBatch& batch);
void write_ids_json(const std::string& path, const IdsBatch& batch);

}  // namespace engram
