// Tokenizer unit tests on small hand-made tokenizer.json files: BPE merging (heap version
// against the plain reference), merges in both JSON forms, split behaviors, added/special
// tokens, normalizers, post-processing, byte-level decode with invalid UTF-8, and the error
// messages for malformed files and input. Parity with HF on DeepSeek-V3's tokenizer lives in
// tests/python/test_text_parity.py.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engram/error.h"
#include "engram/tokenizer.h"
#include "test_helpers.h"
#include "text/bpe.h"
#include "text/pipeline.h"
#include "text/regex.h"
#include "text/unicode.h"
#include "text/utf8.h"

namespace engram {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string bl(std::string_view s) {
  return text::bytes_to_byte_level(s);
}

// A byte-level BPE tokenizer: the 256 byte stand-ins (ids 0..255) plus the merges given.
json byte_level_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges,
                          bool array_form) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    text::append_utf8(s, text::byte_to_char(static_cast<uint8_t>(b)));
    vocab[s] = b;
  }
  json m = json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    if (array_form) {
      m.push_back(json::array({a, b}));
    } else {
      m.push_back(a + " " + b);
    }
  }
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer",
               {{"type", "ByteLevel"},
                {"add_prefix_space", false},
                {"trim_offsets", true},
                {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder",
               {{"type", "ByteLevel"},
                {"add_prefix_space", true},
                {"trim_offsets", true},
                {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"vocab", vocab},
                {"merges", m}}}};
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"h", "e"},   {bl(" "), "t"}, {bl(" t"), "he"}, {"l", "l"},
    {"he", "ll"}, {"hell", "o"},  {"a", "a"}};

Tokenizer load(const json& j) {
  return Tokenizer::from_json(j.dump(), "test.json");
}

std::vector<std::string> tokens_of(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.id_to_token(id));
  return out;
}

TEST(Tokenizer, BpeMergesByRank) {
  const Tokenizer t = load(byte_level_tokenizer(kMerges, false));
  EXPECT_THAT(tokens_of(t, t.encode("hello the")), ElementsAre("hello", bl(" the")));
  // "aaa": the (a, a) pair merges leftmost first.
  EXPECT_THAT(tokens_of(t, t.encode("aaa")), ElementsAre("aa", "a"));
  EXPECT_THAT(tokens_of(t, t.encode("hex")), ElementsAre("he", "x"));
}

TEST(Tokenizer, MergesStringAndArrayFormsAgree) {
  const Tokenizer a = load(byte_level_tokenizer(kMerges, false));
  const Tokenizer b = load(byte_level_tokenizer(kMerges, true));
  for (const char* s : {"hello the world", "aaaa hell", "the theme", ""})
    EXPECT_EQ(a.encode(s), b.encode(s)) << s;
}

TEST(Tokenizer, HeapBpeMatchesReferenceOnRandomWords) {
  // Many overlapping merges so that ranks interact.
  std::vector<std::pair<std::string, std::string>> merges;
  const std::string alphabet = "abcd";
  for (char x : alphabet)
    for (char y : alphabet) merges.push_back({std::string(1, x), std::string(1, y)});
  for (char x : alphabet)
    for (char y : alphabet)
      for (char z : alphabet) merges.push_back({std::string(1, x) + y, std::string(1, z)});
  std::mt19937 rng(7);
  std::shuffle(merges.begin(), merges.end(), rng);
  const json j = byte_level_tokenizer(merges, true);
  const std::string origin = "test.json";
  const auto model = text::BpeModel::from_json(j["model"], text::JsonPath{origin, "model"});
  std::uniform_int_distribution<int> len(1, 40), ch(0, 3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string w;
    const int n = len(rng);
    for (int k = 0; k < n; ++k) w.push_back(alphabet[ch(rng)]);
    std::vector<int32_t> fast, ref;
    model->tokenize(w, fast);
    model->tokenize_reference(w, ref);
    ASSERT_EQ(fast, ref) << w;
  }
}

