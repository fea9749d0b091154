// Row store tests: FileStore (io_uring and pread), DramStore (anonymous and shared), CachedStore,
// each checked byte for byte against the table bytes as written, plus dequantized output against
// the scalar reference, and the failure paths: ids out of range, spans past the end of a file,
// missing files, a read failing midway, and shared files that are half-made, truncated, foreign,
// or left behind by a creator that crashed; creators racing for one name, a replacement under
// an attached reader, file modes, and a row byte changed after publishing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <latch>
#include <thread>

#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/row_gather.h"
#include "engram/store.h"
#include "engram/v41_checkpoint.h"
#include "store/io_engine.h"
#include "store/test_util.h"
#include "table/row_format_ref.h"

namespace engram {
namespace {

using testing::TableOnDisk;
using testing::TempDir;

struct Fixture {
  TempDir dir;
  std::vector<TableOnDisk> tables;
  Fixture() {
    tables.push_back(
        testing::write_table(dir.path(), "layers.1.engram.embed", RowDtype::f8_e4m3, 64, 1000, 1));
    tables.push_back(testing::write_table(dir.path(), "f32table", RowDtype::f32, 12, 300, 2, 8));
    tables.push_back(testing::write_table(dir.path(), "bf16table", RowDtype::bf16, 20, 77, 3, 0));
  }
  std::vector<TableSource> sources() const {
    std::vector<TableSource> v;
    for (auto& t : tables) v.push_back(t.source);
    return v;
  }
  StoreFingerprint fingerprint() const { return store_fingerprint(sources()); }
};

// The error `f` throws, or a test failure when it throws none.
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error thrown";
  return Error(Errc::internal, "");
}

std::vector<int64_t> random_ids(int64_t rows, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ids(n);
  for (auto& i : ids) i = static_cast<int64_t>(rng() % rows);
  ids.push_back(0);
  ids.push_back(rows - 1);
  ids.push_back(ids[0]);  // a repeat
  return ids;
}

void expect_store_matches(RowStore& store, const Fixture& fx) {
  ASSERT_EQ(store.num_tables(), fx.tables.size());
  for (size_t t = 0; t < fx.tables.size(); ++t) {
    const TableOnDisk& tab = fx.tables[t];
    const TableDesc& d = store.table(t);
    ASSERT_EQ(d.name, tab.source.desc.name);
    ASSERT_EQ(d.rows, tab.source.desc.rows);
    auto ids = random_ids(d.rows, 200, t + 5);
    const uint32_t rb = d.row_bytes();
    std::vector<std::byte> out(ids.size() * rb);
    store.gather_packed(t, ids, out.data());
    for (size_t i = 0; i < ids.size(); ++i)
      ASSERT_EQ(std::memcmp(out.data() + i * rb, tab.packed(ids[i]).data(), rb), 0)
          << store.describe() << " table " << d.name << " row " << ids[i];
    // Dequantized rows against the scalar reference on the bytes as written.
    const int64_t w = d.format.width;
    std::vector<float> got(ids.size() * w), want(w);
    store.gather_f32(t, ids, got.data());
    std::vector<uint16_t> got16(ids.size() * w);
    store.gather_bf16(t, ids, got16.data());
    for (size_t i = 0; i < ids.size(); ++i) {
      const RowFormat& f = d.format;
      reference::dequantize_row(f, tab.data.data() + ids[i] * f.data_bytes,
                                f.scale_bytes ? tab.scale.data() + ids[i] * f.scale_bytes : nullptr,
                                want.data());
      for (int64_t j = 0; j < w; ++j) {
        ASSERT_EQ(got[i * w + j], want[j]) << d.name << " row " << ids[i] << " col " << j;
        ASSERT_EQ(got16[i * w + j], f32_to_bf16(want[j]));
      }
    }
  }
}

TEST(FileStore, GathersMatchTheBytesWrittenForEveryEngine) {
  Fixture fx;
  for (bool uring : {true, false}) {
    for (bool direct : {true, false}) {
      auto s = FileStore::open(fx.sources(), {uring, direct, 16});
      expect_store_matches(*s, fx);
      EXPECT_GT(s->io_stats().reads, 0u);
    }
  }
}

TEST(FileStore, IdsOutOfRangeAreRejectedBeforeAnyRead) {
  Fixture fx;
  auto s = FileStore::open(fx.sources());
  std::vector<std::byte> out(10 * 1024);
  for (int64_t bad : {int64_t(-1), int64_t(1000), int64_t(1) << 40}) {
    std::vector<int64_t> ids{1, 2, bad};
    try {
      s->gather_packed(0, ids, out.data());
      FAIL();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::out_of_range);
      std::string m = e.what();
      EXPECT_NE(m.find("layers.1.engram.embed"), std::string::npos) << m;
      EXPECT_NE(m.find("position 2"), std::string::npos) << m;
      EXPECT_NE(m.find(std::to_string(bad)), std::string::npos) << m;
    }
  }
  EXPECT_EQ(s->io_stats().reads, 0u);
  EXPECT_THROW(s->gather_packed(3, {}, out.data()), Error);
  EXPECT_THROW(s->table_index("nope"), Error);
  EXPECT_EQ(s->table_index("bf16table"), 2u);
}

