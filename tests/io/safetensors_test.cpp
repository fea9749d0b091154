// safetensors: round trips through the writer and reader, multi-shard checkpoints, and the fault
// suite (every lie a header can tell must be refused with a message naming where).
#include "engram/safetensors.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "engram/error.h"

namespace engram {
namespace {

namespace fs = std::filesystem;

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("engram_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file made of: 8-byte LE length of `header`, `header`, `data_bytes` bytes of data.
  std::string raw(const std::string& name, const std::string& header, size_t data_bytes,
                  int64_t claimed_len = -1) {
    std::string bytes(8, '\0');
    const uint64_t n = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
    bytes += header;
    bytes.append(data_bytes, '\x5A');
    write_file(name, bytes);
    return path(name);
  }
  void write_file(const std::string& name, const std::string& bytes) {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }

  // Expects open() to throw `code` with every one of `needles` in the message.
  void expect_refused(const std::string& file, Errc code, std::vector<std::string> needles) {
    try {
      SafetensorsCheckpoint::open(file);
      ADD_FAILURE() << file << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      for (const auto& n : needles) {
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
            << "message lacks '" << n << "': " << e.what();
      }
    }
  }

  fs::path dir_;
};

template <typename T>
std::span<const std::byte> as_bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

TEST_F(Safetensors, WriteThenReadRoundTrip) {
  std::vector<float> a(6);
  std::iota(a.begin(), a.end(), 0.5f);
  std::vector<uint8_t> q(64 * 3, 0x38), s(2 * 3, 127);
  std::vector<int64_t> ids = {-1, 5, 1LL << 40};
  std::vector<uint16_t> h = {0x3F80};
  const std::vector<TensorView> ts = {
      {"a", Dtype::F32, {2, 3}, as_bytes_of(a)},
      {"layers.1.engram.embed.weight", Dtype::F8_E4M3, {3, 64}, as_bytes_of(q)},
      {"layers.1.engram.embed.scale", Dtype::F8_E8M0, {3, 2}, as_bytes_of(s)},
      {"ids", Dtype::I64, {3}, as_bytes_of(ids)},
      {"scalar", Dtype::BF16, {}, as_bytes_of(h)},
      {"empty", Dtype::F32, {0, 4}, {}},
  };
  save_safetensors(path("m.safetensors"), ts, {{"format", "pt"}});

  const SafetensorsFile f = SafetensorsFile::open(path("m.safetensors"));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (const TensorView& t : ts) {
    const TensorInfo& info = f.tensor(t.name);
    EXPECT_EQ(info.dtype, t.dtype);
    EXPECT_EQ(info.shape, t.shape);
    EXPECT_EQ(info.nbytes, t.data.size());
    EXPECT_EQ(info.offset % dtype_size(info.dtype), 0u) << t.name << " is not aligned";
    const std::vector<std::byte> got = f.read(t.name);
    ASSERT_EQ(got.size(), t.data.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), t.data.begin())) << t.name;
  }
  EXPECT_EQ(f.tensor("scalar").numel(), 1);
  // A byte range, and a mapping, of the f8 table (what a row store does).
  std::vector<std::byte> row(64);
  f.read_range("layers.1.engram.embed.weight", 64, row);
  EXPECT_EQ(static_cast<uint8_t>(row[0]), 0x38);
  EXPECT_THROW(f.read_range("layers.1.engram.embed.weight", 150, row), Error);
  const Mapping m = f.map("ids");
  ASSERT_EQ(m.size(), 24u);
  int64_t id1;
  std::memcpy(&id1, m.data() + 8, 8);
  EXPECT_EQ(id1, 5);
  EXPECT_EQ(f.map("empty").size(), 0u);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_THROW(f.tensor("nope"), Error);
  // The writer leaves no temporary behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Safetensors, HeaderIsPaddedTo8AndParsesAsJson) {
  std::vector<uint8_t> b(3, 1);
  const std::vector<TensorView> ts = {{"b", Dtype::U8, {3}, as_bytes_of(b)}};
  save_safetensors(path("p.safetensors"), ts);
  std::ifstream in(path("p.safetensors"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 3);
  EXPECT_EQ(bytes.substr(8, 1), "{");
}

TEST_F(Safetensors, WriterRefusesBadTensors) {
  std::vector<float> a(4);
  const auto bad = [&](std::vector<TensorView> ts) {
    EXPECT_THROW(save_safetensors(path("bad.safetensors"), ts), Error);
    EXPECT_FALSE(fs::exists(path("bad.safetensors")));
  };
  bad({{"a", Dtype::F32, {5}, as_bytes_of(a)}});  // size mismatch
  bad({{"a", Dtype::F32, {4}, as_bytes_of(a)}, {"a", Dtype::F32, {4}, as_bytes_of(a)}});
  bad({{"__metadata__", Dtype::F32, {4}, as_bytes_of(a)}});
  bad({{"a", Dtype::F32, {-4}, as_bytes_of(a)}});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

TEST_F(Safetensors, FullDiskLeavesNoPartialFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG past the limit, as a full disk fails with ENOSPC.
  std::vector<uint8_t> big(1 << 20, 7);
  const std::vector<TensorView> ts = {{"big", Dtype::U8, {1 << 20}, as_bytes_of(big)}};
  std::vector<uint8_t> small(4, 1);
  save_safetensors(path("ck.safetensors"),
                   std::vector<TensorView>{{"old", Dtype::U8, {4}, as_bytes_of(small)}});

  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit lim = old;
  lim.rlim_cur = 64 * 1024;
  auto prev = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  bool threw = false;
  try {
    save_safetensors(path("ck.safetensors"), ts);
  } catch (const Error& e) {
    threw = true;
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("write failed"), std::string::npos) << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  EXPECT_TRUE(threw);
  // The old checkpoint is intact and nothing else is left in the directory.
  const SafetensorsFile f = SafetensorsFile::open(path("ck.safetensors"));
  EXPECT_NE(f.find("old"), nullptr);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Safetensors, WriteIntoMissingDirectoryIsIoError) {
  std::vector<uint8_t> b(1);
  try {
    save_safetensors(path("no/such/dir/x.safetensors"),
                     std::vector<TensorView>{{"b", Dtype::U8, {1}, as_bytes_of(b)}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
  }
}

// ---- Fault suite ----------------------------------------------------------------------------

TEST_F(Safetensors, TruncatedFiles) {
  write_file("empty.safetensors", "");
  expect_refused(path("empty.safetensors"), Errc::parse, {"empty.safetensors", "0 bytes"});
  write_file("five.safetensors", std::string("\x10\0\0\0\0", 5));
  expect_refused(path("five.safetensors"), Errc::parse, {"5 bytes"});
  // Valid header, data cut short: the tensor's end is past the data section.
  const std::string h = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  expect_refused(raw("cut.safetensors", h, 10), Errc::parse,
                 {"cut.safetensors", "\"w\"", "past the end"});
}

TEST_F(Safetensors, HeaderLengthLargerThanFile) {
  expect_refused(raw("len.safetensors", "{}", 0, 1000), Errc::parse,
                 {"header length 1000", "byte offset 0"});
  expect_refused(raw("huge.safetensors", "{}", 0, -2 + (1LL << 62)), Errc::parse,
                 {"header length"});
}

TEST_F(Safetensors, MalformedJson) {
  expect_refused(raw("j1.safetensors", R"({"w": {"dtype": "F32",)", 0), Errc::parse,
                 {"malformed", "byte offset"});
  expect_refused(raw("j2.safetensors", R"([1,2])", 0), Errc::parse, {"does not start with '{'"});
  // The invalid byte is at file offset 10; it is quoted escaped, never raw.
  expect_refused(raw("j3.safetensors", "{\"\xff\": 1}", 0), Errc::parse,
                 {"malformed JSON at byte offset 10", "\\xFF"});
  // 100,000 nested brackets would overflow the stack of any recursive walk.
  const std::string deep =
      "{\"__metadata__\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_refused(raw("deep.safetensors", deep, 0), Errc::parse,
                 {"header: JSON nests deeper than 64 levels (byte offset 88)"});
  expect_refused(raw("j4.safetensors",
                     R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                     R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                     2),
                 Errc::parse, {"repeats the key \"w\""});
  expect_refused(
      raw("j5.safetensors", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", 1),
      Errc::parse, {"unknown field \"x\""});
  expect_refused(raw("j6.safetensors", R"({"__metadata__":{"a":1}})", 0), Errc::parse,
                 {"__metadata__"});
}

TEST_F(Safetensors, OffsetsThatLie) {
  // Overlap.
  expect_refused(raw("o1.safetensors",
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12),
                 Errc::parse, {"o1.safetensors", "\"a\" and \"b\" overlap", "byte offset"});
  // Out of bounds.
  expect_refused(
      raw("o2.safetensors", R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[100,104]}})", 8),
      Errc::parse, {"\"a\"", "past the end"});
  // Span not matching shape x dtype.
  expect_refused(
      raw("o3.safetensors", R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})", 4),
      Errc::parse, {"\"a\"", "span 4 bytes", "needs 6 bytes"});
  // begin > end.
  expect_refused(
      raw("o4.safetensors", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4),
      Errc::parse, {"begin 4 is after end 0"});
  // Negative dimension and overflowing shape.
  expect_refused(
      raw("o5.safetensors", R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0),
      Errc::parse, {"negative"});
  expect_refused(
      raw("o6.safetensors",
          R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0),
      Errc::parse, {"overflow"});
  expect_refused(
      raw("o7.safetensors",
          R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0),
      Errc::parse, {"overflow"});
  expect_refused(
      raw("o8.safetensors", R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}})", 0),
      Errc::parse, {"not an integer"});
  expect_refused(raw("o9.safetensors", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1),
                 Errc::parse, {"data_offsets"});
  // Zero-sized tensors never overlap anything; gaps are tolerated.
  const std::string ok = raw("ok.safetensors",
                             R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},)"
                             R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                             R"("c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                             8);
  EXPECT_EQ(SafetensorsFile::open(ok).tensors().size(), 3u);
}

