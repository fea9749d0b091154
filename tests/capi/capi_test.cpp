// Tests of the C API (engram/engram.h): every function's happy path and its error paths, rows
// through the C API bit-equal to the C++ store's, chunked hashing equal to whole-sequence hashing
// (and to NgramHasher), rollback through state copies, and thread-local error messages.
#include "engram/engram.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engram/compressor.h"
#include "engram/hasher.h"
#include "engram/store.h"
#include "engram/v41_checkpoint.h"
#include "store/test_util.h"
#include "util/clock.h"

namespace {

using engram::testing::TempDir;

constexpr int64_t kVocab = 1000;  // raw = compressed ids of the synthetic checkpoint

// One synthetic V4.1 checkpoint for the whole suite (layers 1 and 14, 24 columns, 264-byte rows).
class CApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    engram_synthetic_options so;
    engram_synthetic_options_init(&so);
    so.compressed_vocab_size = kVocab;
    ASSERT_EQ(engram_write_synthetic_v41(ckpt().c_str(), &so), ENGRAM_OK) << engram_last_error();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string ckpt() { return dir_->file("ckpt"); }

  static std::vector<int64_t> identity_lookup() {
    std::vector<int64_t> v(kVocab);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }
  engram_hasher* make_hasher() {
    auto lk = identity_lookup();
    engram_hasher* h = nullptr;
    EXPECT_EQ(engram_hasher_from_lookup(ckpt().c_str(), lk.data(), lk.size(), &h), ENGRAM_OK)
        << engram_last_error();
    return h;
  }
  engram_store* open_store(engram_tier tier, uint64_t cache_bytes = 0) {
    engram_store_options o;
    engram_store_options_init(&o);
    o.tier = tier;
    o.cache_bytes = cache_bytes;
    engram_store* s = nullptr;
    EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
    return s;
  }
  // Per-column hash values [n, 24] of layer `layer` for random tokens, hashed whole.
  std::vector<int64_t> hash_values(engram_hasher* h, int64_t layer, size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> ids(n);
    for (auto& x : ids) x = int64_t(rng() % kVocab);
    engram_hash_state* st = nullptr;
    EXPECT_EQ(engram_hash_state_create(&st), ENGRAM_OK);
    std::vector<int64_t> out(n * 24);
    EXPECT_EQ(engram_hash_chunk_layer(h, st, layer, ids.data(), nullptr, n, out.data(), out.size()),
              ENGRAM_OK)
        << engram_last_error();
    engram_hash_state_free(st);
    return out;
  }

  static TempDir* dir_;
};
TempDir* CApiTest::dir_ = nullptr;

// ---- Errors and small things ------------------------------------------------------------------

TEST(CApiErrors, StatusNamesMirrorErrc) {
  EXPECT_STREQ(engram_status_name(ENGRAM_OK), "ok");
  EXPECT_STREQ(engram_status_name(ENGRAM_E_INVALID_ARGUMENT), "invalid_argument");
  EXPECT_STREQ(engram_status_name(ENGRAM_E_OUT_OF_RANGE), "out_of_range");
  EXPECT_STREQ(engram_status_name(ENGRAM_E_IO), "io");
  EXPECT_STREQ(engram_status_name(ENGRAM_E_MISMATCH), "mismatch");
  EXPECT_STREQ(engram_status_name(ENGRAM_E_NO_MEMORY), "no_memory");
  EXPECT_STREQ(engram_status_name(engram_status(99)), "unknown");
}

TEST(CApiErrors, LastErrorIsPerThread) {
  engram_store* s = nullptr;
  ASSERT_EQ(engram_store_open("/nonexistent/engram-ckpt", nullptr, &s), ENGRAM_E_IO);
  EXPECT_EQ(s, nullptr);
  const std::string mine = engram_last_error();
  EXPECT_NE(mine.find("/nonexistent/engram-ckpt"), std::string::npos) << mine;
  std::string theirs;
  std::thread([&] {
    theirs = engram_last_error();  // nothing failed on this thread yet
    engram_store_open(nullptr, nullptr, &s);
  }).join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(mine, engram_last_error());
}

TEST(CApiErrors, ReleasingNullIsANoOp) {
  engram_store_close(nullptr);
  engram_ticket_free(nullptr);
  engram_hasher_free(nullptr);
  engram_hash_state_free(nullptr);
  engram_hash_state_reset(nullptr);
  engram_store_options_init(nullptr);
  engram_synthetic_options_init(nullptr);
  EXPECT_EQ(engram_store_describe(nullptr), nullptr);
}

TEST(CApiErrors, OptionDefaults) {
  engram_store_options o;
  std::memset(&o, 0xAB, sizeof(o));
  engram_store_options_init(&o);
  EXPECT_EQ(o.tier, ENGRAM_TIER_DRAM);
  EXPECT_EQ(o.cache_bytes, 0u);
  EXPECT_EQ(o.cache_policy, ENGRAM_CACHE_S3FIFO);
  EXPECT_EQ(o.direct, 1);
  EXPECT_EQ(o.use_io_uring, 1);
  EXPECT_EQ(o.queue_depth, 64u);
  EXPECT_EQ(o.shared_path, nullptr);
  EXPECT_EQ(o.prefetch_threads, 0u);
  EXPECT_EQ(o.staging_bytes, 256ull << 20);
  EXPECT_EQ(o.resident_scales, 0);
  EXPECT_EQ(o.verify_shared, 0);
  EXPECT_EQ(o.shared_mode, 0600u);
}