TEST(FileStore, SpanPastEndOfFileIsRejectedAtOpen) {
  Fixture fx;
  auto src = fx.sources();
  src[0].desc.rows = 1001;  // one row more than the file holds
  try {
    FileStore::open(src);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_NE(std::string(e.what()).find(".data"), std::string::npos) << e.what();
  }
  src = fx.sources();
  src[0].scale_offset += 1;  // scale span shifted one byte past the end
  EXPECT_THROW(FileStore::open(src), Error);
  src = fx.sources();
  src[0].scale_path.clear();
  EXPECT_THROW(FileStore::open(src), Error);
  src = fx.sources();
  src[1].data_path += ".missing";
  try {
    FileStore::open(src);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find(".missing"), std::string::npos);
  }
}

TEST(FileStore, AReadFailingMidwayIsAnErrorAndTheStoreRecovers) {
  Fixture fx;
  for (bool uring : {true, false}) {
    auto s = FileStore::open(fx.sources(), {uring, true, 8});
    const uint64_t bad = fx.tables[0].source.scale_offset + 500 * 2;  // row 500's scale
    set_fault_hook(*s, [&](const ReadRequest& r, uint64_t, uint32_t) -> int64_t {
      return r.offset == bad ? -EIO : 0;
    });
    std::vector<int64_t> ids{1, 2, 3, 500, 4, 5};
    std::vector<std::byte> out(ids.size() * 66);
    try {
      s->gather_packed(0, ids, out.data());
      FAIL();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::io);
      std::string m = e.what();
      EXPECT_NE(m.find(".scale"), std::string::npos) << m;
      EXPECT_NE(m.find("offset " + std::to_string(bad)), std::string::npos) << m;
    }
    set_fault_hook(*s, nullptr);
    expect_store_matches(*s, fx);
  }
}

TEST(FileStore, FileTruncatedAfterOpenIsAnIoError) {
  Fixture fx;
  auto s = FileStore::open(fx.sources());
  ASSERT_EQ(::truncate(fx.tables[0].source.data_path.c_str(), 2000), 0);
  std::vector<int64_t> ids{999};
  std::vector<std::byte> out(66);
  EXPECT_THROW(s->gather_packed(0, ids, out.data()), Error);
}

TEST(DramStore, AnonymousMatchesFileBytes) {
  Fixture fx;
  auto file = FileStore::open(fx.sources());
  for (bool huge : {true, false}) {
    auto d = DramStore::load(*file, {huge});
    EXPECT_FALSE(d->shared());
    expect_store_matches(*d, fx);
  }
}

TEST(DramStore, LoadsFromAnyStoreNotOnlyFiles) {
  Fixture fx;
  auto file = std::shared_ptr<RowStore>(FileStore::open(fx.sources()));
  CachedStore cached(file, 4096);
  auto d = DramStore::load(cached);
  expect_store_matches(*d, fx);
}