TEST(Tokenizer, SplitBehaviorsMatchHfDocumentation) {
  // HF's documented example: "the-final--countdown" split on "-".
  const std::string s = "the-final--countdown";
  const text::Regex dash = text::Regex::literal("-", "test");
  auto run = [&](text::SplitBehavior b) {
    std::vector<std::string> out;
    for (auto v : text::split_by_behavior(s, dash.find_pieces(s), b)) out.emplace_back(v);
    return out;
  };
  EXPECT_THAT(run(text::SplitBehavior::removed), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(run(text::SplitBehavior::isolated),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(run(text::SplitBehavior::merged_with_previous),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(run(text::SplitBehavior::merged_with_next),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(run(text::SplitBehavior::contiguous),
              ElementsAre("the", "-", "final", "--", "countdown"));
}

TEST(Tokenizer, OnigEscapesAreRewritten) {
  EXPECT_EQ(text::onig_to_pcre2("a\\sb"),
            "a[\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
            "\\x{202F}\\x{205F}\\x{3000}]b");
  EXPECT_EQ(text::onig_to_pcre2("[\\h]"), "[0-9a-fA-F]");
  EXPECT_EQ(text::onig_to_pcre2("\\\\s"), "\\\\s");  // an escaped backslash, then a literal s
  // U+180E (Mongolian vowel separator) is not White_Space: \s must not match it.
  const text::Regex ws = text::Regex::from_onig("\\s+", "test");
  EXPECT_TRUE(ws.find_all("\xE1\xA0\x8E").empty());
  EXPECT_EQ(ws.find_all("a \xC2\x85 b").size(), 1u);
}

TEST(Tokenizer, EmptyMatchesFollowOnigIteration) {
  // "a*" over "baa": onig yields (0,0), (1,3), and no empty match right after (1,3) at 3.
  const text::Regex r = text::Regex::from_onig("a*", "test");
  const auto m = r.find_all("baa");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], std::make_pair(size_t{0}, size_t{0}));
  EXPECT_EQ(m[1], std::make_pair(size_t{1}, size_t{3}));
}

json with_added(json j, json added) {
  j["added_tokens"] = std::move(added);
  return j;
}

json added_token(int id, const std::string& content, bool special, bool normalized,
                 bool lstrip = false, bool rstrip = false, bool single_word = false) {
  return json{{"id", id},          {"content", content}, {"single_word", single_word},
              {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
              {"special", special}};
}

TEST(Tokenizer, SpecialTokensMatchInRawTextAndDecode) {
  json j = byte_level_tokenizer(kMerges, false);
  j = with_added(j, json::array({added_token(300, "<s>", true, false),
                                 added_token(301, "<sep>", true, false)}));
  const Tokenizer t = load(j);
  EXPECT_EQ(t.vocab_size(), 302);
  const auto ids = t.encode("<s>hello<sep> the");
  EXPECT_THAT(tokens_of(t, ids), ElementsAre("<s>", "hello", "<sep>", bl(" the")));
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(5));
  EXPECT_EQ(t.decode(ids, false), "<s>hello<sep> the");
  EXPECT_EQ(t.decode(ids, true), "hello the");
  // Leftmost-longest: "<sep>" is not cut at "<s" and "<s>" wins where it starts first.
  EXPECT_THAT(tokens_of(t, t.encode("<<s>")), ElementsAre("<", "<s>"));
}

TEST(Tokenizer, AddedTokenStripAndSingleWord) {
  json j = byte_level_tokenizer(kMerges, false);
  j = with_added(
      j, json::array({added_token(300, "[M]", true, false, /*lstrip=*/true, /*rstrip=*/true),
                      added_token(301, "he", false, false, false, false, /*single_word=*/true)}));
  const Tokenizer t = load(j);
  // lstrip/rstrip swallow the white space around [M].
  EXPECT_THAT(tokens_of(t, t.encode("a  [M]  b")), ElementsAre("a", "[M]", "b"));
  // single_word: "he" alone is the added token; inside "hex" it is not.
  EXPECT_THAT(tokens_of(t, t.encode("he hex")), ElementsAre("he", bl(" "), "he", "x"));
  EXPECT_EQ(t.encode("he hex")[0], 301);
  EXPECT_NE(t.encode("he hex")[2], 301);
}

TEST(Tokenizer, NormalizersAndTemplatePostProcessor) {
  json j = byte_level_tokenizer(kMerges, false);
  j["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       json::array({json{{"type", "NFKC"}}, json{{"type", "Lowercase"}},
                    json{{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                    json{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}})}};
  j = with_added(j, json::array({added_token(300, "<s>", true, false)}));
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", json::array({300})}, {"tokens", json::array({"<s>"})}}}}}};
  const Tokenizer t = load(j);
  // NFKC folds the ligature, Lowercase, the whitespace run collapses, Strip trims.
  EXPECT_THAT(tokens_of(t, t.encode("  HELLO \t\n THE\xEF\xAC\x81 ")),
              ElementsAre("<s>", "hello", bl(" the"), "f", "i"));
  EXPECT_THAT(tokens_of(t, t.encode("HELLO", false)), ElementsAre("hello"));
}

TEST(Tokenizer, DecodeProducesReplacementCharactersLikeRust) {
  const Tokenizer t = load(byte_level_tokenizer(kMerges, false));
  // Byte stand-ins of "é" = C3 A9: alone, each half is invalid UTF-8.
  const int32_t c3 = 0xC3, a9 = 0xA9;
  EXPECT_EQ(t.decode(std::vector<int32_t>{c3}, false), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode(std::vector<int32_t>{c3, a9}, false), "\xC3\xA9");
  EXPECT_THROW(t.decode(std::vector<int32_t>{999}, false), Error);
  try {
    t.decode(std::vector<int32_t>{1, 2, -4}, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_THAT(e.what(), HasSubstr("position 2"));
  }
}

TEST(Utf8, LossyConversionUsesMaximalSubparts) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(text::utf8_lossy("a\xF0\x90\x80"
                             "b"),
            "a" + R + "b");                                // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(text::utf8_lossy("\xE0\x80"), R + R);          // E0 80 is never valid
  EXPECT_EQ(text::utf8_lossy("\xED\xA0\x80"), R + R + R);  // surrogate
  EXPECT_EQ(text::utf8_lossy("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(text::utf8_lossy("\xC0\xAF"), R + R);                  // overlong
  EXPECT_EQ(text::utf8_lossy("\xE2\x82"), R);
  EXPECT_EQ(text::find_invalid_utf8("abc\xE2\x82"), 3u);
  EXPECT_EQ(text::find_invalid_utf8("12345678\xFF"), 8u);
  EXPECT_EQ(text::find_invalid_utf8("ok \xE2\x82\xAC"), text::kUtf8Valid);
}

TEST(Unicode, LowercaseIsPerCodePointFullMapping) {
  EXPECT_EQ(text::lowercase_full("\xCE\x91\xCE\xA3"),
            "\xCE\xB1\xCF\x83");                             // "ΑΣ" -> "ασ" (no final sigma)
  EXPECT_EQ(text::lowercase_full("\xC4\xB0"), "i\xCC\x87");  // İ -> i + U+0307
  EXPECT_EQ(text::strip_marks("\xE0\xA4\x95\xE0\xA4\xBE"),
            "\xE0\xA4\x95");  // Mc (U+093E) is removed too
}

// --- errors --------------------------------------------------------------------------------

void expect_error(const std::string& json_text, Errc code, const std::string& fragment) {
  try {
    Tokenizer::from_json(json_text, "bad.json");
    FAIL() << "no error for " << json_text.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(fragment));
    EXPECT_THAT(e.what(), HasSubstr("bad.json"));
  }
}

TEST(TokenizerErrors, MalformedFilesNameTheJsonPath) {
  const json good = byte_level_tokenizer(kMerges, false);
  expect_error("{\"model\": ", Errc::parse, "malformed JSON");
  expect_error("{\"model\": " + std::string(100000, '{') + "}", Errc::parse,
               "JSON nests deeper than 64 levels");
  expect_error("[]", Errc::parse, "expected an object");
  json j = good;
  j.erase("model");
  expect_error(j.dump(), Errc::parse, "model: missing");
  j = good;
  j["model"]["type"] = "WordPiece";
  expect_error(j.dump(), Errc::unsupported, "model.type");
  // A long string from the file is quoted cut, not whole.
  j["model"]["type"] = std::string(100000, 'W');
  expect_error(j.dump(), Errc::unsupported,
               "model.type: model type \"" + std::string(80, 'W') + "...\" is not supported");
  j = good;
  j["model"]["merges"].push_back(std::string(100000, 'z') + " h");
  expect_error(j.dump(), Errc::parse,
               "merge names token \"" + std::string(80, 'z') + "...\" which is not");
  j = good;
  j["model"]["vocab"] = json::array();
  expect_error(j.dump(), Errc::parse, "model.vocab: expected an object");
  j = good;
  j["model"]["merges"].push_back("h zz");
  expect_error(j.dump(), Errc::parse, "model.merges[7]: merge names token \"zz\"");
  j = good;
  j["model"]["merges"].push_back(json::array({"h", 3}));
  expect_error(j.dump(), Errc::parse, "model.merges[7][1]: expected a string");
  j = good;
  j["model"]["merges"].push_back("a b c");
  expect_error(j.dump(), Errc::parse, "model.merges[7]");
  j = good;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array(
           {json{{"type", "Split"}, {"pattern", {{"Regex", "(ab"}}}, {"behavior", "Isolated"}}})}};
  expect_error(j.dump(), Errc::parse, "pre_tokenizer.pretokenizers[0].pattern.Regex: bad regex");
  j = good;
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(j.dump(), Errc::unsupported, "pre_tokenizer.type");
  j = good;
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({json{{"type", "BertNormalizer"}}})}};
  expect_error(j.dump(), Errc::unsupported, "normalizer.normalizers[0].type");
  j = good;
  j["added_tokens"] = json::array({json{{"id", "x"}, {"content", "<s>"}}});
  expect_error(j.dump(), Errc::parse, "added_tokens[0].id: expected an integer");
  j = good;
  j["model"]["dropout"] = 0.1;
  expect_error(j.dump(), Errc::unsupported, "model.dropout");
  j = good;
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j.dump(), Errc::unsupported, "decoder.type");
}

