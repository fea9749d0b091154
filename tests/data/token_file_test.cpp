// token_file_test.cpp: token file round trips (uint16 and uint32), header validation errors,
// evaluation windows, the seeded window sampler, and corpus -> token file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "data/test_files.h"
#include "engram/bpe_trainer.h"
#include "engram/error.h"
#include "engram/tokenize_corpus.h"
#include "engram/tokenizer.h"
#include "test_helpers.h"

namespace engram {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

std::string write_tokens(const TempDir& d, const std::string& name, uint32_t vocab,
                         const std::vector<int32_t>& ids, uint32_t sep = 0) {
  const std::string path = d.path(name);
  TokenFileWriter w(path, vocab, sep);
  // Several appends, so the writer's buffering is exercised across calls.
  for (size_t i = 0; i < ids.size(); i += 1000) {
    w.append(std::span<const int32_t>(ids).subspan(i, std::min<size_t>(1000, ids.size() - i)));
  }
  w.finish();
  return path;
}

using engram::testing::error_of;

void overwrite(const std::string& path, size_t offset, const void* bytes, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

std::vector<int32_t> ramp(size_t n, uint32_t vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919 + i / 3) % vocab);
  return ids;
}

TEST(TokenFile, RoundTripUint16) {
  TempDir d;
  const auto ids = ramp(12345, 8192);
  const std::string path = write_tokens(d, "t.bin", 8192, ids, 1);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::filesystem::file_size(path), 64u + 2u * ids.size());
  const TokenFile f = TokenFile::open(path);
  EXPECT_EQ(f.size(), ids.size());
  EXPECT_EQ(f.header().bytes_per_token, 2u);
  EXPECT_EQ(f.header().separator_id, 1u);
  EXPECT_EQ(f.vocab_size(), 8192u);
  std::vector<int32_t> back(ids.size());
  f.read(0, back);
  EXPECT_EQ(back, ids);
  EXPECT_EQ(f.token(100), static_cast<uint32_t>(ids[100]));
  // Bytes on disk: little-endian uint16 after the 64-byte header.
  const std::string raw = test::read_file(path);
  EXPECT_EQ(raw.substr(0, 8), "ENGRAMTK");
  uint16_t third;
  std::memcpy(&third, raw.data() + 64 + 4, 2);
  EXPECT_EQ(third, ids[2]);
}

TEST(TokenFile, RoundTripUint32) {
  TempDir d;
  const auto ids = ramp(5000, 100000);
  const TokenFile f = TokenFile::open(write_tokens(d, "t.bin", 100000, ids));
  EXPECT_EQ(f.header().bytes_per_token, 4u);
  std::vector<int32_t> back(ids.size());
  f.read(0, back);
  EXPECT_EQ(back, ids);
}