TEST(DramStore, SharedFileIsPublishedWholeAndAttachable) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  auto file = FileStore::open(fx.sources());
  const std::string path = shm.file("tables");
  auto creator = DramStore::create_shared(path, *file, fx.fingerprint());
  EXPECT_TRUE(creator->shared());
  expect_store_matches(*creator, fx);
  auto reader = DramStore::attach_shared(path, fx.fingerprint(), /*verify_data=*/true);
  expect_store_matches(*reader, fx);
  // Both map one copy: the same bytes through two mappings.
  EXPECT_EQ(std::memcmp(creator->table_bytes(0), reader->table_bytes(0), 66 * 1000), 0);
  EXPECT_TRUE(creator->created());
  EXPECT_FALSE(reader->created());
  // A second creator attaches the published file instead of clobbering it, and leaves it as is.
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  auto second = DramStore::create_shared(path, *file, fx.fingerprint());
  EXPECT_FALSE(second->created());
  expect_store_matches(*second, fx);
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  SharedOptions replace;
  replace.replace = true;
  auto again = DramStore::create_shared(path, *file, fx.fingerprint(), replace);
  EXPECT_TRUE(again->created());
  expect_store_matches(*again, fx);
  // Only the published file is left in the directory.
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(shm.path())) n += e.is_regular_file();
  EXPECT_EQ(n, 1u);
}

// Writes a copy of `src` to `dst` with `mutate` applied to its bytes.
void copy_mutated(const std::string& src, const std::string& dst,
                  const std::function<void(std::vector<char>&)>& mutate) {
  std::ifstream in(src, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  mutate(bytes);
  std::ofstream out(dst, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(DramStore, HalfMadeTruncatedOrForeignSharedFilesAreRefused) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  auto file = FileStore::open(fx.sources());
  const std::string good = shm.file("good");
  DramStore::create_shared(good, *file, fx.fingerprint());
  struct Case {
    const char* name;
    std::function<void(std::vector<char>&)> mutate;
    const char* expect;
  };
  // Header field offsets: magic 0, version 8, header_bytes 12, total 16, num_tables 24,
  // complete 28, data_checksum 32, header_checksum 40.
  std::vector<Case> cases = {
      {"incomplete", [](auto& b) { std::memset(b.data() + 28, 0, 4); }, "incomplete"},
      {"truncated", [](auto& b) { b.resize(b.size() - 4096); }, "bytes"},
      {"tiny", [](auto& b) { b.resize(100); }, "too small"},
      {"foreign", [](auto& b) { std::memcpy(b.data(), "GGUF....", 8); }, "bad magic"},
      {"lying header", [](auto& b) { b[24] = 5; }, "checksum"},
      {"flipped row byte", [](auto& b) { b[b.size() / 2] ^= 1; }, "row data checksum"},
  };
  for (auto& c : cases) {
    const std::string bad = shm.file(std::string("bad_") + std::to_string(&c - cases.data()));
    copy_mutated(good, bad, c.mutate);
    try {
      DramStore::attach_shared(bad, fx.fingerprint(), /*verify_data=*/true);
      FAIL() << c.name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
          << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(DramStore::attach_shared(shm.file("missing"), fx.fingerprint()), Error);
}

// A store that kills its process partway through a fill: a creator that crashes.
class CrashingStore final : public RowStore {
 public:
  explicit CrashingStore(RowStore& inner) : RowStore({inner.table(0)}), inner_(inner) {}
  std::string describe() const override { return "crashing"; }
  void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) override {
    if (!ids.empty() && ids[0] > 0) ::_exit(3);
    inner_.gather_packed(t, ids, out);
  }

 private:
  RowStore& inner_;
};

TEST(DramStore, ACreatorThatCrashesLeavesNothingBehind) {
  TempDir dir;
  // Enough rows for two fill chunks, so the crash comes after the first is written.
  auto big = testing::write_table(dir.path(), "big", RowDtype::f32, 2048, 1500, 9);
  auto file = FileStore::open({big.source});
  CrashingStore crashing(*file);
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  const std::string path = shm.file("crash");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      DramStore::create_shared(path, crashing, store_fingerprint({big.source}));
    } catch (...) {
    }
    ::_exit(0);  // not reached when the crash happens
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(shm.path()));
  EXPECT_THROW(DramStore::attach_shared(path, store_fingerprint({big.source})), Error);
}

// Regular files in `dir`.
size_t files_in(const std::string& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(DramStore, CreatorsRacingForOneNameAllAttachTheOneFilePublished) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  constexpr int kThreads = 6;
  for (int round = 0; round < 4; ++round) {
    const std::string path = shm.file("race" + std::to_string(round));
    std::vector<std::unique_ptr<FileStore>> files;
    for (int i = 0; i < kThreads; ++i) files.push_back(FileStore::open(fx.sources()));
    std::vector<std::unique_ptr<DramStore>> stores(kThreads);
    std::vector<std::string> errors(kThreads);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          stores[i] = DramStore::create_shared(path, *files[i], fx.fingerprint());
        } catch (const Error& e) {
          errors[i] = e.what();
        }
      });
    for (auto& t : threads) t.join();
    int created = 0;
    for (int i = 0; i < kThreads; ++i) {
      ASSERT_TRUE(stores[i]) << "creator " << i << ": " << errors[i];
      created += stores[i]->created();
      expect_store_matches(*stores[i], fx);
    }
    EXPECT_EQ(created, 1) << "round " << round;
  }
  EXPECT_EQ(files_in(shm.path()), 4u);  // one file a name, no leftovers of the losers
}

