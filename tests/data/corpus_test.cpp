// corpus_test.cpp: corpus listing, the fixed split, Brown detagging, chunked streaming and the
// errors for missing, empty and non-UTF-8 corpora.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/test_files.h"
#include "engram/corpus.h"
#include "engram/error.h"
#include "test_helpers.h"

namespace engram {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

std::vector<TextChunk> read_all(const CorpusOptions& o) {
  CorpusReader r(o);
  std::vector<TextChunk> out;
  TextChunk c;
  while (r.next(&c)) out.push_back(c);
  return out;
}

using engram::testing::error_of;

TEST(BrownDetag, QuotesPunctuationAndParagraphs) {
  const std::string tagged =
      "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, it/pps added/vbd ./.\n"
      "It/pps ran/vbd (/( twice/rb )/) ;/. Allen/np said/vbd '/' yes/rb '/' ./.\n\n\n"
      "Merger/nn-hl proposed/vbn-hl \n"
      "However/wrb ,/, 1/2/cd is/bez half/nn ?/.\n\n"
      "\t``/`` Go/vb !/. ''/''\n";
  EXPECT_EQ(brown_detag(tagged, "t"),
            "The jury said \"no evidence\", it added. It ran (twice); Allen said 'yes'.\n"
            "Merger proposed\n"
            "However, 1/2 is half?\n"
            "\"Go!\"");
}

TEST(BrownDetag, SingleQuoteStateResetsPerParagraph) {
  EXPECT_EQ(brown_detag("a/at '/' b/nn\n\n'/' c/nn '/'\n", "t"), "a 'b\n'c'");
}

TEST(BrownDetag, InvalidUtf8NamesOffset) {
  const std::string err = error_of([] { brown_detag(std::string("ok/at \xff/nn"), "ca99"); });
  EXPECT_THAT(err, HasSubstr("ca99: invalid UTF-8 at byte offset 6"));
}

TEST(CorpusFiles, RecursiveSortedSkipsHidden) {
  TempDir d;
  d.write("b/z.txt", "z");
  d.write("a.txt", "a");
  d.write("b/a/y.txt", "y");
  d.write(".hidden/x.txt", "x");
  d.write("b/.x.txt", "x");
  CorpusOptions o;
  o.inputs = {d.path()};
  const auto files = list_corpus_files(o);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], d.path("a.txt"));
  EXPECT_EQ(files[1], d.path("b/a/y.txt"));
  EXPECT_EQ(files[2], d.path("b/z.txt"));
}

TEST(CorpusFiles, SplitEveryTenthFile) {
  TempDir d;
  for (int i = 0; i < 25; ++i) d.write(str_cat("f", i < 10 ? "0" : "", i), "x");
  CorpusOptions o;
  o.inputs = {d.path()};
  o.split = CorpusSplit::val;
  const auto val = list_corpus_files(o);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(val[0], d.path("f09"));
  EXPECT_EQ(val[1], d.path("f19"));
  o.split = CorpusSplit::train;
  EXPECT_EQ(list_corpus_files(o).size(), 23u);
}

TEST(CorpusFiles, BrownSplitIsFixed) {
  ENGRAM_REQUIRE_ASSET(test::brown_dir() + "/ca01");
  CorpusOptions o;
  o.inputs = {test::brown_dir()};
  o.format = CorpusFormat::brown;
  EXPECT_EQ(list_corpus_files(o).size(), 500u);  // README, CONTENTS, cats.txt are not texts
  o.split = CorpusSplit::val;
  const auto val = list_corpus_files(o);
  ASSERT_EQ(val.size(), 50u);
  EXPECT_EQ(val[0], test::brown_dir() + "/ca10");
  EXPECT_EQ(val[4], test::brown_dir() + "/cb06");  // ca01..ca44, then cb01
  o.split = CorpusSplit::train;
  const auto train = list_corpus_files(o);
  EXPECT_EQ(train.size(), 450u);
  for (const auto& f : val) EXPECT_EQ(std::count(train.begin(), train.end(), f), 0) << f;
}