TEST(CApiErrors, SyntheticWriterRefusesBadArguments) {
  EXPECT_EQ(engram_write_synthetic_v41(nullptr, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  TempDir d;
  engram_synthetic_options so;
  engram_synthetic_options_init(&so);
  so.head_dim = 33;
  EXPECT_EQ(engram_write_synthetic_v41(d.path().c_str(), &so), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_last_error()).find("head_dim"), std::string::npos);
  engram_synthetic_options_init(&so);
  int64_t layers[1] = {3};
  so.layer_ids = layers;
  so.num_layer_ids = 0;
  EXPECT_EQ(engram_write_synthetic_v41(d.path().c_str(), &so), ENGRAM_E_INVALID_ARGUMENT);
}

// ---- Store --------------------------------------------------------------------------------------

TEST_F(CApiTest, OpenRefusesBadArgumentsAndLeavesOutUntouched) {
  engram_store* const sentinel = reinterpret_cast<engram_store*>(0x1);
  engram_store* s = sentinel;
  EXPECT_EQ(engram_store_open(nullptr, nullptr, &s), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_open(ckpt().c_str(), nullptr, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  engram_store_options o;
  engram_store_options_init(&o);
  o.tier = 7;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_INVALID_ARGUMENT);
  engram_store_options_init(&o);
  o.cache_policy = 5;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_INVALID_ARGUMENT);
  engram_store_options_init(&o);
  o.queue_depth = 0;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_INVALID_ARGUMENT);
  engram_store_options_init(&o);
  o.tier = ENGRAM_TIER_FILE;
  o.shared_path = "/dev/shm/engram-capi-never";
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_last_error()).find("shared_path"), std::string::npos);
  EXPECT_EQ(engram_store_open((ckpt() + "/missing").c_str(), nullptr, &s), ENGRAM_E_IO);
  EXPECT_EQ(s, sentinel);
}