TEST(OpenStore, ProcessesOpeningOneSharedTableAtOnceAllGetIt) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  StoreOptions o;
  o.tier = StoreTier::dram;
  o.shared_path = shm.file("tables");
  // Children start together once the pipe closes; each exits 10 if it created the file, 11 if it
  // attached another's, 1 on an error.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c;
      (void)!::read(go[0], &c, 1);
      try {
        OpenedStore s = open_store(fx.sources(), o);
        ::_exit(s.dram && s.dram->shared() ? (s.dram->created() ? 10 : 11) : 1);
      } catch (...) {
        ::_exit(1);
      }
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  int created = 0;
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_TRUE(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11) << WEXITSTATUS(status);
    created += WEXITSTATUS(status) == 10;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(files_in(shm.path()), 1u);
  expect_store_matches(*DramStore::attach_shared(o.shared_path, fx.fingerprint(), true), fx);
}

TEST(DramStore, AReplacementLeavesAttachedReadersOnTheOldRows) {
  TempDir dir;
  auto old_rows = testing::write_table(dir.path(), "old", RowDtype::f32, 16, 500, 1);
  auto new_rows = testing::write_table(dir.path(), "new", RowDtype::f32, 16, 500, 2);
  new_rows.source.desc.name = old_rows.source.desc.name;  // one table, rebuilt with other rows
  auto old_file = FileStore::open({old_rows.source});
  auto new_file = FileStore::open({new_rows.source});
  const StoreFingerprint old_fp = store_fingerprint({old_rows.source});
  const StoreFingerprint new_fp = store_fingerprint({new_rows.source});
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  const std::string path = shm.file("tables");
  DramStore::create_shared(path, *old_file, old_fp);
  auto reader = DramStore::attach_shared(path, old_fp);
  SharedOptions replace;
  replace.replace = true;
  auto rebuilt = DramStore::create_shared(path, *new_file, new_fp, replace);
  EXPECT_TRUE(rebuilt->created());
  // The reader still maps the old file's inode: its rows are the old ones, whole.
  std::vector<int64_t> ids(500);
  for (int64_t i = 0; i < 500; ++i) ids[i] = i;
  std::vector<std::byte> got(500 * 64);
  reader->gather_packed(0, ids, got.data());
  for (int64_t i = 0; i < 500; ++i)
    ASSERT_EQ(std::memcmp(got.data() + i * 64, old_rows.packed(i).data(), 64), 0) << i;
  // The name holds the new rows now, checked like any attach.
  EXPECT_THROW(DramStore::attach_shared(path, old_fp), Error);
  DramStore::attach_shared(path, new_fp, true)->gather_packed(0, ids, got.data());
  for (int64_t i = 0; i < 500; ++i)
    ASSERT_EQ(std::memcmp(got.data() + i * 64, new_rows.packed(i).data(), 64), 0) << i;
  EXPECT_EQ(files_in(shm.path()), 1u);
}