TEST(TokenizerErrors, InvalidUtf8InputNamesTheByteOffset) {
  const Tokenizer t = load(byte_level_tokenizer(kMerges, false));
  try {
    t.encode("hello \xC3(");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::parse);
    EXPECT_THAT(e.what(), HasSubstr("byte offset 6"));
  }
}

TEST(TokenizerErrors, MissingFileIsAnIoError) {
  try {
    Tokenizer::from_file("/nonexistent/tokenizer.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/tokenizer.json"));
  }
}

// DeepSeek-V3's tokenizer, when the asset is present: the heap BPE against the reference on
// every fourth vocabulary entry, doubled so that merges across the seam are exercised.
TEST(TokenizerDeepSeek, HeapBpeMatchesReferenceOnVocabulary) {
  const std::filesystem::path p =
      std::filesystem::path(ENGRAM_SOURCE_DIR) / "assets/deepseek_v3/tokenizer.json";
  ENGRAM_REQUIRE_ASSET(p);
  std::ifstream in(p);
  const json j = json::parse(in);
  const std::string origin = p.string();
  const auto model = text::BpeModel::from_json(j["model"], text::JsonPath{origin, "model"});
  size_t checked = 0;
  for (size_t id = 0; id < model->id_to_token().size(); id += 4) {
    const std::string& tok = model->id_to_token()[id];
    std::vector<int32_t> fast, ref;
    model->tokenize(tok + tok, fast);
    model->tokenize_reference(tok + tok, ref);
    ASSERT_EQ(fast, ref) << tok;
    ++checked;
  }
  EXPECT_EQ(checked, 32000u);
}

}  // namespace
}  // namespace engram
