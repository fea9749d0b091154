// RemoveUnlessCommitted (src/util/remove_unless_committed.h): what a failing command made goes,
// what it committed or found already there stays, and create_folders_guarded undoes every folder
// it made on the way, not only the last.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "util/remove_unless_committed.h"

namespace engram {
namespace {

namespace fs = std::filesystem;

class RemoveUnlessCommittedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("engram_guard_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(RemoveUnlessCommittedTest, AFailureRemovesEveryFolderItMade) {
  const fs::path dir = root_ / "a" / "b" / "c";
  try {
    RemoveUnlessCommitted made = create_folders_guarded(dir);
    ASSERT_TRUE(fs::is_directory(dir));
    std::ofstream(dir / "partial.bin") << "half";
    throw std::runtime_error("the command fails");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(root_ / "a"));
  EXPECT_TRUE(fs::is_directory(root_));
}

TEST_F(RemoveUnlessCommittedTest, ACommittedOutputStays) {
  const fs::path dir = root_ / "out";
  {
    RemoveUnlessCommitted made = create_folders_guarded(dir);
    made.commit();
  }
  EXPECT_TRUE(fs::is_directory(dir));
}

TEST_F(RemoveUnlessCommittedTest, WhatExistedBeforeIsNeverRemoved) {
  const fs::path file = root_ / "old.bin";
  std::ofstream(file) << "old";
  {
    RemoveUnlessCommitted guard(file);
    RemoveUnlessCommitted folder = create_folders_guarded(root_);
  }
  EXPECT_TRUE(fs::exists(file));
  {
    RemoveUnlessCommitted made = create_folders_guarded(root_ / "new");
    RemoveUnlessCommitted moved = std::move(made);  // the moved-from guard removes nothing
    moved.commit();
  }
  EXPECT_TRUE(fs::is_directory(root_ / "new"));
}

}  // namespace
}  // namespace engram