TEST(DramStore, SharedFilesAreOwnerOnlyUnlessAModeIsGiven) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  auto file = FileStore::open(fx.sources());
  auto mode_of = [](const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  };
  const mode_t umask_was = ::umask(022);  // the usual umask: it used to let others read
  DramStore::create_shared(shm.file("default"), *file, fx.fingerprint());
  EXPECT_EQ(mode_of(shm.file("default")), 0600u);
  ::umask(077);  // a given mode is taken as given
  SharedOptions group;
  group.mode = 0640;
  DramStore::create_shared(shm.file("group"), *file, fx.fingerprint(), group);
  EXPECT_EQ(mode_of(shm.file("group")), 0640u);
  ::umask(umask_was);
  OpenedStore opened = [&] {
    StoreOptions o;
    o.tier = StoreTier::dram;
    o.shared_path = shm.file("opened");
    o.shared_mode = 0440;
    return open_store(fx.sources(), o);
  }();
  EXPECT_EQ(mode_of(shm.file("opened")), 0440u);
  for (uint32_t bad : {0u, 0200u, 01600u, 0100600u}) {
    SharedOptions b;
    b.mode = bad;
    EXPECT_EQ(error_of([&] {
                DramStore::create_shared(shm.file("bad"), *file, fx.fingerprint(), b);
              }).code(),
              Errc::invalid_argument)
        << bad;
  }
  EXPECT_FALSE(std::filesystem::exists(shm.file("bad")));
}

