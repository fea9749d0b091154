// IoEngine tests: the io_uring engine (O_DIRECT and buffered) against the pread reference and
// the file's bytes, plus every fault path: end of file, injected EIO midway, short reads,
// EINTR storms, missing files, and filesystems that refuse O_DIRECT.
#include <errno.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "engram/error.h"
#include "store/io_engine.h"
#include "store/test_util.h"

namespace engram {
namespace {

using testing::TempDir;

struct Piece {
  uint64_t offset;
  uint32_t length;
};

std::vector<Piece> random_pieces(uint64_t file_size, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Piece> p;
  for (size_t i = 0; i < n; ++i) {
    uint32_t len = 1 + static_cast<uint32_t>(rng() % 9000);  // crosses 4 KiB blocks often
    uint64_t off = rng() % (file_size - len + 1);
    p.push_back({off, len});
  }
  p.push_back({0, 4096});               // aligned
  p.push_back({file_size - 1, 1});      // last byte
  p.push_back({file_size - 300, 300});  // tail, unaligned end
  p.push_back({12345, 0});              // empty request
  return p;
}

// Reads `pieces` of `file` with `engine` into one buffer and checks every byte.
void expect_reads_match(IoEngine& engine, const ReadFile& file, const std::vector<std::byte>& truth,
                        const std::vector<Piece>& pieces) {
  size_t total = 0;
  for (auto& p : pieces) total += p.length;
  std::vector<std::byte> out(total + 1, std::byte{0x5a});
  std::vector<ReadRequest> reqs;
  size_t pos = 0;
  for (auto& p : pieces) {
    reqs.push_back({&file, p.offset, p.length, out.data() + pos});
    pos += p.length;
  }
  engine.read(reqs);
  pos = 0;
  for (auto& p : pieces) {
    ASSERT_EQ(std::memcmp(out.data() + pos, truth.data() + p.offset, p.length), 0)
        << engine.name() << " offset " << p.offset << " length " << p.length;
    pos += p.length;
  }
  EXPECT_EQ(out[total], std::byte{0x5a}) << "wrote past the last request";
}

std::vector<std::unique_ptr<IoEngine>> all_engines(unsigned qd = 16) {
  std::vector<std::unique_ptr<IoEngine>> v;
  v.push_back(make_pread_engine());
  if (uring_available()) {
    v.push_back(make_uring_engine({qd, true}));
    v.push_back(make_uring_engine({qd, false}));
  }
  return v;
}

TEST(IoEngine, RandomPiecesMatchFileBytes) {
  TempDir dir;
  auto truth = testing::random_bytes(300000, 1);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  auto pieces = random_pieces(truth.size(), 500, 2);
  for (auto& e : all_engines()) expect_reads_match(*e, file, truth, pieces);
}

TEST(IoEngine, UringUsesDirectIoWhereAllowed) {
  if (!uring_available()) GTEST_SKIP() << "io_uring not available here";
  TempDir dir;
  auto truth = testing::random_bytes(100000, 3);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  if (!file.direct()) GTEST_SKIP() << "filesystem refuses O_DIRECT";
  auto e = make_uring_engine({8, true});
  expect_reads_match(*e, file, truth, random_pieces(truth.size(), 100, 4));
  EXPECT_EQ(e->stats().direct_reads, e->stats().reads);
  EXPECT_GT(e->stats().reads, 0u);
}

TEST(IoEngine, QueueDepthOneAndManyRequests) {
  if (!uring_available()) GTEST_SKIP() << "io_uring not available here";
  TempDir dir;
  auto truth = testing::random_bytes(70000, 5);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  auto e = make_uring_engine({1, true});
  expect_reads_match(*e, file, truth, random_pieces(truth.size(), 300, 6));
}

TEST(IoEngine, TmpfsRefusesDirectAndFallsBackToBuffered) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  TempDir dir("/dev/shm");
  auto truth = testing::random_bytes(50000, 7);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  for (auto& e : all_engines()) expect_reads_match(*e, file, truth, random_pieces(50000, 50, 8));
}

TEST(IoEngine, ReadPastEndOfFileIsAnErrorNamingFileAndOffset) {
  TempDir dir;
  auto truth = testing::random_bytes(10000, 9);
  testing::write_file(dir.file("short.bin"), truth);
  ReadFile file(dir.file("short.bin"));
  for (auto& e : all_engines()) {
    std::vector<std::byte> out(200);
    ReadRequest ok{&file, 0, 100, out.data()};
    ReadRequest bad{&file, 9950, 100, out.data() + 100};
    std::vector<ReadRequest> reqs{ok, bad};
    try {
      e->read(reqs);
      FAIL() << e->name() << ": no error";
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), Errc::io);
      std::string msg = err.what();
      EXPECT_NE(msg.find("short.bin"), std::string::npos) << msg;
      EXPECT_NE(msg.find("unexpected end of file"), std::string::npos) << msg;
      EXPECT_NE(msg.find("offset 10000"), std::string::npos) << msg;  // after the 50 good bytes
    }
  }
}