TEST(TokenFile, WriterRejectsBadIdsAndCleansUp) {
  TempDir d;
  const std::string path = d.path("t.bin");
  {
    TokenFileWriter w(path, 100, 0);
    const std::vector<int32_t> ok = {1, 2, 3}, bad = {4, 100};
    w.append(ok);
    Errc code{};
    EXPECT_THAT(error_of([&] { w.append(bad); }, &code),
                HasSubstr("token 4 has id 100, outside [0, 100)"));
    EXPECT_EQ(code, Errc::out_of_range);
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_THROW(TokenFileWriter(path, 10, 10), Error);
}

TEST(TokenFile, HeaderErrors) {
  TempDir d;
  const std::string good = write_tokens(d, "good.bin", 1000, ramp(100, 1000));
  const std::string raw = test::read_file(good);
  auto variant = [&](const std::string& name, const std::string& bytes) {
    return d.write(name, bytes);
  };

  EXPECT_THAT(error_of([&] { TokenFile::open(variant("short.bin", raw.substr(0, 40))); }),
              HasSubstr("truncated token file: 40 bytes"));
  EXPECT_THAT(error_of([&] { TokenFile::open(variant("cut.bin", raw.substr(0, raw.size() - 3))); }),
              HasSubstr("truncated token file: the header announces 100 tokens (264 bytes) but the "
                        "file has 261"));
  std::string magic = raw;
  magic[0] = 'X';
  EXPECT_THAT(error_of([&] { TokenFile::open(variant("magic.bin", magic)); }),
              HasSubstr("not a token file"));
  std::string version = raw;
  version[8] = 2;
  EXPECT_THAT(error_of([&] { TokenFile::open(variant("version.bin", version)); }),
              HasSubstr("version 2"));
  std::string width = raw;
  width[12] = 3;
  EXPECT_THAT(error_of([&] { TokenFile::open(variant("width.bin", width)); }),
              HasSubstr("bytes per token 3"));
  std::string payload = raw;
  payload[70] ^= 1;
  Errc code{};
  EXPECT_THAT(error_of([&] { TokenFile::open(variant("sum.bin", payload)); }, &code),
              HasSubstr("checksum mismatch"));
  EXPECT_EQ(code, Errc::parse);
  EXPECT_NO_THROW(TokenFile::open(d.path("sum.bin"), /*verify_payload=*/false));
  EXPECT_THROW(TokenFile::open(d.path("missing.bin")), Error);
}

TEST(TokenFile, IdAboveVocabNamesPosition) {
  TempDir d;
  auto ids = ramp(50, 1000);
  const std::string path = write_tokens(d, "t.bin", 1000, ids);
  // Shrink the vocab in the header to 500 so some ids are out of range (the checksum still holds).
  const uint32_t small = 500;
  overwrite(path, 24, &small, 4);
  size_t first = 0;
  while (ids[first] < 500) ++first;
  Errc code{};
  EXPECT_THAT(error_of([&] { TokenFile::open(path); }, &code),
              HasSubstr(str_cat("token ", first, " (byte offset ", 64 + 2 * first, ") has id ",
                                ids[first])));
  EXPECT_EQ(code, Errc::out_of_range);
}

TEST(TokenFile, EvalWindowsTileTheFile) {
  TempDir d;
  std::vector<int32_t> ids(103);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const TokenFile f = TokenFile::open(write_tokens(d, "t.bin", 200, ids));
  const int64_t T = 10;
  EXPECT_EQ(f.eval_window_count(T), 10u);  // (103 - 1) / 10
  std::vector<int32_t> out(3 * (T + 1));
  f.eval_windows(7, 3, T, out);
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t <= T; ++t) EXPECT_EQ(out[b * (T + 1) + t], (7 + b) * T + t);
  }
  EXPECT_THROW(f.eval_windows(8, 3, T, out), Error);
  std::vector<int32_t> two(2);
  EXPECT_THROW(f.read(102, two), Error);
}

TEST(WindowSampler, SeededWindowsAreSlicesOfTheFile) {
  TempDir d;
  std::vector<int32_t> ids(64);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const TokenFile f = TokenFile::open(write_tokens(d, "t.bin", 64, ids));
  const int64_t B = 4, T = 8;
  const SamplingOrder R = SamplingOrder::random;
  WindowSampler a(f, B, T, 42, R), b(f, B, T, 42, R), c(f, B, T, 43, R);
  std::vector<int32_t> xa(B * (T + 1)), xb(xa.size()), xc(xa.size());
  std::set<int32_t> starts;
  bool differs = false;
  for (int step = 0; step < 200; ++step) {
    a.next(xa);
    b.next(xb);
    c.next(xc);
    ASSERT_EQ(xa, xb);
    differs |= xa != xc;
    for (int64_t r = 0; r < B; ++r) {
      const int32_t s = xa[r * (T + 1)];
      starts.insert(s);
      for (int64_t t = 0; t <= T; ++t) ASSERT_EQ(xa[r * (T + 1) + t], s + t);
    }
  }
  EXPECT_TRUE(differs);
  // 800 draws over 56 possible starts (0 .. 64 - 9): every one is reached, none past the end.
  EXPECT_EQ(starts.size(), 56u);
  EXPECT_EQ(*starts.rbegin(), 55);
  EXPECT_THROW(WindowSampler(f, 1, 64, 0, R), Error);
}