TEST_F(Safetensors, UnknownDtype) {
  expect_refused(
      raw("d1.safetensors", R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,1]}})", 1),
      Errc::unsupported, {"\"a\"", "unknown dtype \"F12\""});
  expect_refused(
      raw("d2.safetensors", R"({"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", 1),
      Errc::unsupported, {"sub-byte"});
}

// ---- Multi-shard checkpoints ----------------------------------------------------------------

class Shards : public Safetensors {
 protected:
  void make_shards() {
    std::vector<float> a(4, 1.0f), b(2, 2.0f), c(3, 3.0f);
    save_safetensors(path("model-00001-of-00002.safetensors"),
                     std::vector<TensorView>{{"a", Dtype::F32, {4}, as_bytes_of(a)},
                                             {"extra", Dtype::F32, {2}, as_bytes_of(b)}});
    save_safetensors(path("model-00002-of-00002.safetensors"),
                     std::vector<TensorView>{{"b", Dtype::F32, {2}, as_bytes_of(b)},
                                             {"c", Dtype::F32, {3}, as_bytes_of(c)}});
  }
  std::string index(const std::string& weight_map) {
    write_file("model.safetensors.index.json",
               R"({"metadata": {"total_size": 36}, "weight_map": )" + weight_map + "}");
    return path("model.safetensors.index.json");
  }
};