TEST_F(CApiTest, OpenRefusesACheckpointThatDisagreesWithItsConfig) {
  TempDir d;
  std::filesystem::copy(ckpt(), d.path(), std::filesystem::copy_options::recursive);
  {  // a prime-search start whose layout disagrees with the tensors' row counts
    std::ifstream in(d.file("config.json"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto p = text.find("\"engram_vocab_size\": 1000");
    ASSERT_NE(p, std::string::npos);
    text.replace(p, 25, "\"engram_vocab_size\": 1100");
    std::ofstream(d.file("config.json")) << text;
  }
  engram_store* s = nullptr;
  EXPECT_EQ(engram_store_open(d.path().c_str(), nullptr, &s), ENGRAM_E_MISMATCH);
  EXPECT_EQ(s, nullptr);
  std::ofstream(d.file("config.json")) << "{ not json";
  EXPECT_EQ(engram_store_open(d.path().c_str(), nullptr, &s), ENGRAM_E_PARSE);
}

TEST_F(CApiTest, InfoLayersAndSizes) {
  engram_store* s = open_store(ENGRAM_TIER_FILE);
  ASSERT_NE(s, nullptr);
  engram_store_info info;
  ASSERT_EQ(engram_store_get_info(s, &info), ENGRAM_OK);
  EXPECT_EQ(info.num_layers, 2);
  EXPECT_EQ(info.columns, 24);
  EXPECT_EQ(info.head_dim, 256);
  EXPECT_EQ(info.packed_row_bytes, 264);
  EXPECT_EQ(info.max_ngram, 4);
  EXPECT_EQ(info.compressed_vocab_size, kVocab);
  auto ck = engram::V41Checkpoint::open(ckpt());
  for (int64_t i = 0; i < 2; ++i) {
    int64_t id = -1, rows = -1;
    ASSERT_EQ(engram_store_layer(s, i, &id, &rows), ENGRAM_OK);
    EXPECT_EQ(id, ck->layers()[i].layer_id);
    EXPECT_EQ(rows, ck->layers()[i].rows);
  }
  EXPECT_EQ(engram_store_layer(s, 0, nullptr, nullptr), ENGRAM_OK);
  EXPECT_EQ(engram_store_layer(s, 2, nullptr, nullptr), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_store_layer(s, -1, nullptr, nullptr), ENGRAM_E_OUT_OF_RANGE);
  uint64_t b = 0;
  ASSERT_EQ(engram_store_token_bytes(s, ENGRAM_ROWS_F32, &b), ENGRAM_OK);
  EXPECT_EQ(b, 24u * 256 * 4);
  ASSERT_EQ(engram_store_token_bytes(s, ENGRAM_ROWS_BF16, &b), ENGRAM_OK);
  EXPECT_EQ(b, 24u * 256 * 2);
  ASSERT_EQ(engram_store_token_bytes(s, ENGRAM_ROWS_PACKED, &b), ENGRAM_OK);
  EXPECT_EQ(b, 24u * 264);
  EXPECT_EQ(engram_store_token_bytes(s, 9, &b), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_token_bytes(s, ENGRAM_ROWS_F32, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_get_info(nullptr, &info), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_get_info(s, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_store_describe(s)).find("file("), std::string::npos);
  engram_store_close(s);
}

// Rows through the C API equal, bit for bit, what the C++ FileStore (pread engine, an independent
// read path) returns for the same row ids, in every output form and from every tier.
TEST_F(CApiTest, LookupRowsEqualTheCppStore) {
  engram_hasher* h = make_hasher();
  auto ck = engram::V41Checkpoint::open(ckpt());
  auto ref = engram::FileStore::open(ck->table_sources(), {false, false, 8});
  auto layouts = engram::make_hash_layout(ck->config(), kVocab);
  engram_store* stores[3] = {open_store(ENGRAM_TIER_FILE), open_store(ENGRAM_TIER_DRAM),
                             open_store(ENGRAM_TIER_DRAM, 64 * 264)};
  const size_t n = 9;
  for (size_t t = 0; t < 2; ++t) {
    const int64_t layer = ck->layers()[t].layer_id;
    const auto values = hash_values(h, layer, n, 10 + t);
    std::vector<int64_t> rows(values.size());
    for (size_t i = 0; i < values.size(); ++i) rows[i] = values[i] + layouts[t].offsets[i % 24];
    std::vector<float> want_f32(rows.size() * 256);
    std::vector<uint16_t> want_bf16(rows.size() * 256);
    std::vector<std::byte> want_packed(rows.size() * 264);
    ref->gather_f32(t, rows, want_f32.data());
    ref->gather_bf16(t, rows, want_bf16.data());
    ref->gather_packed(t, rows, want_packed.data());
    for (engram_store* s : stores) {
      ASSERT_NE(s, nullptr);
      for (int rep = 0; rep < 2; ++rep) {  // the second pass hits the cache where there is one
        std::vector<float> f32(want_f32.size());
        std::vector<uint16_t> bf16(want_bf16.size());
        std::vector<std::byte> packed(want_packed.size());
        ASSERT_EQ(engram_store_lookup(s, layer, values.data(), n, ENGRAM_ROWS_F32, f32.data(),
                                      f32.size() * 4),
                  ENGRAM_OK)
            << engram_last_error();
        ASSERT_EQ(engram_store_lookup(s, layer, values.data(), n, ENGRAM_ROWS_BF16, bf16.data(),
                                      bf16.size() * 2),
                  ENGRAM_OK);
        ASSERT_EQ(engram_store_lookup(s, layer, values.data(), n, ENGRAM_ROWS_PACKED, packed.data(),
                                      packed.size()),
                  ENGRAM_OK);
        EXPECT_EQ(std::memcmp(f32.data(), want_f32.data(), f32.size() * 4), 0);
        EXPECT_EQ(bf16, want_bf16);
        EXPECT_EQ(packed, want_packed);
      }
    }
  }
  engram_store_stats st;
  ASSERT_EQ(engram_store_get_stats(stores[2], &st), ENGRAM_OK);
  EXPECT_GT(st.cache_hits, 0u);
  EXPECT_GT(st.cache_misses, 0u);
  EXPECT_EQ(st.cache_capacity_rows, 64u);
  EXPECT_LE(st.cache_entries, 64u);
  ASSERT_EQ(engram_store_get_stats(stores[0], &st), ENGRAM_OK);
  EXPECT_EQ(st.cache_hits, 0u);
  EXPECT_GT(st.io_reads, 0u);
  EXPECT_GT(st.io_bytes, 0u);
  EXPECT_EQ(engram_store_get_stats(stores[0], nullptr), ENGRAM_E_INVALID_ARGUMENT);
  for (engram_store* s : stores) engram_store_close(s);
  engram_hasher_free(h);
}

// Resident scales: the same rows, one read per row instead of two.
TEST_F(CApiTest, ResidentScalesHalveTheReadsPerRow) {
  engram_hasher* h = make_hasher();
  const size_t n = 7;
  auto values = hash_values(h, 14, n, 51);
  std::vector<uint8_t> rows[2];
  uint64_t reads[2];
  for (int resident = 0; resident < 2; ++resident) {
    engram_store_options o;
    engram_store_options_init(&o);
    o.tier = ENGRAM_TIER_FILE;
    o.resident_scales = resident;
    engram_store* s = nullptr;
    ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
    engram_store_stats before, after;
    ASSERT_EQ(engram_store_get_stats(s, &before), ENGRAM_OK);
    rows[resident].resize(n * 24 * 264);
    ASSERT_EQ(engram_store_lookup(s, 14, values.data(), n, ENGRAM_ROWS_PACKED,
                                  rows[resident].data(), rows[resident].size()),
              ENGRAM_OK);
    ASSERT_EQ(engram_store_get_stats(s, &after), ENGRAM_OK);
    reads[resident] = after.io_reads - before.io_reads;
    if (resident) {
      EXPECT_GT(before.io_reads, 0u);  // the scales were read at open
    }
    engram_store_close(s);
  }
  EXPECT_EQ(rows[0], rows[1]);
  EXPECT_EQ(reads[0], 2 * n * 24);
  EXPECT_EQ(reads[1], n * 24);
  engram_hasher_free(h);
}

TEST_F(CApiTest, LookupRefusesBadArgumentsBeforeWriting) {
  engram_store* s = open_store(ENGRAM_TIER_FILE);
  engram_hasher* h = make_hasher();
  auto values = hash_values(h, 1, 2, 3);
  std::vector<float> out(2 * 24 * 256, -7.f);
  const uint64_t bytes = out.size() * 4;
  EXPECT_EQ(engram_store_lookup(s, 1, values.data(), 2, ENGRAM_ROWS_F32, out.data(), bytes - 4),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_last_error()).find("out_bytes"), std::string::npos);
  EXPECT_EQ(engram_store_lookup(s, 1, values.data(), 2, ENGRAM_ROWS_F32, nullptr, bytes),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_lookup(s, 1, nullptr, 2, ENGRAM_ROWS_F32, out.data(), bytes),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_store_lookup(s, 2, values.data(), 2, ENGRAM_ROWS_F32, out.data(), bytes),
            ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_store_lookup(nullptr, 1, values.data(), 2, ENGRAM_ROWS_F32, out.data(), bytes),
            ENGRAM_E_INVALID_ARGUMENT);
  auto layouts = engram::make_hash_layout(engram::V41Checkpoint::open(ckpt())->config(), kVocab);
  auto bad = values;
  bad[30] = layouts[0].primes[30 % 24];  // one past its column's table
  EXPECT_EQ(engram_store_lookup(s, 1, bad.data(), 2, ENGRAM_ROWS_F32, out.data(), bytes),
            ENGRAM_E_OUT_OF_RANGE);
  const std::string msg = engram_last_error();
  EXPECT_NE(msg.find("token 1, column 6"), std::string::npos) << msg;
  bad[30] = -1;
  EXPECT_EQ(engram_store_lookup(s, 1, bad.data(), 2, ENGRAM_ROWS_F32, out.data(), bytes),
            ENGRAM_E_OUT_OF_RANGE);
  for (float v : out) ASSERT_EQ(v, -7.f);  // nothing written
  EXPECT_EQ(engram_store_lookup(s, 1, nullptr, 0, ENGRAM_ROWS_F32, nullptr, 0), ENGRAM_OK);
  engram_hasher_free(h);
  engram_store_close(s);
}

TEST_F(CApiTest, SharedDramFileIsCreatedThenAttached) {
  TempDir d;
  const std::string shm = d.file("engram-shared");
  engram_store_options o;
  engram_store_options_init(&o);
  o.shared_path = shm.c_str();
  engram_store *a = nullptr, *b = nullptr;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &a), ENGRAM_OK) << engram_last_error();
  ASSERT_TRUE(std::filesystem::exists(shm));
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &b), ENGRAM_OK) << engram_last_error();
  engram_hasher* h = make_hasher();
  auto values = hash_values(h, 14, 5, 4);
  std::vector<uint8_t> ra(5 * 24 * 264), rb(ra.size());
  ASSERT_EQ(engram_store_lookup(a, 14, values.data(), 5, ENGRAM_ROWS_PACKED, ra.data(), ra.size()),
            ENGRAM_OK);
  ASSERT_EQ(engram_store_lookup(b, 14, values.data(), 5, ENGRAM_ROWS_PACKED, rb.data(), rb.size()),
            ENGRAM_OK);
  EXPECT_EQ(ra, rb);
  engram_store_stats st;
  ASSERT_EQ(engram_store_get_stats(b, &st), ENGRAM_OK);
  EXPECT_EQ(st.io_reads, 0u);  // attached: nothing read from the shards
  // A foreign file under the name is refused, never overwritten.
  engram_store_close(b);
  engram_store_close(a);
  std::ofstream(shm, std::ios::trunc) << "not an engram table file";
  engram_store* c = nullptr;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &c), ENGRAM_E_PARSE);
  engram_hasher_free(h);
}

