// Prefetcher tests: rows staged per layer equal a direct gather for every output kind; pipelined
// steps under a staging budget; errors reaching only the waiter of the failed layer; ids out of
// range; cancellation and shutdown with fetches queued and running (no hang, no stale writes).
// Also run under ThreadSanitizer: configure with -DCMAKE_CXX_FLAGS=-fsanitize=thread.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "engram/error.h"
#include "engram/prefetch.h"
#include "store/io_engine.h"
#include "store/test_util.h"
#include "util/clock.h"

namespace engram {
namespace {

using testing::TempDir;

struct Tables {
  TempDir dir;
  std::vector<testing::TableOnDisk> t;
  std::shared_ptr<FileStore> file;
  Tables() {
    t.push_back(
        testing::write_table(dir.path(), "layers.1.engram.embed", RowDtype::f8_e4m3, 64, 2000, 1));
    t.push_back(
        testing::write_table(dir.path(), "layers.14.engram.embed", RowDtype::f8_e4m3, 64, 1500, 2));
    file = FileStore::open({t[0].source, t[1].source});
  }
};

std::vector<int64_t> ids_for(int64_t rows, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = int64_t(rng() % rows);
  return v;
}

TEST(Prefetcher, StagedRowsEqualDirectGathersForEveryOutput) {
  Tables tb;
  for (RowOutput out : {RowOutput::packed, RowOutput::f32, RowOutput::bf16}) {
    Prefetcher pf(tb.file, {2, 1 << 20, out});
    auto a = ids_for(2000, 300, 1), b = ids_for(1500, 200, 2);
    Ticket tk = pf.prefetch(7, {{0, a}, {1, b}});
    EXPECT_EQ(tk.step(), 7);
    ASSERT_EQ(tk.num_layers(), 2u);
    for (size_t layer : {1u, 0u}) {
      const auto& ids = layer == 0 ? a : b;
      StagedRows rows = tk.wait(layer);
      ASSERT_EQ(rows.n, ids.size());
      std::vector<std::byte> want(rows.n * rows.row_bytes);
      if (out == RowOutput::packed) tb.file->gather_packed(layer, ids, want.data());
      if (out == RowOutput::f32)
        tb.file->gather_f32(layer, ids, reinterpret_cast<float*>(want.data()));
      if (out == RowOutput::bf16)
        tb.file->gather_bf16(layer, ids, reinterpret_cast<uint16_t*>(want.data()));
      EXPECT_EQ(std::memcmp(rows.data, want.data(), want.size()), 0);
      EXPECT_TRUE(tk.ready(layer));
    }
    if (out == RowOutput::f32) {
      EXPECT_EQ(tk.wait(0).f32().size(), 300u * 64u);
      EXPECT_THROW(tk.wait(0).bf16(), Error);
    }
    EXPECT_THROW(tk.wait(2), Error);
  }
}

TEST(Prefetcher, PipelinedStepsUnderABudgetOfTwoSteps) {
  Tables tb;
  const size_t n = 100;
  const uint64_t step_bytes = 2 * n * 64 * sizeof(float);
  Prefetcher pf(tb.file, {2, 2 * step_bytes, RowOutput::f32});
  std::vector<float> want(n * 64);
  Ticket next = pf.prefetch(0, {{0, ids_for(2000, n, 100)}, {1, ids_for(1500, n, 200)}});
  for (int64_t step = 0; step < 30; ++step) {
    Ticket cur = std::move(next);
    // Two live tickets fill the budget exactly; a third is refused, not waited for.
    next = pf.prefetch(step + 1,
                       {{0, ids_for(2000, n, 101 + step)}, {1, ids_for(1500, n, 201 + step)}});
    EXPECT_THROW(pf.prefetch(99, {{0, {1}}}), Error);
    for (size_t layer = 0; layer < 2; ++layer) {
      auto ids = ids_for(layer ? 1500 : 2000, n, (layer ? 200 : 100) + step);
      tb.file->gather_f32(layer, ids, want.data());
      auto got = cur.wait(layer).f32();
      ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0) << "step " << step;
    }
  }
  EXPECT_LE(pf.staging_in_use(), 2 * step_bytes);
}

TEST(Prefetcher, RequestsLargerThanTheBudgetOrOutOfRangeAreRefusedAtOnce) {
  Tables tb;
  Prefetcher pf(tb.file, {1, 1000, RowOutput::packed});
  EXPECT_THROW(pf.prefetch(0, {{0, ids_for(2000, 100, 1)}}), Error);
  try {
    pf.prefetch(3, {{0, {1}}, {1, {5, 1500}}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    std::string m = e.what();
    EXPECT_NE(m.find("layer 1"), std::string::npos) << m;
    EXPECT_NE(m.find("1500"), std::string::npos) << m;
  }
  EXPECT_THROW(pf.prefetch(3, {{2, {1}}}), Error);
  EXPECT_EQ(pf.staging_in_use(), 0u);
  EXPECT_THROW(Prefetcher(tb.file, {0, 1000, RowOutput::packed}), Error);
  EXPECT_THROW(Prefetcher(nullptr), Error);
}

TEST(Prefetcher, AnIoErrorReachesOnlyThatLayersWaiter) {
  Tables tb;
  const uint64_t bad = tb.t[1].source.data_offset + 77 * 64;  // table 1, row 77's data
  set_fault_hook(*tb.file, [&](const ReadRequest& r, uint64_t, uint32_t) -> int64_t {
    return r.offset == bad && r.file->path() == tb.t[1].source.data_path ? -EIO : 0;
  });
  Prefetcher pf(tb.file, {2, 1 << 20, RowOutput::f32});
  Ticket tk = pf.prefetch(1, {{0, {1, 2, 77}}, {1, {3, 77, 4}}});
  EXPECT_NO_THROW(tk.wait(0));
  try {
    tk.wait(1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(bad)), std::string::npos);
  }
  // Waiting again gives the same error, not a hang or rows.
  EXPECT_THROW(tk.wait(1), Error);
  set_fault_hook(*tb.file, nullptr);
  Ticket ok = pf.prefetch(2, {{1, {3, 77, 4}}});
  EXPECT_NO_THROW(ok.wait(0));
}

// A store whose gathers block until the test opens a gate; counts gathers that ran.
class GatedStore final : public RowStore {
 public:
  explicit GatedStore(RowStore& inner)
      : RowStore({inner.table(0), inner.table(1)}), inner_(inner) {}
  std::string describe() const override { return "gated"; }
  void gather_packed(size_t t, std::span<const int64_t> ids, std::byte* out) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    inner_.gather_packed(t, ids, out);
    ++finished_;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  std::atomic<int> finished_{0};

 private:
  RowStore& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
};

TEST(Prefetcher, CancelSkipsQueuedFetchesAndRunningOnesFinishSafely) {
  Tables tb;
  auto gated = std::make_shared<GatedStore>(*tb.file);
  Prefetcher pf(gated, {1, 1 << 20, RowOutput::packed});
  Ticket tk = pf.prefetch(5, {{0, {1, 2}}, {1, {3}}, {0, {4}}});
  gated->wait_entered(1);  // layer 0 is running, layers 1 and 2 are queued
  tk.cancel();
  gated->open();
  EXPECT_NO_THROW(tk.wait(0));  // it was already running: its rows are complete
  for (size_t layer : {1u, 2u}) {
    try {
      tk.wait(layer);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(gated->finished_.load(), 1);
}

TEST(Prefetcher, TimingCountsTheFetchAndAWaitThatBlocked) {
  Tables tb;
  auto gated = std::make_shared<GatedStore>(*tb.file);
  Prefetcher pf(gated, {1, 1 << 20, RowOutput::packed});
  const int64_t before_prefetch = now_ns();
  Ticket tk = pf.prefetch(0, {{0, {1, 2, 3}}});
  const int64_t prefetched = now_ns();
  gated->wait_entered(1);  // the fetch is running, held at the gate
  EXPECT_FALSE(tk.ready(0));
  EXPECT_EQ(tk.timing(0).fetch_ns, 0);  // not finished
  // The gate opens a while after this thread has started waiting, so the wait blocks.
  std::promise<void> waiting;
  int64_t opened = 0;
  std::thread opener([&] {
    waiting.get_future().wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    opened = now_ns();
    gated->open();
  });
  const int64_t before_wait = now_ns();
  waiting.set_value();
  tk.wait(0);
  const int64_t after_wait = now_ns();
  opener.join();
  const LayerTiming lt = tk.timing(0);
  // The rows cannot be in before the gate opened, nor after the wait returned.
  EXPECT_GE(lt.fetch_ns, opened - prefetched);
  EXPECT_LE(lt.fetch_ns, after_wait - before_prefetch);
  // The wait blocked, and only for as long as the call lasted.
  EXPECT_GT(lt.wait_ns, 0);
  EXPECT_LE(lt.wait_ns, after_wait - before_wait);
}

TEST(Prefetcher, DroppingATicketWhileItsFetchRunsIsSafe) {
  Tables tb;
  auto gated = std::make_shared<GatedStore>(*tb.file);
  Prefetcher pf(gated, {1, 64 * 1024, RowOutput::packed});
  {
    Ticket tk = pf.prefetch(1, {{0, ids_for(2000, 200, 3)}});
    gated->wait_entered(1);
  }                                    // released while its fetch is blocked inside the store
  EXPECT_GT(pf.staging_in_use(), 0u);  // still charged: the fetch writes into it
  auto later = std::async(std::launch::async, [&] {
    // Waits only for the released ticket's running fetch, which the gate lets finish.
    return pf.prefetch(2, {{0, ids_for(2000, 200, 4)}});
  });
  gated->open();
  Ticket t2 = later.get();
  EXPECT_NO_THROW(t2.wait(0));
}

TEST(Prefetcher, ShutdownResolvesQueuedFetchesAndTicketsOutliveIt) {
  Tables tb;
  auto gated = std::make_shared<GatedStore>(*tb.file);
  Ticket tk;
  {
    auto pf = std::make_unique<Prefetcher>(gated, PrefetchOptions{1, 1 << 20, RowOutput::packed});
    tk = pf->prefetch(9, {{0, {1}}, {1, {2}}, {1, {3}}});
    gated->wait_entered(1);  // the one worker holds layer 0 at the gate; 1 and 2 are queued
    auto closer = std::async(std::launch::async, [&] { pf.reset(); });
    // Only the shutdown can resolve the queued layers while the gate is shut; opening it first
    // would let the worker run them before the shutdown begins.
    for (size_t layer : {1u, 2u}) {
      try {
        tk.wait(layer);
        ADD_FAILURE() << "layer " << layer << " was fetched";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("shut down"), std::string::npos) << e.what();
      }
    }
    gated->open();
    closer.get();
  }
  EXPECT_NO_THROW(tk.wait(0));
}

TEST(Prefetcher, ManyThreadsManyStepsStress) {
  Tables tb;
  auto dram = std::shared_ptr<RowStore>(DramStore::load(*tb.file));
  Prefetcher pf(tb.file, {4, 8 << 20, RowOutput::f32});
  std::vector<Ticket> live;
  std::vector<float> want(50 * 64);
  for (int64_t step = 0; step < 40; ++step) {
    live.push_back(
        pf.prefetch(step, {{0, ids_for(2000, 50, step)}, {1, ids_for(1500, 50, step + 1000)}}));
    if (step % 7 == 3) live.front().cancel();
    if (live.size() > 3) {
      Ticket& t = live.front();
      for (size_t layer = 0; layer < 2; ++layer) {
        try {
          auto got = t.wait(layer).f32();
          dram->gather_f32(layer, ids_for(layer ? 1500 : 2000, 50, t.step() + (layer ? 1000 : 0)),
                           want.data());
          ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
        }
      }
      live.erase(live.begin());
    }
  }
}

}  // namespace
}  // namespace engram