TEST(CorpusReader, BrownDocumentsAreDetagged) {
  ENGRAM_REQUIRE_ASSET(test::brown_dir() + "/ca01");
  CorpusOptions o;
  o.inputs = {test::brown_dir() + "/ca01"};
  o.format = CorpusFormat::brown;
  const auto chunks = read_all(o);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_TRUE(chunks[0].document_end);
  EXPECT_EQ(
      chunks[0].text.rfind(
          "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
          "election produced \"no evidence\" that any irregularities took place.",
          0),
      0u);
  EXPECT_EQ(chunks[0].text.find('/'), std::string::npos);
}

TEST(CorpusReader, ChunksCutAfterNewlineBeforeText) {
  TempDir d;
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += str_cat("line ", i, " has  some words\n", i % 7 == 0 ? "\n  indented\n" : "");
  d.write("doc.txt", text);
  d.write("small.txt", "tiny");
  d.write("empty.txt", "");
  CorpusOptions o;
  o.inputs = {d.path()};
  o.chunk_bytes = 100;
  const auto chunks = read_all(o);
  std::string joined;
  size_t docs = 0;
  for (const TextChunk& c : chunks) {
    if (c.source == d.path("doc.txt")) {
      EXPECT_EQ(c.offset, joined.size());
      joined += c.text;
      if (!c.document_end) {
        EXPECT_LE(c.text.size(), 100u);
        EXPECT_EQ(c.text.back(), '\n');
        EXPECT_NE(text[joined.size()], ' ');
      }
    }
    docs += c.document_end;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(docs, 2u);  // the empty file is no document
  EXPECT_EQ(chunks.back().text, "tiny");
}

TEST(CorpusReader, ChunkWithoutNewlineCutsAtCharacterBoundary) {
  TempDir d;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "\xc3\xa9";  // é, two bytes each
  d.write("e.txt", text);
  CorpusOptions o;
  o.inputs = {d.path()};
  o.chunk_bytes = 33;
  std::string joined;
  for (const TextChunk& c : read_all(o)) {
    EXPECT_EQ(c.text.size() % 2, 0u);
    joined += c.text;
  }
  EXPECT_EQ(joined, text);
}

TEST(CorpusReader, InvalidUtf8NamesFileAndOffset) {
  TempDir d;
  std::string text(5000, 'a');
  for (size_t i = 50; i < text.size(); i += 51) text[i] = '\n';
  text[3210] = '\x80';
  const std::string path = d.write("bad.txt", text);
  CorpusOptions o;
  o.inputs = {path};
  o.chunk_bytes = 512;
  Errc code{};
  EXPECT_THAT(error_of([&] { read_all(o); }, &code),
              HasSubstr(path + ": invalid UTF-8 at byte offset 3210"));
  EXPECT_EQ(code, Errc::parse);
}

TEST(CorpusReader, EmptyCorpusIsAnError) {
  TempDir d;
  d.write("a.txt", "");
  d.write("b/c.txt", "");
  CorpusOptions o;
  o.inputs = {d.path()};
  Errc code{};
  EXPECT_THAT(error_of([&] { read_all(o); }, &code), HasSubstr("empty corpus: 2 file(s)"));
  EXPECT_EQ(code, Errc::invalid_argument);
  d.write("b/.hidden", "text");
  EXPECT_THAT(error_of([&] { read_all(o); }), HasSubstr("empty corpus"));
}

TEST(CorpusReader, MissingInputsAndNoFiles) {
  TempDir d;
  CorpusOptions o;
  o.inputs = {d.path("nope")};
  Errc code{};
  EXPECT_THAT(error_of([&] { CorpusReader r(o); }, &code),
              HasSubstr("nope: no such file or folder"));
  EXPECT_EQ(code, Errc::io);
  o.inputs = {d.path()};
  EXPECT_THAT(error_of([&] { CorpusReader r(o); }), HasSubstr("no files found in " + d.path()));
  d.write("x.txt", "text");
  o.format = CorpusFormat::brown;
  EXPECT_THAT(error_of([&] { CorpusReader r(o); }), HasSubstr("no Brown corpus"));
  o.format = CorpusFormat::text;
  o.split = CorpusSplit::val;
  EXPECT_THAT(error_of([&] { CorpusReader r(o); }), HasSubstr("val split is empty"));
  EXPECT_THROW(parse_corpus_split("dev"), Error);
}

}  // namespace
}  // namespace engram