TEST_F(CApiTest, ThreadsOpeningOneSharedFileAtOnceAllSucceed) {
  TempDir d;
  const std::string shm = d.file("engram-shared");
  engram_store_options o;
  engram_store_options_init(&o);
  o.shared_path = shm.c_str();
  constexpr int kThreads = 4;
  std::vector<engram_store*> stores(kThreads, nullptr);
  std::vector<engram_status> status(kThreads, ENGRAM_OK);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      status[i] = engram_store_open(ckpt().c_str(), &o, &stores[i]);
      if (status[i] != ENGRAM_OK) errors[i] = engram_last_error();
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(status[i], ENGRAM_OK) << errors[i];
    engram_store_close(stores[i]);
  }
}

TEST_F(CApiTest, SharedFileModeAndVerification) {
  TempDir d;
  const std::string shm = d.file("engram-shared"), group = d.file("engram-group");
  auto mode_of = [](const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  };
  engram_store_options o;
  engram_store_options_init(&o);
  o.shared_path = shm.c_str();
  engram_store* s = nullptr;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
  engram_store_close(s);
  EXPECT_EQ(mode_of(shm), 0600u);
  o.shared_path = group.c_str();
  o.shared_mode = 0640;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
  engram_store_close(s);
  EXPECT_EQ(mode_of(group), 0640u);
  o.shared_path = shm.c_str();
  o.shared_mode = 0200;  // the owner could not read it
  s = nullptr;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_last_error()).find("mode 0200"), std::string::npos)
      << engram_last_error();
  EXPECT_EQ(s, nullptr);
  o.shared_mode = 0600;

  {  // one bit of the first row, changed in place after publishing
    std::fstream f(shm, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(4096 + 10);
    const char c = static_cast<char>(f.get() ^ 0x04);
    f.seekp(4096 + 10);
    f.put(c);
  }
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
  engram_store_close(s);  // not verified: served as is
  o.verify_shared = 1;
  s = nullptr;
  EXPECT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_E_PARSE);
  EXPECT_NE(std::string(engram_last_error()).find("row data checksum"), std::string::npos)
      << engram_last_error();
  EXPECT_EQ(s, nullptr);
  o.shared_path = group.c_str();  // an intact file passes verification
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK) << engram_last_error();
  engram_store_close(s);
}

TEST_F(CApiTest, SharedDramFileOfAnotherCheckpointIsRefused) {
  TempDir d;
  const std::string shm = d.file("engram-shared"), other = d.file("other"),
                    reseeded = d.file("reseeded");
  engram_synthetic_options so;
  engram_synthetic_options_init(&so);
  so.compressed_vocab_size = kVocab;
  so.vocab_size = 1100;  // other primes: other row counts
  ASSERT_EQ(engram_write_synthetic_v41(other.c_str(), &so), ENGRAM_OK) << engram_last_error();
  so.vocab_size = 1000;
  so.seed = 5;  // the suite's layout, other weights
  ASSERT_EQ(engram_write_synthetic_v41(reseeded.c_str(), &so), ENGRAM_OK) << engram_last_error();

  engram_store_options o;
  engram_store_options_init(&o);
  o.shared_path = shm.c_str();
  engram_store* a = nullptr;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &a), ENGRAM_OK) << engram_last_error();
  for (const std::string& dir : {other, reseeded}) {
    engram_store* b = nullptr;
    EXPECT_EQ(engram_store_open(dir.c_str(), &o, &b), ENGRAM_E_MISMATCH) << dir;
    EXPECT_EQ(b, nullptr);
    const std::string msg = engram_last_error();
    EXPECT_NE(msg.find(shm), std::string::npos) << msg;
    EXPECT_NE(msg.find("(from " + ckpt() + ")"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(from " + dir + ")"), std::string::npos) << msg;
  }
  // The refused file is untouched: this checkpoint still attaches it.
  engram_store* again = nullptr;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &again), ENGRAM_OK) << engram_last_error();
  engram_store_stats st;
  ASSERT_EQ(engram_store_get_stats(again, &st), ENGRAM_OK);
  EXPECT_EQ(st.io_reads, 0u);
  engram_store_close(again);
  engram_store_close(a);
}