// Epoch order: within an epoch every window phase + k T (k < n) comes exactly once, in an order
// that is neither the identity nor the same from epoch to epoch; the same seed repeats it.
TEST(WindowSampler, EpochOrderVisitsEveryWindowOncePerEpoch) {
  TempDir d;
  std::vector<int32_t> ids(1003);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const TokenFile f = TokenFile::open(write_tokens(d, "t.bin", 2000, ids));
  for (const int64_t B : {1, 3, 7}) {
    const int64_t T = 10;
    WindowSampler s(f, B, T, 5), again(f, B, T, 5);
    const uint64_t n = s.windows_per_epoch();
    ASSERT_EQ(n, 99u);  // (1003 - 10) / 10
    std::vector<int32_t> x(size_t(B * (T + 1))), y(x.size());
    std::vector<int32_t> starts;
    std::vector<std::vector<int32_t>> epochs;
    while (epochs.size() < 3) {
      s.next(x);
      again.next(y);
      ASSERT_EQ(x, y);
      for (int64_t r = 0; r < B; ++r) {
        const int32_t st = x[size_t(r * (T + 1))];
        for (int64_t t = 0; t <= T; ++t) ASSERT_EQ(x[size_t(r * (T + 1) + t)], st + t);
        starts.push_back(st);
        if (starts.size() == n) {
          epochs.push_back(starts);
          starts.clear();
        }
      }
    }
    for (const std::vector<int32_t>& e : epochs) {
      const int32_t phase = *std::min_element(e.begin(), e.end());
      ASSERT_LT(phase, T);
      std::set<int32_t> seen;
      for (int32_t st : e) {
        ASSERT_EQ((st - phase) % T, 0) << st;
        seen.insert(st);
      }
      EXPECT_EQ(seen.size(), n);  // each window once
      EXPECT_LE(*seen.rbegin() + T, 1002);
      EXPECT_FALSE(std::is_sorted(e.begin(), e.end()));
    }
    EXPECT_NE(epochs[0], epochs[1]);
    EXPECT_NE(epochs[1], epochs[2]);
  }
  // The smallest file: 2 T tokens give one window an epoch.
  const TokenFile small =
      TokenFile::open(write_tokens(d, "s.bin", 2000, std::vector<int32_t>(20, 1)));
  WindowSampler one(small, 2, 10, 0);
  EXPECT_EQ(one.windows_per_epoch(), 1u);
  std::vector<int32_t> x(22);
  one.next(x);
  EXPECT_THROW(WindowSampler(small, 1, 11, 0), Error);
}

TEST(TokenizeCorpus, DocumentsEncodedWithSeparator) {
  TempDir d;
  const std::vector<std::string> docs = {"The cat sat.",
                                         "On the mat, the cat sat again.\nAnd again!", "x"};
  for (size_t i = 0; i < docs.size(); ++i) d.write(str_cat("in/doc", i, ".txt"), docs[i]);
  BpeTrainerOptions o;
  o.vocab_size = 300;
  BpeTrainer t(o);
  for (const auto& s : docs) t.add_text(s);
  const Tokenizer tok = Tokenizer::from_json(BpeTrainer::tokenizer_json(t.train(), o));
  CorpusOptions c;
  c.inputs = {d.path("in")};
  c.chunk_bytes = 16;  // forces several chunks in the second document
  const TokenizeStats s = tokenize_corpus(tok, c, d.path("out.bin"), 1);
  std::vector<int32_t> want;
  for (const auto& doc : docs) {
    const auto ids = tok.encode(doc, false);
    want.insert(want.end(), ids.begin(), ids.end());
    want.push_back(1);
  }
  EXPECT_EQ(s.documents, 3u);
  EXPECT_EQ(s.tokens, want.size());
  const TokenFile f = TokenFile::open(d.path("out.bin"));
  std::vector<int32_t> got(f.size());
  f.read(0, got);
  EXPECT_EQ(got, want);
  EXPECT_THROW(tokenize_corpus(tok, c, d.path("bad.bin"), 300), Error);
}

// Token files record the tokenizer they were made with (version 2); version-1 files still load
// and say they carry no digest; a different tokenizer of the same size is refused naming both.
TEST(TokenFile, RecordsTheTokenizerDigest) {
  TempDir d;
  auto train_tok = [](const std::string& text) {
    BpeTrainerOptions o;
    o.vocab_size = 266;
    BpeTrainer t(o);
    t.add_text(text);
    return Tokenizer::from_json(BpeTrainer::tokenizer_json(t.train(), o));
  };
  const Tokenizer a = train_tok("the cat sat on the mat, the cat sat again and again");
  const Tokenizer b = train_tok("one two three four five six seven, one two three again");
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  ASSERT_NE(tokenizer_digest(a), tokenizer_digest(b));
  EXPECT_EQ(tokenizer_digest(a),
            tokenizer_digest(train_tok("the cat sat on the mat, the cat sat again and again")));

  d.write("in/doc.txt", "the cat sat on the mat");
  CorpusOptions c;
  c.inputs = {d.path("in")};
  tokenize_corpus(a, c, d.path("a.bin"), 1);
  const TokenFile f = TokenFile::open(d.path("a.bin"));
  EXPECT_EQ(f.header().version, 2u);
  EXPECT_EQ(f.header().tokenizer_digest, tokenizer_digest(a));
  EXPECT_NO_THROW(check_token_file_tokenizer(f.header(), "a.bin", tokenizer_digest(a), "a.json"));
  const std::string msg = error_of(
      [&] { check_token_file_tokenizer(f.header(), "a.bin", tokenizer_digest(b), "b.json"); });
  EXPECT_THAT(msg, HasSubstr("a.bin"));
  EXPECT_THAT(msg, HasSubstr("b.json"));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tokenizer_digest(b)));
  EXPECT_THAT(msg, HasSubstr(hex));

  // A version-1 file (no digest) loads and is accepted against any tokenizer.
  const std::string old = write_tokens(d, "old.bin", 300, ramp(100, 300));
  const TokenFile o = TokenFile::open(old);
  EXPECT_EQ(o.header().version, 1u);
  EXPECT_EQ(o.header().tokenizer_digest, 0u);
  EXPECT_NO_THROW(check_token_file_tokenizer(o.header(), old, tokenizer_digest(b), "b.json"));
  // Version 1 keeps its reserved bytes zero; version 2 must carry a digest.
  const uint8_t one = 1;
  overwrite(old, 41, &one, 1);
  EXPECT_THAT(error_of([&] { TokenFile::open(old); }), HasSubstr("reserved header byte 41"));
  const uint32_t v2 = 2;
  const uint64_t zero = 0;
  overwrite(old, 8, &v2, 4);
  overwrite(old, 40, &zero, 8);
  EXPECT_THAT(error_of([&] { TokenFile::open(old); }), HasSubstr("without a tokenizer digest"));
}