TEST(OpenStore, VerifyingASharedFileCatchesARowByteChangedAfterPublishing) {
  Fixture fx;
  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  StoreOptions o;
  o.tier = StoreTier::dram;
  o.shared_path = shm.file("tables");
  open_store(fx.sources(), o);
  {
    // Flip one bit of a row of the last table (it starts on the file's last page), in place.
    std::fstream f(o.shared_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-4096 + 10, std::ios::end);
    const char c = static_cast<char>(f.get() ^ 0x10);
    f.seekp(-4096 + 10, std::ios::end);
    f.put(c);
  }
  open_store(fx.sources(), o);  // unverified: served as is
  o.verify_shared = true;
  const Error e = error_of([&] { open_store(fx.sources(), o); });
  EXPECT_EQ(e.code(), Errc::parse) << e.what();
  EXPECT_NE(std::string(e.what()).find("row data checksum"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(o.shared_path), std::string::npos) << e.what();
}

TEST(CachedStore, MatchesBackingAndCounts) {
  Fixture fx;
  auto file = std::shared_ptr<RowStore>(FileStore::open(fx.sources()));
  for (CachePolicy p : {CachePolicy::lru, CachePolicy::s3fifo}) {
    for (uint64_t cap : {uint64_t(0), uint64_t(66 * 50), uint64_t(1) << 20}) {
      CachedStore c(file, cap, p);
      expect_store_matches(c, fx);
      expect_store_matches(c, fx);
      CacheStats s = c.cache_stats();
      EXPECT_GT(s.misses, 0u);
      if (cap == 0) {
        EXPECT_EQ(s.hits, 0u);
      }
      if (cap == (uint64_t(1) << 20)) {
        EXPECT_GT(s.hits, 0u);
      }
      EXPECT_LE(s.entries * 66, std::max<uint64_t>(cap, 66));
    }
  }
}

TEST(CachedStore, ABudgetBeyondTheTablesHoldsEveryRowAndNoMore) {
  Fixture fx;
  auto file = std::shared_ptr<RowStore>(FileStore::open(fx.sources()));
  const uint64_t rows = 1000 + 300 + 77;
  for (uint64_t cap : {uint64_t(10) << 20, uint64_t(1) << 40}) {  // 1 TiB: never allocated
    CachedStore c(file, cap);
    CacheStats s = c.cache_stats();
    EXPECT_EQ(s.capacity_rows, rows) << cap;
    EXPECT_TRUE(s.capped);
    EXPECT_EQ(s.capacity_bytes, cap);
    EXPECT_NE(c.describe().find(std::to_string(rows) + " rows: every row"), std::string::npos)
        << c.describe();
    expect_store_matches(c, fx);
    expect_store_matches(c, fx);
    EXPECT_LE(c.cache_stats().entries, rows);
  }
  CachedStore small(file, 66 * 100);
  EXPECT_FALSE(small.cache_stats().capped);
  EXPECT_EQ(small.cache_stats().capacity_rows, 100u);
}

TEST(CachedStore, ErrorsFromTheBackingTierPassThroughAndCacheNothing) {
  Fixture fx;
  auto file = std::shared_ptr<FileStore>(FileStore::open(fx.sources()));
  CachedStore c(file, 1 << 20);
  set_fault_hook(*file, [](const ReadRequest&, uint64_t, uint32_t) -> int64_t { return -EIO; });
  std::vector<int64_t> ids{1, 2, 3};
  std::vector<std::byte> out(3 * 66);
  EXPECT_THROW(c.gather_packed(0, ids, out.data()), Error);
  EXPECT_EQ(c.cache_stats().entries, 0u);
  set_fault_hook(*file, nullptr);
  expect_store_matches(c, fx);
  EXPECT_THROW(CachedStore(nullptr, 10), Error);
}

// ---- The one store builder and the shared file's checkpoint identity ---------------------------

SyntheticV41Options small_v41(int64_t vocab, uint64_t seed = 0, int shards = 3) {
  SyntheticV41Options o;
  o.vocab_size = vocab;
  o.max_ngram = 3;
  o.n_heads = 2;
  o.head_dim = 64;
  o.hidden_size = 16;
  o.hc_mult = 2;
  o.shards = shards;
  o.seed = seed;
  return o;
}

// Every row of every table of `a` equals the same row of `b`.
void expect_same_rows(RowStore& a, RowStore& b) {
  ASSERT_EQ(a.num_tables(), b.num_tables());
  for (size_t t = 0; t < a.num_tables(); ++t) {
    const TableDesc& d = a.table(t);
    std::vector<int64_t> ids(size_t(d.rows));
    for (int64_t i = 0; i < d.rows; ++i) ids[size_t(i)] = i;
    std::vector<std::byte> x(ids.size() * d.row_bytes()), y(x.size());
    a.gather_packed(t, ids, x.data());
    b.gather_packed(t, ids, y.data());
    ASSERT_EQ(x, y) << a.describe() << " vs " << b.describe() << ", table " << d.name;
  }
}

TEST(OpenStore, BuildsEachTierAndCacheFromOneOptionsStruct) {
  TempDir dir;
  write_synthetic_v41(dir.path(), small_v41(100));
  auto ck = V41Checkpoint::open(dir.path());
  auto ref = FileStore::open(ck->table_sources());

  OpenedStore file = open_store(ck->table_sources(), {});
  EXPECT_EQ(file.store, file.file);
  EXPECT_EQ(file.dram, nullptr);
  EXPECT_EQ(file.cache, nullptr);
  expect_same_rows(*file.store, *ref);

  StoreOptions o;
  o.tier = StoreTier::dram;
  o.cache_bytes = 100 * 66;
  o.cache_policy = CachePolicy::lru;
  OpenedStore dram = open_store(ck->table_sources(), o);
  ASSERT_NE(dram.dram, nullptr);
  ASSERT_NE(dram.cache, nullptr);
  EXPECT_EQ(dram.store, dram.cache);
  EXPECT_FALSE(dram.dram->shared());
  EXPECT_NE(dram.store->describe().find("lru"), std::string::npos) << dram.store->describe();
  expect_same_rows(*dram.store, *ref);
  EXPECT_GT(dram.cache->cache_stats().misses, 0u);

  o = {};
  o.shared_path = "/dev/shm/x";  // shared memory is a dram tier
  EXPECT_EQ(error_of([&] { open_store(ck->table_sources(), o); }).code(), Errc::invalid_argument);
}

TEST(OpenStore, AttachesTheSameCheckpointsSharedTableAndRefusesAnothers) {
  TempDir dir;
  const std::string a = dir.file("a"), b = dir.file("b"), a_copy = dir.file("a_copy"),
                    reseeded = dir.file("reseeded"), resharded = dir.file("resharded");
  write_synthetic_v41(a, small_v41(100));
  write_synthetic_v41(b, small_v41(120));                           // more rows a table
  write_synthetic_v41(reseeded, small_v41(100, /*seed=*/7));        // same layout, other weights
  write_synthetic_v41(resharded, small_v41(100, 0, /*shards=*/1));  // same tables, other files
  std::filesystem::copy(a, a_copy);
  auto sources = [](const std::string& d) { return V41Checkpoint::open(d)->table_sources(); };

  TempDir shm(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  StoreOptions o;
  o.tier = StoreTier::dram;
  o.shared_path = shm.file("tables");
  OpenedStore creator = open_store(sources(a), o);
  ASSERT_TRUE(creator.dram && creator.dram->shared());
  // The same checkpoint attaches, also from a copy in another folder (paths are not identity).
  OpenedStore again = open_store(sources(a), o);
  OpenedStore copy = open_store(sources(a_copy), o);
  auto ref = FileStore::open(sources(a));
  expect_same_rows(*again.store, *ref);
  expect_same_rows(*copy.store, *ref);
  EXPECT_TRUE(store_fingerprint(sources(a)).same_checkpoint(store_fingerprint(sources(a_copy))));

  struct Case {
    std::string dir, expect;
  };
  for (const Case& c : {Case{b, "table 0 is layers.1.engram.embed"},
                        Case{reseeded, "sampled rows differ"}, Case{resharded, "byte spans"}}) {
    const Error e = error_of([&] { open_store(sources(c.dir), o); });
    const std::string msg = e.what();
    EXPECT_EQ(e.code(), Errc::mismatch) << msg;
    EXPECT_NE(msg.find(o.shared_path), std::string::npos) << msg;           // the file
    EXPECT_NE(msg.find("(from " + a + ")"), std::string::npos) << msg;      // what it holds
    EXPECT_NE(msg.find("(from " + c.dir + ")"), std::string::npos) << msg;  // what was asked
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    // The same through the tier's own call.
    EXPECT_EQ(error_of([&] {
                DramStore::attach_shared(o.shared_path, store_fingerprint(sources(c.dir)));
              }).code(),
              Errc::mismatch);
  }
  // The refused file is left as it was: its own checkpoint still attaches.
  expect_same_rows(*open_store(sources(a), o).store, *ref);
  // A creator cannot record a fingerprint of other tables.
  TempDir shm2(shm.path());
  EXPECT_EQ(error_of([&] {
              DramStore::create_shared(shm2.file("t"), *ref, store_fingerprint(sources(b)));
            }).code(),
            Errc::invalid_argument);
}

// ---- Hash values to table rows -----------------------------------------------------------------

TEST(HashValuesToRows, AddsEachColumnsOffsetAndChecksItsPrime) {
  LayerHashLayout lay;
  lay.layer_id = 14;
  lay.primes = {5, 7, 11};
  lay.offsets = {0, 5, 12};
  lay.total_rows = 23;
  const std::vector<int64_t> values = {0, 0, 0, 4, 6, 10, 2, 3, 1};
  EXPECT_EQ(hash_values_to_rows(lay, values),
            (std::vector<int64_t>{0, 5, 12, 4, 11, 22, 2, 8, 13}));
  EXPECT_TRUE(hash_values_to_rows(lay, std::span<const int64_t>{}).empty());

  struct Case {
    std::vector<int64_t> values;
    std::string expect;
  };
  for (const Case& c : {Case{{0, 0, 0, 1, 7, 0},
                             "layer 14: hash value 7 of token 1, column 1 "
                             "is outside [0, 7)"},
                        Case{{0, 0, 11}, "hash value 11 of token 0, column 2"},
                        Case{{-1, 0, 0}, "hash value -1 of token 0, column 0"}}) {
    const Error e = error_of([&] { hash_values_to_rows(lay, c.values); });
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
  }
  EXPECT_EQ(error_of([&] {
              hash_values_to_rows(lay, std::vector<int64_t>{1, 2});
            }).code(),
            Errc::invalid_argument);  // not whole tokens
  std::vector<int64_t> small(2);
  EXPECT_EQ(error_of([&] {
              hash_values_to_rows(lay, std::vector<int64_t>{1, 2, 3}, small);
            }).code(),
            Errc::invalid_argument);
}

}  // namespace
}  // namespace engram