// ---- Prefetch -----------------------------------------------------------------------------------

TEST_F(CApiTest, PrefetchAllLayersThenCopyEqualsLookup) {
  engram_hasher* h = make_hasher();
  for (engram_tier tier : {ENGRAM_TIER_FILE, ENGRAM_TIER_DRAM}) {
    engram_store* s = open_store(tier, tier == ENGRAM_TIER_FILE ? 1 << 20 : 0);
    const size_t n = 6;
    auto v1 = hash_values(h, 1, n, 21), v14 = hash_values(h, 14, n, 22);
    engram_layer_request reqs[2] = {{1, v1.data(), n}, {14, v14.data(), n}};
    for (engram_row_output out : {ENGRAM_ROWS_F32, ENGRAM_ROWS_BF16, ENGRAM_ROWS_PACKED}) {
      uint64_t tb = 0;
      ASSERT_EQ(engram_store_token_bytes(s, out, &tb), ENGRAM_OK);
      engram_ticket* t = nullptr;
      const int64_t before_prefetch = engram::now_ns();
      ASSERT_EQ(engram_prefetch(s, 5, reqs, 2, out, &t), ENGRAM_OK) << engram_last_error();
      for (auto& r : reqs) {
        std::vector<uint8_t> got(n * tb), want(n * tb);
        const int64_t before_wait = engram::now_ns();
        ASSERT_EQ(engram_ticket_wait(t, r.layer_id), ENGRAM_OK);
        int32_t ready = 0;
        ASSERT_EQ(engram_ticket_ready(t, r.layer_id, &ready), ENGRAM_OK);
        EXPECT_EQ(ready, 1);
        ASSERT_EQ(engram_ticket_copy(t, r.layer_id, got.data(), got.size()), ENGRAM_OK);
        const int64_t after_waits = engram::now_ns();  // wait and copy are the only waits
        ASSERT_EQ(
            engram_store_lookup(s, r.layer_id, r.hash_values, n, out, want.data(), want.size()),
            ENGRAM_OK);
        EXPECT_EQ(got, want);
        int64_t fetch_ns = -1, wait_ns = -1;
        ASSERT_EQ(engram_ticket_timing(t, r.layer_id, &fetch_ns, &wait_ns), ENGRAM_OK);
        // Each within the calls that contain it (prefetch_test shows a blocked wait counted).
        EXPECT_GT(fetch_ns, 0);
        EXPECT_LE(fetch_ns, after_waits - before_prefetch);
        EXPECT_LE(wait_ns, after_waits - before_wait);
      }
      engram_ticket_free(t);
    }
    engram_store_close(s);
  }
  engram_hasher_free(h);
}

