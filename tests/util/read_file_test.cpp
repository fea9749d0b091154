// read_file and open_regular_file (util/read_file.h): inputs that are not regular files are
// refused without blocking, and whole-file reads stop at their limit.
#include "util/read_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engram/error.h"
#include "test_helpers.h"

namespace engram {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ReadFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("engram_read_file_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

TEST_F(ReadFile, ReadsARegularFile) {
  const std::string bytes("abc\0def", 7);
  EXPECT_EQ(read_file(write("a.bin", bytes)), bytes);
  EXPECT_EQ(read_file(write("empty", "")), "");
}

TEST_F(ReadFile, RefusesAFifoWithoutBlocking) {
  // No writer ever opens the FIFO: a blocking open would hang the test.
  const std::string p = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  Errc code{};
  const std::string msg = error_of([&] { read_file(p); }, &code);
  EXPECT_EQ(code, Errc::io);
  EXPECT_THAT(msg, HasSubstr(p));
  EXPECT_THAT(msg, HasSubstr("is a FIFO, not a regular file"));
  uint64_t size = 0;
  EXPECT_THAT(error_of([&] { open_regular_file(p, &size); }), HasSubstr("is a FIFO"));
}

TEST_F(ReadFile, RefusesDevicesAndDirectories) {
  EXPECT_THAT(error_of([] { read_file("/dev/zero"); }),
              HasSubstr("/dev/zero: is a character device, not a regular file"));
  EXPECT_THAT(error_of([&] { read_file(dir_.string()); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([&] { read_file((dir_ / "missing").string()); }),
              HasSubstr("cannot open for reading (No such file or directory)"));
}

TEST_F(ReadFile, RefusesFilesOverTheLimit) {
  const std::string p = write("big", std::string(1000, 'x'));
  EXPECT_EQ(read_file(p, {1000, "a test file"}).size(), 1000u);
  Errc code{};
  const std::string msg = error_of([&] { read_file(p, {999, "a test file"}); }, &code);
  EXPECT_EQ(code, Errc::io);
  EXPECT_THAT(msg, HasSubstr("1000 bytes exceeds the limit of 999 bytes for a test file"));
}

TEST_F(ReadFile, SpecialFilesWhenAllowedAreStillCapped) {
  // /dev/zero never ends: the cap is what stops the read.
  EXPECT_THAT(error_of([] {
                read_file("/dev/zero", {4096, "a stream", true});
              }),
              HasSubstr("exceeds the limit of 4096 bytes for a stream"));
  EXPECT_EQ(read_file("/dev/null", {4096, "a stream", true}), "");
}

TEST_F(ReadFile, RegularFilesReportingSizeZeroAreReadWhole) {
  // /proc files are regular but report st_size 0; the read must not stop at the reported size.
  const std::string s = read_file("/proc/self/status");
  EXPECT_THAT(s, HasSubstr("Name:"));
}

TEST(FileTypeName, NamesEachKind) {
  EXPECT_STREQ(file_type_name(S_IFIFO), "a FIFO");
  EXPECT_STREQ(file_type_name(S_IFCHR), "a character device");
  EXPECT_STREQ(file_type_name(S_IFDIR), "a directory");
  EXPECT_STREQ(file_type_name(S_IFSOCK), "a socket");
}

}  // namespace
}  // namespace engram
