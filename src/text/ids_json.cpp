// ids_json.cpp: reader and writer of the ids JSON file (src/text/ids_json.h).
#include "text/ids_json.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engram/error.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {
namespace {

using Json = nlohmann::json;

// Checks that j is a rectangular list of lists; returns (rows, cols). `expect_cols` < 0: any.
std::pair<int64_t, int64_t> check_matrix(const Json& j, const std::string& origin, const char* key,
                                         int64_t expect_rows, int64_t expect_cols) {
  if (!j.is_array())
    fail(Errc::parse, origin, ": \"", key, "\" must be a list of lists, got ", j.type_name());
  const auto rows = static_cast<int64_t>(j.size());
  if (expect_rows >= 0 && rows != expect_rows) {
    fail(Errc::parse, origin, ": \"", key, "\" has ", rows, " rows but input_ids has ",
         expect_rows);
  }
  int64_t cols = expect_cols;
  for (int64_t b = 0; b < rows; ++b) {
    const Json& row = j[static_cast<size_t>(b)];
    if (!row.is_array())
      fail(Errc::parse, origin, ": ", key, "[", b, "] must be a list, got ", row.type_name());
    const auto n = static_cast<int64_t>(row.size());
    if (cols < 0) cols = n;
    if (n != cols) {
      fail(Errc::parse, origin, ": ", key, "[", b, "] has ", n, " entries but ",
           (expect_cols >= 0 ? "input_ids rows have " : "row 0 has "), cols,
           " (rows must all have the same length)");
    }
  }
  return {rows, cols < 0 ? 0 : cols};
}

}  // namespace

IdsBatch parse_ids_json(std::string_view json_text, const std::string& origin,
                        const IdsLimits& limits) {
  const Json root = parse_json(json_text, origin);
  if (!root.is_object())
    fail(Errc::parse, origin, ": expected a JSON object with \"input_ids\", got ",
         root.type_name());
  const auto it = root.find("input_ids");
  if (it == root.end()) fail(Errc::parse, origin, ": missing key \"input_ids\"");
  IdsBatch out;
  const auto [rows, cols] = check_matrix(*it, origin, "input_ids", -1, -1);
  out.batch = rows;
  out.length = cols;
  out.ids.reserve(static_cast<size_t>(rows * cols));
  for (int64_t b = 0; b < rows; ++b) {
    const Json& row = (*it)[static_cast<size_t>(b)];
    for (int64_t t = 0; t < cols; ++t) {
      const Json& v = row[static_cast<size_t>(t)];
      if (!v.is_number_integer()) {
        fail(Errc::parse, origin, ": input_ids[", b, "][", t, "] must be an integer, got ",
             json_excerpt(v));
      }
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail(Errc::out_of_range, origin, ": input_ids[", b, "][", t, "] = ", json_excerpt(v),
             " does not fit in int64");
      }
      const auto id = v.get<int64_t>();
      if ((id < 0 && !limits.allow_negative) ||
          (limits.vocab_size >= 0 && id >= limits.vocab_size)) {
        fail(Errc::out_of_range, origin, ": input_ids[", b, "][", t, "] = ", id, " is outside [",
             limits.allow_negative ? "-inf" : "0", ", ",
             limits.vocab_size >= 0 ? std::to_string(limits.vocab_size) : "inf", ")");
      }
      out.ids.push_back(id);
    }
  }
  if (const auto mit = root.find("dead_mask"); mit != root.end()) {
    check_matrix(*mit, origin, "dead_mask", rows, cols);
    out.has_dead_mask = true;
    out.dead_mask.reserve(out.ids.size());
    for (int64_t b = 0; b < rows; ++b) {
      for (int64_t t = 0; t < cols; ++t) {
        const Json& v = (*mit)[static_cast<size_t>(b)][static_cast<size_t>(t)];
        if (v.is_boolean()) {
          out.dead_mask.push_back(v.get<bool>() ? 1 : 0);
        } else if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) {
          out.dead_mask.push_back(static_cast<uint8_t>(v.get<int64_t>()));
        } else {
          fail(Errc::parse, origin, ": dead_mask[", b, "][", t,
               "] must be 0, 1, true or false, got ", json_excerpt(v));
        }
      }
    }
  }
  return out;
}

IdsBatch read_ids_json(const std::string& path, const IdsLimits& limits) {
  return parse_ids_json(read_file(path, {kMaxIdsBytes, "an ids file"}), path, limits);
}

std::string ids_json_string(const IdsBatch& batch) {
  auto matrix = [&](auto value_at) {
    std::string s = "[";
    for (int64_t b = 0; b < batch.batch; ++b) {
      s += b ? ",\n  [" : "\n  [";
      for (int64_t t = 0; t < batch.length; ++t) {
        if (t) s += ", ";
        s += std::to_string(value_at(b * batch.length + t));
      }
      s += "]";
    }
    s += batch.batch ? "\n]" : "]";
    return s;
  };
  std::string out = "{\"input_ids\": ";
  out += matrix([&](int64_t k) { return batch.ids[static_cast<size_t>(k)]; });
  if (batch.has_dead_mask) {
    out += ",\n\"dead_mask\": ";
    out += matrix(
        [&](int64_t k) { return static_cast<int64_t>(batch.dead_mask[static_cast<size_t>(k)]); });
  }
  out += "}\n";
  return out;
}

void write_ids_json(const std::string& path, const IdsBatch& batch) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(Errc::io, path, ": cannot open for writing");
  out << ids_json_string(batch);
  out.flush();
  if (!out) fail(Errc::io, path, ": write failed");
}

}  // namespace engram
