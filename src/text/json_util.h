// json_util.h: typed access to a tokenizer.json with errors that name the JSON path.
// Every accessor throws Errc::parse "<origin>: <path>: <what was expected>" on a wrong type.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engram/error.h"
#include "util/json.h"

namespace engram::text {

using Json = nlohmann::json;

struct JsonPath {
  const std::string& origin;  // file name or "<memory>"
  std::string path;           // e.g. "pre_tokenizer.pretokenizers[2].pattern"

  JsonPath at(std::string_view key) const {
    return {origin, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  JsonPath at(size_t index) const { return {origin, path + "[" + std::to_string(index) + "]"}; }

  template <typename... Args>
  [[noreturn]] void fail_parse(Args&&... args) const {
    fail(Errc::parse, origin, ": ", path.empty() ? std::string("<root>") : path, ": ",
         std::forward<Args>(args)...);
  }
  template <typename... Args>
  [[noreturn]] void fail_unsupported(Args&&... args) const {
    fail(Errc::unsupported, origin, ": ", path.empty() ? std::string("<root>") : path, ": ",
         std::forward<Args>(args)...);
  }
};

// A string from the user's file for a message: printable and cut to 80 characters, so a
// hostile file cannot make a message megabytes long.
inline std::string excerpt(std::string_view s) {
  return printable_excerpt(s, 80);
}

inline const Json& require_object(const Json& j, const JsonPath& p) {
  if (!j.is_object()) p.fail_parse("expected an object, got ", j.type_name());
  return j;
}

inline const Json& require_array(const Json& j, const JsonPath& p) {
  if (!j.is_array()) p.fail_parse("expected an array, got ", j.type_name());
  return j;
}

// The member `key` of object j (at path p); missing -> parse error.
inline const Json& require_member(const Json& j, std::string_view key, const JsonPath& p) {
  require_object(j, p);
  const auto it = j.find(key);
  if (it == j.end()) p.at(key).fail_parse("missing");
  return *it;
}

inline const std::string& as_string(const Json& j, const JsonPath& p) {
  if (!j.is_string()) p.fail_parse("expected a string, got ", j.type_name());
  return j.get_ref<const std::string&>();
}

inline bool as_bool(const Json& j, const JsonPath& p) {
  if (!j.is_boolean()) p.fail_parse("expected a boolean, got ", j.type_name());
  return j.get<bool>();
}

// A non-negative id that fits int32.
inline int32_t as_id(const Json& j, const JsonPath& p) {
  if (!j.is_number_integer()) p.fail_parse("expected an integer id, got ", j.type_name());
  if (j.is_number_unsigned()) {
    const auto v = j.get<uint64_t>();
    if (v > 0x7FFFFFFFull) p.fail_parse("id ", v, " does not fit in int32");
    return static_cast<int32_t>(v);
  }
  const auto v = j.get<int64_t>();
  if (v < 0 || v > 0x7FFFFFFF) p.fail_parse("id ", v, " is out of range [0, 2^31)");
  return static_cast<int32_t>(v);
}

// Optional boolean member: absent or null -> def.
inline bool optional_bool(const Json& obj, std::string_view key, const JsonPath& p, bool def) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  return as_bool(*it, p.at(key));
}

// Optional string member: absent or null -> "" with *present = false.
inline std::string optional_string(const Json& obj, std::string_view key, const JsonPath& p,
                                   bool* present) {
  const auto it = obj.find(key);
  *present = !(it == obj.end() || it->is_null());
  if (!*present) return {};
  return as_string(*it, p.at(key));
}

}  // namespace engram::text