TEST_F(Shards, IndexOpensEveryShardAndReportsUnindexedTensors) {
  make_shards();
  const auto ck = SafetensorsCheckpoint::open(index(
      R"({"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
          "c": "model-00002-of-00002.safetensors"})"));
  EXPECT_EQ(ck.shards().size(), 2u);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ck.unindexed(), std::vector<std::string>{"model-00001-of-00002.safetensors: extra"});
  EXPECT_EQ(ck.index_metadata().at("total_size"), "36");
  const auto& c = ck.tensor("c");
  std::vector<float> got(3);
  c.file->read("c", std::as_writable_bytes(std::span<float>(got)));
  EXPECT_EQ(got, std::vector<float>(3, 3.0f));
  EXPECT_EQ(ck.find("extra"), nullptr);
  EXPECT_THROW(ck.tensor("extra"), Error);
}

TEST_F(Shards, TensorMissingFromItsShard) {
  make_shards();
  expect_refused(index(R"({"a": "model-00001-of-00002.safetensors",
                           "b": "model-00001-of-00002.safetensors"})"),
                 Errc::mismatch, {"tensor \"b\"", "model-00001-of-00002.safetensors"});
}

TEST_F(Shards, IndexPointingToMissingShard) {
  make_shards();
  expect_refused(index(R"({"a": "model-00003-of-00003.safetensors"})"), Errc::io,
                 {"model-00003-of-00003.safetensors", "does not exist", "\"a\""});
  expect_refused(index(R"({"a": "../model-00001-of-00002.safetensors"})"), Errc::parse,
                 {"not a relative path"});
  expect_refused(index(R"({"a": 3})"), Errc::parse, {"weight_map"});
  write_file("model.safetensors.index.json", "{\"weight_map\": [");
  expect_refused(path("model.safetensors.index.json"), Errc::parse, {"malformed JSON"});
}

TEST_F(Shards, SingleFileCheckpoint) {
  make_shards();
  const auto ck = SafetensorsCheckpoint::open(path("model-00002-of-00002.safetensors"));
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(ck.unindexed().empty());
  expect_refused(path("missing.safetensors"), Errc::io, {"missing.safetensors"});
}

// The parser is also reachable on bytes in memory (what the fuzz target drives).
TEST(SafetensorsHeader, ParsesFromMemory) {
  const std::string h = R"({"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(h.size());
  bytes += h;
  bytes.append(8, '\0');
  const auto span = std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
  const SafetensorsHeader hdr = parse_safetensors_header(span, bytes.size(), "<mem>");
  ASSERT_EQ(hdr.tensors.size(), 1u);
  EXPECT_EQ(hdr.tensors[0].offset, 8 + h.size());
  EXPECT_EQ(hdr.data_offset, 8 + h.size());
}

}  // namespace
}  // namespace engram
