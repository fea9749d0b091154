// parse_json and the excerpt helpers (util/json.h): nesting depth is bounded before parsing,
// errors name the file, and messages never carry whole or unprintable user values.
#include "util/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "engram/error.h"
#include "test_helpers.h"

namespace engram {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;

std::string nested(size_t depth, const std::string& inner = "") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(ParseJson, ParsesOrdinaryJson) {
  const nlohmann::json j = parse_json(R"({"a": [1, {"b": "[[[["}], "c": "\"{"})", "x.json");
  EXPECT_EQ(j["a"][1]["b"], "[[[[");
  EXPECT_EQ(j["c"], "\"{");
}

TEST(ParseJson, AcceptsTheDepthLimitAndRefusesOneMore) {
  EXPECT_NO_THROW(parse_json(nested(kMaxJsonDepth), "x.json"));
  Errc code{};
  const std::string msg = error_of([] { parse_json(nested(kMaxJsonDepth + 1), "x.json"); }, &code);
  EXPECT_EQ(code, Errc::parse);
  EXPECT_THAT(msg, HasSubstr("x.json: JSON nests deeper than 64 levels (byte offset 64)"));
}

TEST(ParseJson, RefusesHugeNestingWithoutCrashing) {
  const std::string deep = "{\"input_ids\": " + nested(100000) + "}";
  EXPECT_THAT(error_of([&] { parse_json(deep, "deep.json"); }),
              HasSubstr("deep.json: JSON nests deeper than 64 levels"));
  // Objects count as well as arrays; brackets inside strings do not.
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += "{\"k\":";
  objects += "1" + std::string(100, '}');
  EXPECT_THAT(error_of([&] { parse_json(objects, "o.json"); }), HasSubstr("nests deeper"));
  EXPECT_NO_THROW(parse_json("[\"" + std::string(1000, '[') + "\\\"\"]", "s.json"));
}

TEST(ParseJson, ReportsOffsetsFromTheBase) {
  EXPECT_THAT(error_of([] { parse_json(nested(3), "h", 2, nullptr, 8); }),
              HasSubstr("h: JSON nests deeper than 2 levels (byte offset 10)"));
  EXPECT_THAT(error_of([] { parse_json("[1, ]", "h", 8, nullptr, 8); }),
              HasSubstr("h: malformed JSON at byte offset 12"));
}

TEST(ParseJson, SyntaxErrorMessagesArePrintableAndBounded) {
  // A long string with an invalid UTF-8 byte: nlohmann quotes the token it read.
  const std::string text = "[\"" + std::string(100000, 'a') + "\xff\"]";
  const std::string msg = error_of([&] { parse_json(text, "bad.json"); });
  EXPECT_THAT(msg, HasSubstr("bad.json: malformed JSON at byte offset"));
  EXPECT_LT(msg.size(), 400u);
  EXPECT_THAT(msg, Not(HasSubstr("\xff")));
}

TEST(PrintableExcerpt, EscapesInvalidBytesAndCuts) {
  EXPECT_EQ(printable_excerpt("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(printable_excerpt("a\xff"
                              "b\n"),
            "a\\xFFb\\x0A");
  EXPECT_EQ(printable_excerpt("\xc0\x80"), "\\xC0\\x80");  // overlong NUL
  EXPECT_EQ(printable_excerpt("abcdef", 3), "abc...");
}

TEST(JsonExcerpt, DescribesContainersBySize) {
  EXPECT_EQ(json_excerpt(nlohmann::json::parse("[[1], 2, 3]")), "an array of 3 elements");
  EXPECT_EQ(json_excerpt(nlohmann::json::parse("{\"a\": 1}")), "an object of 1 member");
  EXPECT_EQ(json_excerpt(nlohmann::json(std::string(200, 'x')), 4), "\"xxxx...\"");
  EXPECT_EQ(json_excerpt(nlohmann::json(-3)), "-3");
}

}  // namespace
}  // namespace engram