std::vector<int32_t> all_tokens(const std::string& path) {
  const TokenFile f = TokenFile::open(path);
  std::vector<int32_t> ids(f.size());
  f.read(0, ids);
  return ids;
}

// The two held-out rules of tokenize_dataset: the tail of the token stream for fewer than 10
// files (or when a fraction is given), every 10th file otherwise.
TEST(TokenizeDataset, HeldOutRules) {
  TempDir d;
  std::vector<std::string> docs;
  for (int i = 0; i < 12; ++i) docs.push_back(str_cat("document ", i, ": the cat sat on the mat."));
  for (size_t i = 0; i < docs.size(); ++i)
    d.write(str_cat("in/doc", i / 10, i % 10, ".txt"), docs[i]);
  d.write("one/my.txt", docs[0] + "\n" + docs[1] + "\n" + docs[2]);
  BpeTrainerOptions o;
  o.vocab_size = 300;
  BpeTrainer t(o);
  for (const auto& s : docs) t.add_text(s);
  const Tokenizer tok = Tokenizer::from_json(BpeTrainer::tokenizer_json(t.train(), o));

  // One file: fraction rule with the default F; val is the last ceil(0.1 N) tokens.
  DatasetOptions one;
  one.corpus.inputs = {d.path("one")};
  const DatasetStats a = tokenize_dataset(tok, one, d.path("a"), 1);
  EXPECT_EQ(a.rule, ValRule::fraction);
  EXPECT_EQ(a.val_fraction, kDefaultValFraction);
  EXPECT_EQ(a.files, 1u);
  std::vector<int32_t> want = tok.encode(docs[0] + "\n" + docs[1] + "\n" + docs[2], false);
  want.push_back(1);
  const uint64_t n = want.size();
  const uint64_t n_val = (n + 9) / 10;
  EXPECT_EQ(a.val.token_count, n_val);
  EXPECT_EQ(a.train.token_count, n - n_val);
  std::vector<int32_t> got = all_tokens(d.path("a/train.bin"));
  const std::vector<int32_t> val = all_tokens(d.path("a/val.bin"));
  got.insert(got.end(), val.begin(), val.end());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(std::filesystem::exists(d.path("a/stream.bin")));

  // Twelve files: file 9 is held out, the rest is train, in sorted order.
  DatasetOptions many;
  many.corpus.inputs = {d.path("in")};
  const DatasetStats b = tokenize_dataset(tok, many, d.path("b"), 1);
  EXPECT_EQ(b.rule, ValRule::files);
  EXPECT_EQ(b.files, 12u);
  EXPECT_EQ(b.documents, 12u);
  std::vector<int32_t> want_val = tok.encode(docs[9], false);
  want_val.push_back(1);
  EXPECT_EQ(all_tokens(d.path("b/val.bin")), want_val);
  // The same files with a fraction given: the fraction rule.
  many.val_fraction = 0.5;
  const DatasetStats c = tokenize_dataset(tok, many, d.path("c"), 1);
  EXPECT_EQ(c.rule, ValRule::fraction);
  EXPECT_EQ(c.val.token_count, (c.train.token_count + c.val.token_count + 1) / 2);

  for (const double bad : {0.0, 1.0, -0.5, 2.0}) {
    one.val_fraction = bad;
    Errc code{};
    EXPECT_THAT(testing::error_of([&] { tokenize_dataset(tok, one, d.path("bad"), 1); }, &code),
                HasSubstr("val fraction"));
    EXPECT_EQ(code, Errc::invalid_argument);
  }
}

}  // namespace
}  // namespace engram
