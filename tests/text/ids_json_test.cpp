// The ids JSON reader/writer (text/ids_json.h): round trip, dead_mask forms, and one error
// per kind of malformed input, each naming the position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engram/error.h"
#include "text/ids_json.h"

namespace engram {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(IdsJson, ParsesBatchAndMask) {
  const IdsBatch b = parse_ids_json(
      R"({"input_ids": [[1, 2, 3], [4, 5, 6]], "dead_mask": [[0, 1, 0], [true, false, 1]]})",
      "x.json");
  EXPECT_EQ(b.batch, 2);
  EXPECT_EQ(b.length, 3);
  EXPECT_THAT(b.ids, ElementsAre(1, 2, 3, 4, 5, 6));
  ASSERT_TRUE(b.has_dead_mask);
  EXPECT_THAT(b.dead_mask, ElementsAre(0, 1, 0, 1, 0, 1));
  EXPECT_EQ(b.at(1, 2), 6);
  const IdsBatch empty = parse_ids_json(R"({"input_ids": []})", "x.json");
  EXPECT_EQ(empty.batch, 0);
  const IdsBatch one_empty = parse_ids_json(R"({"input_ids": [[]]})", "x.json");
  EXPECT_EQ(one_empty.batch, 1);
  EXPECT_EQ(one_empty.length, 0);
}

TEST(IdsJson, RoundTrip) {
  IdsBatch b;
  b.batch = 2;
  b.length = 2;
  b.ids = {5, -1, 7, 128814};
  b.has_dead_mask = true;
  b.dead_mask = {0, 1, 1, 0};
  const IdsBatch r = parse_ids_json(ids_json_string(b), "rt", IdsLimits{-1, true});
  EXPECT_EQ(r.ids, b.ids);
  EXPECT_EQ(r.dead_mask, b.dead_mask);
  EXPECT_EQ(r.batch, 2);
}

void expect_error(const std::string& text, Errc code, const std::string& fragment,
                  IdsLimits limits = {}) {
  try {
    parse_ids_json(text, "ids.json", limits);
    FAIL() << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(fragment));
    EXPECT_THAT(e.what(), HasSubstr("ids.json"));
  }
}

TEST(IdsJson, Errors) {
  expect_error("{", Errc::parse, "malformed JSON");
  // A number too large for a double: nlohmann throws out_of_range, not parse_error (found by
  // fuzz_ids_json); it must still be a parse error, not an escaping exception.
  expect_error("388885528888E5576", Errc::parse, "invalid JSON");
  expect_error(R"({"input_ids": [[1e999]]})", Errc::parse, "invalid JSON");
  expect_error("[[1]]", Errc::parse, "expected a JSON object");
  expect_error("{\"input_ids\": [[" + std::string(100000, '[') + std::string(100000, ']') + "]]}",
               Errc::parse, "JSON nests deeper than 64 levels");
  // A value in a message is an excerpt, not the whole value.
  expect_error(R"({"input_ids": [[[1, 2, 3]]]})", Errc::parse,
               "must be an integer, got an array of 3 elements");
  expect_error(R"({"ids": [[1]]})", Errc::parse, "missing key \"input_ids\"");
  expect_error(R"({"input_ids": 3})", Errc::parse, "must be a list of lists");
  expect_error(R"({"input_ids": [1, 2]})", Errc::parse, "input_ids[0] must be a list");
  expect_error(R"({"input_ids": [[1, 2], [3]]})", Errc::parse, "input_ids[1] has 1 entries");
  expect_error(R"({"input_ids": [[1, "a"]]})", Errc::parse, "input_ids[0][1] must be an integer");
  expect_error(R"({"input_ids": [[1, 2.5]]})", Errc::parse, "input_ids[0][1] must be an integer");
  expect_error(R"({"input_ids": [[1, -2]]})", Errc::out_of_range, "input_ids[0][1] = -2");
  expect_error(R"({"input_ids": [[1], [10]]})", Errc::out_of_range, "input_ids[1][0] = 10",
               IdsLimits{10, false});
  expect_error(R"({"input_ids": [[18446744073709551615]]})", Errc::out_of_range,
               "does not fit in int64");
  expect_error(R"({"input_ids": [[1, 2]], "dead_mask": [[0]]})", Errc::parse,
               "dead_mask[0] has 1 entries");
  expect_error(R"({"input_ids": [[1, 2]], "dead_mask": [[0, 2]]})", Errc::parse,
               "dead_mask[0][1] must be 0, 1");
  expect_error(R"({"input_ids": [[1, 2]], "dead_mask": [[0, 1], [1, 1]]})", Errc::parse,
               "has 2 rows but input_ids has 1");
}

}  // namespace
}  // namespace engram