TEST(IoEngine, InjectedErrorMidwayReachesTheCallerAndEngineStaysUsable) {
  TempDir dir;
  auto truth = testing::random_bytes(200000, 10);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  auto pieces = random_pieces(truth.size(), 200, 11);
  const uint64_t bad_offset = pieces[120].offset;
  for (auto& e : all_engines(8)) {
    e->set_fault_hook([&](const ReadRequest& r, uint64_t, uint32_t) -> int64_t {
      return r.offset == bad_offset ? -EIO : 0;
    });
    try {
      expect_reads_match(*e, file, truth, pieces);
      FAIL() << e->name() << ": no error";
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), Errc::io);
      std::string msg = err.what();
      EXPECT_NE(msg.find("offset " + std::to_string(bad_offset)), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::strerror(EIO)), std::string::npos) << msg;
    }
    e->set_fault_hook(nullptr);
    expect_reads_match(*e, file, truth, pieces);
  }
}

TEST(IoEngine, ShortReadsAreContinued) {
  TempDir dir;
  auto truth = testing::random_bytes(100000, 12);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  for (auto& e : all_engines(4)) {
    // Every attempt delivers at most 7 bytes.
    e->set_fault_hook(
        [](const ReadRequest&, uint64_t, uint32_t len) -> int64_t { return len > 7 ? 7 : 0; });
    expect_reads_match(*e, file, truth, random_pieces(truth.size(), 4, 13));
    EXPECT_GT(e->stats().short_reads, 0u) << e->name();
  }
}

TEST(IoEngine, EintrIsRetriedAndAStormIsAnError) {
  TempDir dir;
  auto truth = testing::random_bytes(50000, 14);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  for (auto& e : all_engines(4)) {
    int n = 0;
    e->set_fault_hook([&](const ReadRequest&, uint64_t, uint32_t) -> int64_t {
      return (n++ % 3 == 0) ? -EINTR : 0;
    });
    expect_reads_match(*e, file, truth, random_pieces(truth.size(), 30, 15));
    EXPECT_GT(e->stats().retries, 0u);
    e->set_fault_hook([](const ReadRequest&, uint64_t, uint32_t) -> int64_t { return -EAGAIN; });
    EXPECT_THROW(expect_reads_match(*e, file, truth, random_pieces(truth.size(), 3, 16)), Error);
  }
}

TEST(IoEngine, FileTruncatedAfterOpenIsAnError) {
  TempDir dir;
  auto truth = testing::random_bytes(100000, 17);
  testing::write_file(dir.file("a.bin"), truth);
  ReadFile file(dir.file("a.bin"));
  ASSERT_EQ(::truncate(dir.file("a.bin").c_str(), 1000), 0);
  for (auto& e : all_engines()) {
    std::vector<std::byte> out(100);
    ReadRequest r{&file, 50000, 100, out.data()};
    EXPECT_THROW(e->read({&r, 1}), Error) << e->name();
  }
}

TEST(IoEngine, MissingFileAndDirectoryAreErrorsNamingThePath) {
  TempDir dir;
  try {
    ReadFile f(dir.file("nope.safetensors"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos);
  }
  EXPECT_THROW(ReadFile f(dir.path()), Error);
}

TEST(IoEngine, BadQueueDepthIsRejected) {
  if (!uring_available()) GTEST_SKIP() << "io_uring not available here";
  EXPECT_THROW(make_uring_engine({0, true}), Error);
}

}  // namespace
}  // namespace engram