TEST_F(CApiTest, PrefetchErrors) {
  engram_hasher* h = make_hasher();
  engram_store* s = open_store(ENGRAM_TIER_FILE);
  const size_t n = 3;
  auto v1 = hash_values(h, 1, n, 31);
  engram_ticket* const sentinel = reinterpret_cast<engram_ticket*>(0x1);
  engram_ticket* t = sentinel;
  engram_layer_request twice[2] = {{1, v1.data(), n}, {1, v1.data(), n}};
  EXPECT_EQ(engram_prefetch(s, 0, twice, 2, ENGRAM_ROWS_F32, &t), ENGRAM_E_INVALID_ARGUMENT);
  engram_layer_request unknown[1] = {{7, v1.data(), n}};
  EXPECT_EQ(engram_prefetch(s, 0, unknown, 1, ENGRAM_ROWS_F32, &t), ENGRAM_E_OUT_OF_RANGE);
  auto bad = v1;
  bad[5] = 1 << 30;
  engram_layer_request out_of_range[1] = {{1, bad.data(), n}};
  EXPECT_EQ(engram_prefetch(s, 0, out_of_range, 1, ENGRAM_ROWS_F32, &t), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_prefetch(s, 0, nullptr, 1, ENGRAM_ROWS_F32, &t), ENGRAM_E_INVALID_ARGUMENT);
  engram_layer_request good[1] = {{1, v1.data(), n}};
  EXPECT_EQ(engram_prefetch(s, 0, good, 1, 3, &t), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_prefetch(s, 0, good, 1, ENGRAM_ROWS_F32, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(t, sentinel);

  ASSERT_EQ(engram_prefetch(s, 0, good, 1, ENGRAM_ROWS_F32, &t), ENGRAM_OK);
  std::vector<float> rows(n * 24 * 256);
  EXPECT_EQ(engram_ticket_wait(t, 14), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_NE(std::string(engram_last_error()).find("not part of this prefetch"), std::string::npos);
  EXPECT_EQ(engram_ticket_copy(t, 1, rows.data(), rows.size() * 4 + 4), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_ticket_copy(t, 1, nullptr, rows.size() * 4), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_ticket_copy(nullptr, 1, rows.data(), rows.size() * 4),
            ENGRAM_E_INVALID_ARGUMENT);
  int32_t ready;
  EXPECT_EQ(engram_ticket_ready(t, 1, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_ticket_ready(t, 14, &ready), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_ticket_timing(t, 14, nullptr, nullptr), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_ticket_wait(nullptr, 1), ENGRAM_E_INVALID_ARGUMENT);
  // The store may go first: a finished layer stays readable.
  ASSERT_EQ(engram_ticket_wait(t, 1), ENGRAM_OK);
  engram_store_close(s);
  EXPECT_EQ(engram_ticket_copy(t, 1, rows.data(), rows.size() * 4), ENGRAM_OK);
  engram_ticket_free(t);
  engram_hasher_free(h);
}

TEST_F(CApiTest, PrefetchRefusesWhenLiveTicketsHoldTheStagingBudget) {
  engram_hasher* h = make_hasher();
  engram_store_options o;
  engram_store_options_init(&o);
  o.tier = ENGRAM_TIER_DRAM;
  o.staging_bytes = 4 * 24 * 256 * 4;  // four tokens of fp32 rows
  engram_store* s = nullptr;
  ASSERT_EQ(engram_store_open(ckpt().c_str(), &o, &s), ENGRAM_OK);
  auto v = hash_values(h, 1, 3, 41);
  engram_layer_request r[1] = {{1, v.data(), 3}};
  engram_ticket *a = nullptr, *b = nullptr;
  ASSERT_EQ(engram_prefetch(s, 0, r, 1, ENGRAM_ROWS_F32, &a), ENGRAM_OK);
  EXPECT_EQ(engram_prefetch(s, 1, r, 1, ENGRAM_ROWS_F32, &b), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(engram_last_error()).find("release a ticket"), std::string::npos);
  EXPECT_EQ(b, nullptr);
  engram_ticket_free(a);
  ASSERT_EQ(engram_prefetch(s, 1, r, 1, ENGRAM_ROWS_F32, &b), ENGRAM_OK) << engram_last_error();
  EXPECT_EQ(engram_ticket_wait(b, 1), ENGRAM_OK);
  engram_ticket_free(b);
  engram_store_close(s);
  engram_hasher_free(h);
}

// ---- Hashing ------------------------------------------------------------------------------------

TEST_F(CApiTest, HasherInfoAndConstructionErrors) {
  engram_hasher* h = make_hasher();
  ASSERT_NE(h, nullptr);
  engram_hasher_info info;
  ASSERT_EQ(engram_hasher_get_info(h, &info), ENGRAM_OK);
  EXPECT_EQ(info.num_layers, 2);
  EXPECT_EQ(info.columns, 24);
  EXPECT_EQ(info.max_ngram, 4);
  EXPECT_EQ(info.vocab_size, kVocab);
  EXPECT_EQ(info.compressed_vocab_size, kVocab);
  int64_t id = 0;
  ASSERT_EQ(engram_hasher_layer_id(h, 1, &id), ENGRAM_OK);
  EXPECT_EQ(id, 14);
  EXPECT_EQ(engram_hasher_layer_id(h, 2, &id), ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_hasher_layer_id(h, 0, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hasher_get_info(nullptr, &info), ENGRAM_E_INVALID_ARGUMENT);
  engram_hasher_free(h);

  engram_hasher* const sentinel = reinterpret_cast<engram_hasher*>(0x1);
  engram_hasher* g = sentinel;
  std::vector<int64_t> small(500);
  std::iota(small.begin(), small.end(), 0);  // 500 compressed ids; config.json says 1000
  EXPECT_EQ(engram_hasher_from_lookup(ckpt().c_str(), small.data(), small.size(), &g),
            ENGRAM_E_MISMATCH);
  std::vector<int64_t> sparse = identity_lookup();
  sparse[3] = 999;  // not numbered in order of first appearance
  EXPECT_EQ(engram_hasher_from_lookup(ckpt().c_str(), sparse.data(), sparse.size(), &g),
            ENGRAM_E_INVALID_ARGUMENT);
  auto lk = identity_lookup();
  EXPECT_EQ(engram_hasher_from_lookup(nullptr, lk.data(), lk.size(), &g),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hasher_from_lookup(ckpt().c_str(), nullptr, 0, &g), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hasher_from_lookup("/nonexistent/config.json", lk.data(), lk.size(), &g),
            ENGRAM_E_IO);
  EXPECT_EQ(engram_hasher_open(ckpt().c_str(), "/nonexistent/tokenizer.json", &g), ENGRAM_E_IO);
  EXPECT_EQ(engram_hasher_open(ckpt().c_str(), nullptr, &g), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(g, sentinel);
}

// Hashing in chunks of every size through one state equals hashing the whole sequence, which in
// turn equals NgramHasher::hash on the C++ side; dead positions included.
TEST_F(CApiTest, ChunkedHashingEqualsWholeSequence) {
  engram_hasher* h = make_hasher();
  auto cfg = engram::V41Checkpoint::open(ckpt())->config();
  engram::NgramHasher ref(cfg, identity_lookup(), kVocab);
  std::mt19937_64 rng(7);
  const size_t T = 40, C = 24;
  std::vector<int64_t> ids(T);
  std::vector<uint8_t> dead(T);
  for (size_t i = 0; i < T; ++i) {
    ids[i] = int64_t(rng() % kVocab);
    dead[i] = (i >= 17 && i < 20) ? 1 : 0;  // an image span in the middle
  }
  // [layers, T, C] from the C++ hasher, whole.
  std::vector<int64_t> want(2 * T * C);
  for (size_t l = 0; l < 2; ++l)
    ref.hash(cfg.layer_ids[l], ids, 1, T, std::span<int64_t>(want.data() + l * T * C, T * C), dead);
  for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(5), size_t(40)}) {
    engram_hash_state* st = nullptr;
    ASSERT_EQ(engram_hash_state_create(&st), ENGRAM_OK);
    std::vector<int64_t> got(2 * T * C);
    for (size_t p = 0; p < T; p += chunk) {
      const size_t n = std::min(chunk, T - p);
      std::vector<int64_t> out(2 * n * C);
      ASSERT_EQ(
          engram_hash_chunk(h, st, ids.data() + p, dead.data() + p, n, out.data(), out.size()),
          ENGRAM_OK)
          << engram_last_error();
      for (size_t l = 0; l < 2; ++l)
        std::copy(out.begin() + l * n * C, out.begin() + (l + 1) * n * C,
                  got.begin() + l * T * C + p * C);
    }
    int64_t pos = -1;
    ASSERT_EQ(engram_hash_state_position(st, &pos), ENGRAM_OK);
    EXPECT_EQ(pos, int64_t(T));
    EXPECT_EQ(got, want) << "chunk " << chunk;
    engram_hash_state_free(st);
  }
  // One layer at a time, then advance: the same values.
  engram_hash_state* st = nullptr;
  ASSERT_EQ(engram_hash_state_create(&st), ENGRAM_OK);
  for (size_t p = 0; p < T; p += 8) {
    for (size_t l = 0; l < 2; ++l) {
      std::vector<int64_t> out(8 * C);
      ASSERT_EQ(engram_hash_chunk_layer(h, st, cfg.layer_ids[l], ids.data() + p, dead.data() + p, 8,
                                        out.data(), out.size()),
                ENGRAM_OK);
      EXPECT_TRUE(std::equal(out.begin(), out.end(), want.begin() + l * T * C + p * C));
    }
    ASSERT_EQ(engram_hash_advance(h, st, ids.data() + p, dead.data() + p, 8), ENGRAM_OK);
  }
  engram_hash_state_free(st);
  engram_hasher_free(h);
}

// Speculative decoding: snapshot the state, hash draft tokens, roll back by copying the snapshot,
// hash the accepted tokens: the result equals never having seen the draft.
TEST_F(CApiTest, StateCopyRollsBackSpeculation) {
  engram_hasher* h = make_hasher();
  const size_t C = 24;
  std::vector<int64_t> prefix = {5, 9, 300, 42, 7}, draft = {11, 12, 13}, accepted = {99, 98};
  engram_hash_state *live = nullptr, *snap = nullptr, *clean = nullptr;
  ASSERT_EQ(engram_hash_state_create(&live), ENGRAM_OK);
  ASSERT_EQ(engram_hash_state_create(&snap), ENGRAM_OK);
  ASSERT_EQ(engram_hash_state_create(&clean), ENGRAM_OK);
  std::vector<int64_t> out(2 * 5 * C);
  ASSERT_EQ(engram_hash_chunk(h, live, prefix.data(), nullptr, 5, out.data(), out.size()),
            ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, clean, prefix.data(), nullptr, 5, out.data(), out.size()),
            ENGRAM_OK);
  ASSERT_EQ(engram_hash_state_copy(snap, live), ENGRAM_OK);
  std::vector<int64_t> d(2 * 3 * C), a(2 * 2 * C), b(2 * 2 * C);
  ASSERT_EQ(engram_hash_chunk(h, live, draft.data(), nullptr, 3, d.data(), d.size()), ENGRAM_OK);
  ASSERT_EQ(engram_hash_state_copy(live, snap), ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, live, accepted.data(), nullptr, 2, a.data(), a.size()), ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, clean, accepted.data(), nullptr, 2, b.data(), b.size()),
            ENGRAM_OK);
  EXPECT_EQ(a, b);
  // Without the rollback the draft would have changed the accepted tokens' lookback.
  engram_hash_state* spoiled = nullptr;
  ASSERT_EQ(engram_hash_state_create(&spoiled), ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, spoiled, prefix.data(), nullptr, 5, out.data(), out.size()),
            ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, spoiled, draft.data(), nullptr, 3, d.data(), d.size()), ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(h, spoiled, accepted.data(), nullptr, 2, a.data(), a.size()),
            ENGRAM_OK);
  EXPECT_NE(a, b);
  // Reset gives an empty sequence again.
  engram_hash_state_reset(spoiled);
  int64_t pos = -1;
  ASSERT_EQ(engram_hash_state_position(spoiled, &pos), ENGRAM_OK);
  EXPECT_EQ(pos, 0);
  EXPECT_EQ(engram_hash_state_copy(nullptr, snap), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_state_copy(live, nullptr), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_state_position(nullptr, &pos), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_state_create(nullptr), ENGRAM_E_INVALID_ARGUMENT);
  for (auto* s : {live, snap, clean, spoiled}) engram_hash_state_free(s);
  engram_hasher_free(h);
}

