// TokenCompressor: normalize_key cases (DESIGN.md 2.1, as HF's normalizers compute them),
// lookup construction on a small tokenizer, from_lookup validation, and compress() semantics
// (negative ids pass through, out-of-range ids are errors naming position and value).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "text/pipeline.h"
#include "text/utf8.h"

namespace engram {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(NormalizeKey, Cases) {
  const auto key = [](const std::string& s) { return TokenCompressor::normalize_key(s); };
  EXPECT_EQ(key("Hello"), "hello");
  EXPECT_EQ(key(" The"), "the");  // leading space stripped
  EXPECT_EQ(key(" "), " ");       // a lone space is protected
  EXPECT_EQ(key("\t\r\n"), " ");  // a run of [ \t\r\n] becomes one protected space
  EXPECT_EQ(key("  a \t b  "), "a b");
  EXPECT_EQ(key("\xC2\xA0"), " ");        // NBSP: NFKC gives " ", which is protected
  EXPECT_EQ(key("\xE3\x80\x80"), " ");    // ideographic space, same path
  EXPECT_EQ(key("\xE2\x80\xA8"), "");     // U+2028: White_Space, stripped, not in [ \t\r\n]
  EXPECT_EQ(key("caf\xC3\xA9"), "cafe");  // accents removed after NFD
  EXPECT_EQ(key("e\xCC\x81"), "e");
  EXPECT_EQ(key("\xEF\xAC\x81"), "fi");    // ligature ﬁ (NFKC)
  EXPECT_EQ(key("\xC4\xB0"), "i");         // İ: NFD splits off the dot, which is then removed
  EXPECT_EQ(key("\xCE\xA3"), "\xCF\x83");  // Σ -> σ, never final ς
  EXPECT_EQ(key("\xE0\xA4\x95\xE0\xA4\xBE"),
            "\xE0\xA4\x95");            // spacing mark (Mc) removed, as HF does
  EXPECT_EQ(key("\xEE\x80\x80"), " ");  // the sentinel itself ends up as a space
  EXPECT_EQ(key(""), "");
}

// A tiny byte-level tokenizer whose vocabulary exercises each rule of DESIGN.md 2.1.
Tokenizer tiny_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    text::append_utf8(s, text::byte_to_char(static_cast<uint8_t>(b)));
    vocab[s] = id++;
  }
  // 256: "Hello", 257: "Ġhello", 258: "hello", 259: "ĠĠ", 260: "Ã©" (é), 261: "e"... already
  // 'e'=byte.
  vocab[text::bytes_to_byte_level("Hello")] = id++;
  vocab[text::bytes_to_byte_level(" hello")] = id++;
  vocab[text::bytes_to_byte_level("hello")] = id++;
  vocab[text::bytes_to_byte_level("  ")] = id++;
  vocab[text::bytes_to_byte_level("\xC3\xA9")] = id++;
  const nlohmann::json j = {
      {"added_tokens",
       nlohmann::json::array(
           {{{"id", 261}, {"content", "<s>"}, {"special", true}, {"normalized", false}}})},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return Tokenizer::from_json(j.dump(), "tiny.json");
}

TEST(TokenCompressor, LookupFollowsFirstAppearance) {
  const Tokenizer t = tiny_tokenizer();
  const TokenCompressor c = TokenCompressor::from_tokenizer(t);
  ASSERT_EQ(c.vocab_size(), 262);
  const auto& l = c.lookup();
  // Bytes 0..255 come first. The stand-in of byte 'h' is itself, so "hello" keys like "Hello".
  const int64_t h = l[256];
  EXPECT_EQ(l[257], h);
  EXPECT_EQ(l[258], h);
  EXPECT_EQ(l[259], l[' ']);  // "  " and " " both key as " "
  EXPECT_EQ(l[260], l['e']);  // "é" keys as "e"
  EXPECT_EQ(l['E'], l['e']);
  EXPECT_NE(l[0xC3], l[0xC4]);  // lone lead bytes decode to U+FFFD: keyed by raw token
  EXPECT_EQ(l[261], c.compressed_vocab_size() - 1);  // the special token is new, and last
  // Dense ids in order of first appearance.
  int64_t next = 0;
  for (int64_t v : l) {
    ASSERT_LE(v, next);
    if (v == next) ++next;
  }
  EXPECT_EQ(next, c.compressed_vocab_size());
}

TEST(TokenCompressor, CompressPassesNegativesAndRejectsOutOfRange) {
  const TokenCompressor c = TokenCompressor::from_lookup({0, 1, 0, 2, 1});
  EXPECT_EQ(c.compressed_vocab_size(), 3);
  std::vector<int64_t> in = {4, -1, 3, 0, -100, 2};
  std::vector<int64_t> out(in.size());
  c.compress(in, out);
  EXPECT_THAT(out, ElementsAre(1, -1, 2, 0, -100, 0));
  c.compress(in, in);  // in place
  EXPECT_EQ(in, out);
  std::vector<int64_t> bad = {0, 1, 5, 2};
  std::vector<int64_t> untouched = {7, 7, 7, 7};
  try {
    c.compress(bad, untouched);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("id 5 at position 2"));
  }
  EXPECT_THAT(untouched, ElementsAre(7, 7, 7, 7));
}

TEST(TokenCompressor, FromLookupValidates) {
  EXPECT_NO_THROW(TokenCompressor::from_lookup({}));
  EXPECT_THROW(TokenCompressor::from_lookup({1, 0}), Error);   // not in first-appearance order
  EXPECT_THROW(TokenCompressor::from_lookup({0, 2}), Error);   // gap
  EXPECT_THROW(TokenCompressor::from_lookup({0, -1}), Error);  // negative
  try {
    TokenCompressor::from_lookup({0, 1, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_THAT(e.what(), HasSubstr("lookup[2] = 3"));
  }
}

}  // namespace
}  // namespace engram
