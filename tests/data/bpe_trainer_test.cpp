// bpe_trainer_test.cpp: the incremental BPE trainer against the plain reference (same merges,
// in the same order), hand-checked merges and tie-breaking, and the written tokenizer.json
// loaded back by engram::Tokenizer (ids, specials, decode round trip).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "data/test_files.h"
#include "engram/bpe_trainer.h"
#include "engram/compressor.h"
#include "engram/corpus.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "test_helpers.h"

namespace engram {
namespace {

using ::testing::HasSubstr;

// Id of byte b in a vocabulary with the default three special tokens.
int32_t byte_id(char b) {
  return 3 + static_cast<unsigned char>(b);
}

std::vector<std::pair<int32_t, int32_t>> merge_pairs(const BpeVocab& v) {
  std::vector<std::pair<int32_t, int32_t>> out;
  for (const BpeMerge& m : v.merges) out.emplace_back(m.left, m.right);
  return out;
}

// Zipf-ish random words over a small alphabet, with spaces, digits, punctuation and UTF-8.
std::string synthetic_text(uint32_t seed, size_t words) {
  std::mt19937 rng(seed);
  const std::vector<std::string> syll = {"ab", "ra", "ca", "d",           "e",  "\xc3\xa9",
                                         "th", "in", "g",  "s",           "'s", "7",
                                         "42", "!",  ",",  "\xe6\x97\xa5"};
  std::string s;
  for (size_t i = 0; i < words; ++i) {
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      const size_t r = rng() % 100;
      s += syll[(r * r / 100) % syll.size()];
    }
    s += rng() % 13 == 0 ? "\n" : rng() % 17 == 0 ? "  " : " ";
  }
  return s;
}

TEST(BpeTrainer, MatchesReferenceOnSyntheticText) {
  for (const uint32_t seed : {1u, 2u, 3u}) {
    BpeTrainerOptions o;
    o.vocab_size = 600;
    BpeTrainer t(o);
    t.add_text(synthetic_text(seed, 3000));
    const BpeVocab fast = t.train(), ref = t.train_reference();
    ASSERT_GT(fast.merges.size(), 50u) << "seed " << seed;
    EXPECT_EQ(merge_pairs(fast), merge_pairs(ref)) << "seed " << seed;
    EXPECT_EQ(fast.tokens, ref.tokens) << "seed " << seed;
    for (size_t i = 0; i < fast.merges.size(); ++i)
      ASSERT_EQ(fast.merges[i].count, ref.merges[i].count) << i;
  }
}

TEST(BpeTrainer, MatchesReferenceOnBrown) {
  ENGRAM_REQUIRE_ASSET(test::brown_dir() + "/ca01");
  CorpusOptions c;
  c.inputs = {test::brown_dir() + "/ca01", test::brown_dir() + "/cn05",
              test::brown_dir() + "/cj22"};
  c.format = CorpusFormat::brown;
  BpeTrainerOptions o;
  o.vocab_size = 700;
  BpeTrainer t(o);
  CorpusReader r(c);
  TextChunk chunk;
  while (r.next(&chunk)) t.add_text(chunk.text);
  const BpeVocab fast = t.train(), ref = t.train_reference();
  EXPECT_EQ(fast.tokens.size(), 700u);
  EXPECT_EQ(merge_pairs(fast), merge_pairs(ref));
  EXPECT_EQ(fast.tokens, ref.tokens);
}

// The trained tokenizer feeds Engram's tokenizer compression (DESIGN 2.1) unchanged.
TEST(BpeTrainer, TrainedTokenizerCompresses) {
  ENGRAM_REQUIRE_ASSET(test::brown_dir() + "/ca01");
  CorpusOptions c;
  c.inputs = {test::brown_dir() + "/ca01", test::brown_dir() + "/ca02"};
  c.format = CorpusFormat::brown;
  BpeTrainerOptions o;
  o.vocab_size = 1000;
  BpeTrainer t(o);
  t.add_corpus(c);
  const Tokenizer tok = Tokenizer::from_json(BpeTrainer::tokenizer_json(t.train(), o));
  const TokenCompressor comp = TokenCompressor::from_tokenizer(tok);
  EXPECT_EQ(comp.vocab_size(), tok.vocab_size());
  EXPECT_LT(comp.compressed_vocab_size(), comp.vocab_size());
  // " The" and " the" share a key ("the"); the special tokens keep ids 0, 1, 2.
  const auto upper = tok.token_to_id("\xc4\xa0The"), lower = tok.token_to_id("\xc4\xa0the");
  ASSERT_TRUE(upper && lower);
  EXPECT_EQ(comp.lookup()[*upper], comp.lookup()[*lower]);
  EXPECT_EQ(comp.lookup()[0], 0);
  EXPECT_EQ(comp.lookup()[1], 1);
  EXPECT_EQ(comp.lookup()[2], 2);
}

TEST(BpeTrainer, HandCheckedMergesAndTieBreak) {
  BpeTrainerOptions o;
  o.vocab_size = 3 + 256 + 3;
  o.min_frequency = 1;
  BpeTrainer t(o);
  // Words: "aaab" x1, " aab" x2 (the regex keeps one leading non-letter with the letters).
  t.add_text("aaab aab aab");
  EXPECT_EQ(t.total_words(), 3u);
  EXPECT_EQ(t.unique_words(), 2u);
  const BpeVocab v = t.train();
  // Pair counts: (a,a) 2+2 = 4 ("aaa" holds two), (a,b) 1+2 = 3, (' ',a) 2: merge (a,a) first.
  ASSERT_EQ(v.merges.size(), 3u);
  EXPECT_EQ(v.merges[0].left, byte_id('a'));
  EXPECT_EQ(v.merges[0].right, byte_id('a'));
  EXPECT_EQ(v.merges[0].count, 4u);
  EXPECT_EQ(v.tokens[v.merges[0].result], "aa");
  // Now "aa a b" and " aa b": (aa,b) 2, (' ',aa) 2, (aa,a) 1, (a,b) 1. The tie between
  // (' ', aa) and (aa, b) goes to the smaller left id: ' ' is byte 32, aa is a new id.
  EXPECT_EQ(v.merges[1].left, byte_id(' '));
  EXPECT_EQ(v.tokens[v.merges[1].result],
            "\xc4\xa0"
            "aa");  // Ġaa
  EXPECT_EQ(v.merges[1].count, 2u);
  EXPECT_EQ(v.tokens[v.merges[2].result],
            "\xc4\xa0"
            "aab");
  EXPECT_EQ(v.merges[2].count, 2u);
}

TEST(BpeTrainer, MinFrequencyStopsEarly) {
  BpeTrainerOptions o;
  o.vocab_size = 5000;
  BpeTrainer t(o);
  t.add_text("hello hello world");
  const BpeVocab v = t.train();
  // Words "hello", " hello", " world": only the pairs inside "hello" occur twice. Ties go to
  // the smaller left id: (e,l), then (h,el) (h < l < new ids), then (l,o), then (hel,lo).
  ASSERT_EQ(v.tokens.size(), 3u + 256u + 4u);
  EXPECT_EQ(v.tokens[259], "el");
  EXPECT_EQ(v.tokens[260], "hel");
  EXPECT_EQ(v.tokens[261], "lo");
  EXPECT_EQ(v.tokens[262], "hello");
  EXPECT_EQ(merge_pairs(v), merge_pairs(t.train_reference()));
}

TEST(BpeTrainer, AddCorpusCountsLikeAddText) {
  test::TempDir d;
  std::vector<std::string> docs;
  for (uint32_t i = 0; i < 11; ++i)
    docs.push_back(d.write(str_cat("c/doc", i), synthetic_text(100 + i, 400)));
  CorpusOptions c;
  c.inputs = {d.path("c")};
  c.chunk_bytes = 200;  // many chunks, all cut at line starts (lines are short)
  BpeTrainerOptions o;
  o.vocab_size = 500;
  BpeTrainer parallel(o), serial(o);
  const CorpusStats stats = parallel.add_corpus(c);
  EXPECT_EQ(stats.files, 11u);
  EXPECT_EQ(stats.documents, 11u);
  uint64_t bytes = 0;
  for (const std::string& path : docs) {
    const std::string text = test::read_file(path);
    serial.add_text(text);
    bytes += text.size();
  }
  EXPECT_EQ(stats.bytes, bytes);
  EXPECT_EQ(parallel.total_words(), serial.total_words());
  EXPECT_EQ(parallel.unique_words(), serial.unique_words());
  EXPECT_EQ(parallel.train().tokens, serial.train().tokens);
}

TEST(BpeTrainer, SpecialTokenStringsAreNotCounted) {
  BpeTrainerOptions o;
  o.vocab_size = 300;
  BpeTrainer t(o);
  t.add_text("<|eos|>x<|pad|><|bos|>");
  EXPECT_EQ(t.total_words(), 1u);  // "x"
  t.add_text("a<|eos|><|eos|>b<|bos|>c<|eos|>");
  EXPECT_EQ(t.total_words(), 4u);  // + "a", "b", "c"
  EXPECT_EQ(t.unique_words(), 4u);
}

TEST(BpeTrainer, RejectsBadOptionsAndEmptyCorpus) {
  BpeTrainerOptions o;
  o.vocab_size = 258;
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.vocab_size = 1000;
  o.special_tokens = {"<a>", "<a>"};
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {"!"};  // the stand-in of byte '!'
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {"<s>"};
  o.split_regex = "(unclosed";
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.split_regex = kGpt4SplitRegex;
  BpeTrainer t(o);
  try {
    t.train();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no words"));
  }
}

TEST(BpeTrainer, WrittenJsonLoadsAndRoundTrips) {
  BpeTrainerOptions o;
  o.vocab_size = 800;
  BpeTrainer t(o);
  const std::string text = synthetic_text(7, 5000);
  t.add_text(text);
  const BpeVocab v = t.train();
  const Tokenizer tok = Tokenizer::from_json(BpeTrainer::tokenizer_json(v, o), "trained");
  ASSERT_GT(v.tokens.size(), 600u);
  EXPECT_EQ(tok.vocab_size(), static_cast<int64_t>(v.tokens.size()));
  EXPECT_EQ(tok.token_to_id("<|bos|>"), 0);
  EXPECT_EQ(tok.token_to_id("<|eos|>"), 1);
  EXPECT_EQ(tok.token_to_id("<|pad|>"), 2);
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(3));
  for (int32_t i = 0; i < tok.vocab_size(); ++i) EXPECT_EQ(tok.id_to_token(i), v.tokens[i]);

  const std::string probe =
      "abracadabra's 4242 \xe6\x97\xa5\xe6\x97\xa5 caf\xc3\xa9!\r\n\n  x<|eos|>y \xf0\x9f\x98\x80";
  for (const std::string& s : {text.substr(0, 2000), probe}) {
    const std::vector<int32_t> ids = tok.encode(s, /*add_special_tokens=*/false);
    EXPECT_EQ(tok.decode(ids), s);
  }
  // The training text compresses: fewer ids than bytes; the special string is one id.
  EXPECT_LT(tok.encode(text, false).size(), text.size() / 2);
  const auto ids = tok.encode("x<|eos|>y", false);
  EXPECT_THAT(ids, ::testing::Contains(1));
  EXPECT_EQ(ids.size(), 3u);
}

}  // namespace
}  // namespace engram