TEST_F(CApiTest, HashChunkErrorsLeaveTheStateAlone) {
  engram_hasher* h = make_hasher();
  engram_hash_state* st = nullptr;
  ASSERT_EQ(engram_hash_state_create(&st), ENGRAM_OK);
  std::vector<int64_t> ids = {1, 2, 3, 4};
  std::vector<int64_t> out(2 * 4 * 24);
  ASSERT_EQ(engram_hash_chunk(h, st, ids.data(), nullptr, 4, out.data(), out.size()), ENGRAM_OK);
  std::vector<int64_t> bad = {5, kVocab, 6};
  std::vector<int64_t> out3(2 * 3 * 24);
  EXPECT_EQ(engram_hash_chunk(h, st, bad.data(), nullptr, 3, out3.data(), out3.size()),
            ENGRAM_E_OUT_OF_RANGE);
  const std::string msg = engram_last_error();
  EXPECT_NE(msg.find("input id 1000 at sequence position 5"), std::string::npos) << msg;
  int64_t pos = -1;
  ASSERT_EQ(engram_hash_state_position(st, &pos), ENGRAM_OK);
  EXPECT_EQ(pos, 4);
  EXPECT_EQ(engram_hash_chunk(h, st, ids.data(), nullptr, 4, out.data(), out.size() - 1),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk(h, st, nullptr, nullptr, 4, out.data(), out.size()),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk(h, st, ids.data(), nullptr, 4, nullptr, out.size()),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk(nullptr, st, ids.data(), nullptr, 4, out.data(), out.size()),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk(h, nullptr, ids.data(), nullptr, 4, out.data(), out.size()),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk_layer(h, st, 2, ids.data(), nullptr, 4, out.data(), 4 * 24),
            ENGRAM_E_OUT_OF_RANGE);
  EXPECT_EQ(engram_hash_chunk_layer(h, st, 1, ids.data(), nullptr, 4, out.data(), 4 * 24 + 1),
            ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_advance(h, st, nullptr, nullptr, 2), ENGRAM_E_INVALID_ARGUMENT);
  EXPECT_EQ(engram_hash_chunk(h, st, nullptr, nullptr, 0, nullptr, 0), ENGRAM_OK);  // empty
  ASSERT_EQ(engram_hash_state_position(st, &pos), ENGRAM_OK);
  EXPECT_EQ(pos, 4);
  engram_hash_state_free(st);
  engram_hasher_free(h);
}

// The C API applies the token id rule of the CLI and Python (util/token_ids.h,
// tests/python/test_same_rejections.py) with the same text: negative ids are padding and hash,
// ids >= vocab are refused, and a dead position is never judged.
TEST_F(CApiTest, TokenIdRuleIsTheCliAndPythonRule) {
  engram_hasher* h = make_hasher();
  engram_hash_state* st = nullptr;
  ASSERT_EQ(engram_hash_state_create(&st), ENGRAM_OK);
  std::vector<int64_t> out(2 * 3 * 24);
  const std::vector<int64_t> padded = {1, -1, 3};
  EXPECT_EQ(engram_hash_chunk(h, st, padded.data(), nullptr, 3, out.data(), out.size()), ENGRAM_OK)
      << engram_last_error();
  const std::vector<int64_t> bad = {1, kVocab, 3};
  const std::vector<uint8_t> dead = {0, 1, 0};
  EXPECT_EQ(engram_hash_chunk(h, st, bad.data(), dead.data(), 3, out.data(), out.size()), ENGRAM_OK)
      << engram_last_error();
  EXPECT_EQ(engram_hash_chunk(h, st, bad.data(), nullptr, 3, out.data(), out.size()),
            ENGRAM_E_OUT_OF_RANGE);
  EXPECT_STREQ(engram_last_error(),
               "input id 1000 at sequence position 7 is outside the tokenizer's vocabulary of 1000 "
               "ids (negative ids are padding and pass through hashing unchanged)");
  engram_hash_state_free(st);
  engram_hasher_free(h);
}

// The tokenizer path: a hasher built from tokenizer.json equals one built from the compressor's
// lookup; a checkpoint whose compressed vocabulary disagrees with the tokenizer is refused.
TEST(CApiTokenizer, HasherFromTokenizerFile) {
  const std::string tok = std::string(ENGRAM_SOURCE_DIR) + "/assets/deepseek_v3/tokenizer.json";
  if (!std::filesystem::exists(tok)) GTEST_SKIP() << "asset missing: " << tok;
  const auto comp = engram::TokenCompressor::from_tokenizer_file(tok);
  TempDir d;
  engram_synthetic_options so;
  engram_synthetic_options_init(&so);
  so.compressed_vocab_size = comp.compressed_vocab_size();
  ASSERT_EQ(engram_write_synthetic_v41(d.path().c_str(), &so), ENGRAM_OK);
  engram_hasher *a = nullptr, *b = nullptr;
  ASSERT_EQ(engram_hasher_open(d.path().c_str(), tok.c_str(), &a), ENGRAM_OK)
      << engram_last_error();
  ASSERT_EQ(engram_hasher_from_lookup((d.path() + "/config.json").c_str(), comp.lookup().data(),
                                      comp.lookup().size(), &b),
            ENGRAM_OK);
  std::vector<int64_t> ids = {0, 1, 2, 128000, 5000, 77, 127999};
  std::vector<int64_t> oa(2 * ids.size() * 24), ob(oa.size());
  engram_hash_state *sa = nullptr, *sb = nullptr;
  ASSERT_EQ(engram_hash_state_create(&sa), ENGRAM_OK);
  ASSERT_EQ(engram_hash_state_create(&sb), ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(a, sa, ids.data(), nullptr, ids.size(), oa.data(), oa.size()),
            ENGRAM_OK);
  ASSERT_EQ(engram_hash_chunk(b, sb, ids.data(), nullptr, ids.size(), ob.data(), ob.size()),
            ENGRAM_OK);
  EXPECT_EQ(oa, ob);
  engram_hash_state_free(sa);
  engram_hash_state_free(sb);
  engram_hasher_free(a);
  engram_hasher_free(b);

  TempDir other;
  so.compressed_vocab_size = comp.compressed_vocab_size() + 1;
  ASSERT_EQ(engram_write_synthetic_v41(other.path().c_str(), &so), ENGRAM_OK);
  engram_hasher* c = nullptr;
  EXPECT_EQ(engram_hasher_open(other.path().c_str(), tok.c_str(), &c), ENGRAM_E_MISMATCH);
  EXPECT_EQ(c, nullptr);
}

}  // namespace
