// Prefetcher: worker threads that run each layer's gather into a ticket's staging buffer, a
// byte budget for staging, and the per-layer state waiters block on. See engram/prefetch.h for
// the contracts; the comments here only explain how they are kept.
#include "engram/prefetch.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "engram/error.h"
#include "store/aligned.h"
#include "util/clock.h"

namespace engram {

namespace {

// Staging charged to live tickets (`live`) and to all tickets including released ones whose
// running fetches still write into their staging (`total`).
struct Budget {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t limit = 0;
  uint64_t live = 0;
  uint64_t total = 0;
};

}  // namespace

struct TicketState {
  enum class Status { pending, running, done, failed, cancelled };
  struct Layer {
    size_t table = 0;
    std::vector<int64_t> ids;
    size_t offset = 0;     // into staging
    size_t row_bytes = 0;  // staged bytes per row
    Status status = Status::pending;
    std::exception_ptr error;
    std::string cancel_reason;
    int64_t done_ns = 0;
    int64_t wait_ns = 0;
  };

  int64_t step = 0;
  RowOutput output = RowOutput::f32;
  std::shared_ptr<Budget> budget;
  uint64_t charge = 0;
  bool released = false;  // guarded by budget->mu
  store_detail::AlignedBuffer staging;
  int64_t start_ns = 0;
  std::vector<Layer> layers;
  std::atomic<bool> cancelled{false};
  mutable std::mutex mu;
  std::condition_variable cv;

  ~TicketState() {
    std::lock_guard<std::mutex> lock(budget->mu);
    budget->total -= charge;
    if (!released) budget->live -= charge;
    budget->cv.notify_all();
  }

  void resolve(size_t i, Status s, std::exception_ptr err = nullptr, std::string reason = {}) {
    {
      std::lock_guard<std::mutex> lock(mu);
      Layer& l = layers[i];
      l.status = s;
      l.error = std::move(err);
      l.cancel_reason = std::move(reason);
      l.done_ns = now_ns();
    }
    cv.notify_all();
  }
};

struct Prefetcher::Shared {
  struct Job {
    std::shared_ptr<TicketState> state;
    size_t layer;
  };
  std::shared_ptr<RowStore> store;
  std::shared_ptr<Budget> budget = std::make_shared<Budget>();
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool stop = false;
  std::vector<std::thread> threads;

  void run_worker() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;  // stop, and nothing left
        job = std::move(queue.front());
        queue.pop_front();
      }
      TicketState& s = *job.state;
      if (s.cancelled.load()) {
        s.resolve(job.layer, TicketState::Status::cancelled, nullptr, "cancelled");
        continue;
      }
      TicketState::Layer& l = s.layers[job.layer];
      {
        std::lock_guard<std::mutex> lock(s.mu);
        l.status = TicketState::Status::running;
      }
      try {
        std::byte* dst = s.staging.data() + l.offset;
        switch (s.output) {
          case RowOutput::packed:
            store->gather_packed(l.table, l.ids, dst);
            break;
          case RowOutput::f32:
            store->gather_f32(l.table, l.ids, reinterpret_cast<float*>(dst));
            break;
          case RowOutput::bf16:
            store->gather_bf16(l.table, l.ids, reinterpret_cast<uint16_t*>(dst));
            break;
        }
        s.resolve(job.layer, TicketState::Status::done);
      } catch (...) {
        s.resolve(job.layer, TicketState::Status::failed, std::current_exception());
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// StagedRows / Ticket

std::span<const float> StagedRows::f32() const {
  if (output != RowOutput::f32) fail(Errc::invalid_argument, "staged rows are not fp32");
  return {reinterpret_cast<const float*>(data), n * row_bytes / sizeof(float)};
}

std::span<const uint16_t> StagedRows::bf16() const {
  if (output != RowOutput::bf16) fail(Errc::invalid_argument, "staged rows are not bf16");
  return {reinterpret_cast<const uint16_t*>(data), n * row_bytes / sizeof(uint16_t)};
}

Ticket::Ticket(Ticket&&) noexcept = default;

Ticket& Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    Ticket old(std::move(*this));  // released as it goes out of scope
    state_ = std::move(o.state_);
  }
  return *this;
}

Ticket::~Ticket() {
  if (!state_) return;
  cancel();
  {
    std::lock_guard<std::mutex> lock(state_->budget->mu);
    state_->released = true;
    state_->budget->live -= state_->charge;
    state_->budget->cv.notify_all();
  }
  state_.reset();  // the staging goes when the last running fetch lets go
}

namespace {
TicketState& need(const std::shared_ptr<TicketState>& s) {
  if (!s) fail(Errc::invalid_argument, "empty ticket");
  return *s;
}
}  // namespace

int64_t Ticket::step() const {
  return need(state_).step;
}
size_t Ticket::num_layers() const {
  return need(state_).layers.size();
}

void Ticket::cancel() {
  need(state_).cancelled.store(true);
}

bool Ticket::ready(size_t i) const {
  TicketState& s = need(state_);
  if (i >= s.layers.size()) fail(Errc::out_of_range, "ticket has no layer ", i);
  std::lock_guard<std::mutex> lock(s.mu);
  auto st = s.layers[i].status;
  return st != TicketState::Status::pending && st != TicketState::Status::running;
}

StagedRows Ticket::wait(size_t i) {
  TicketState& s = need(state_);
  if (i >= s.layers.size())
    fail(Errc::out_of_range, "step ", s.step, ": ticket has ", s.layers.size(), " layers, asked ",
         i);
  TicketState::Layer& l = s.layers[i];
  const int64_t t0 = now_ns();
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&] {
    return l.status != TicketState::Status::pending && l.status != TicketState::Status::running;
  });
  l.wait_ns += now_ns() - t0;
  if (l.status == TicketState::Status::failed) std::rethrow_exception(l.error);
  if (l.status == TicketState::Status::cancelled)
    fail(Errc::invalid_argument, "step ", s.step, ": fetch of layer ", i, " (table ", l.table,
         ") was ", l.cancel_reason);
  return StagedRows{s.staging.data() + l.offset, l.ids.size(), l.row_bytes, s.output};
}

LayerTiming Ticket::timing(size_t i) const {
  TicketState& s = need(state_);
  if (i >= s.layers.size()) fail(Errc::out_of_range, "ticket has no layer ", i);
  std::lock_guard<std::mutex> lock(s.mu);
  const auto& l = s.layers[i];
  return {l.done_ns ? l.done_ns - s.start_ns : 0, l.wait_ns};
}

// ---------------------------------------------------------------------------------------------
// Prefetcher

Prefetcher::Prefetcher(std::shared_ptr<RowStore> store, const PrefetchOptions& options)
    : store_(std::move(store)), options_(options), shared_(std::make_shared<Shared>()) {
  if (!store_) fail(Errc::invalid_argument, "Prefetcher: no store");
  if (options_.threads == 0 || options_.threads > 256)
    fail(Errc::invalid_argument, "Prefetcher: threads must be in 1..256, got ", options_.threads);
  shared_->store = store_;
  shared_->budget->limit = options_.staging_bytes;
  for (unsigned i = 0; i < options_.threads; ++i)
    shared_->threads.emplace_back([s = shared_.get()] { s->run_worker(); });
}

Prefetcher::~Prefetcher() {
  std::deque<Shared::Job> orphans;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
    orphans.swap(shared_->queue);
  }
  shared_->cv.notify_all();
  for (auto& j : orphans)
    j.state->resolve(j.layer, TicketState::Status::cancelled, nullptr,
                     "cancelled: the prefetcher shut down");
  for (auto& t : shared_->threads) t.join();
}

uint64_t Prefetcher::staging_in_use() const {
  std::lock_guard<std::mutex> lock(shared_->budget->mu);
  return shared_->budget->total;
}

Ticket Prefetcher::prefetch(int64_t step, std::vector<LayerRequest> requests) {
  auto state = std::make_shared<TicketState>();
  state->step = step;
  state->output = options_.output;
  state->budget = shared_->budget;
  size_t total = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    LayerRequest& r = requests[i];
    const TableDesc& d = store_->table(r.table);
    for (size_t k = 0; k < r.ids.size(); ++k)
      if (r.ids[k] < 0 || r.ids[k] >= d.rows)
        fail(Errc::out_of_range, "step ", step, " layer ", i, " (table ", d.name, "): row id ",
             r.ids[k], " at position ", k, " is outside [0, ", d.rows, ")");
    TicketState::Layer l;
    l.table = r.table;
    l.ids = std::move(r.ids);
    switch (options_.output) {
      case RowOutput::packed:
        l.row_bytes = d.row_bytes();
        break;
      case RowOutput::f32:
        l.row_bytes = d.format.width * sizeof(float);
        break;
      case RowOutput::bf16:
        l.row_bytes = d.format.width * sizeof(uint16_t);
        break;
    }
    l.offset = total;
    total += (l.ids.size() * l.row_bytes + 63) / 64 * 64;
    state->layers.push_back(std::move(l));
  }
  Budget& b = *shared_->budget;
  {
    std::unique_lock<std::mutex> lock(b.mu);
    if (total > b.limit)
      fail(Errc::invalid_argument, "step ", step, ": ", total,
           " bytes of staged rows exceed the whole staging budget of ", b.limit, " bytes");
    if (b.live + total > b.limit)
      fail(Errc::invalid_argument, "step ", step, ": staging budget exhausted (", b.live, " of ",
           b.limit, " bytes held by live tickets, ", total,
           " more needed); release a ticket first");
    // Only released tickets with fetches still finishing stand in the way now: bounded.
    b.cv.wait(lock, [&] { return b.total + total <= b.limit; });
    b.live += total;
    b.total += total;
    state->charge = total;
  }
  // From here the state's destructor gives the charge back, whatever happens.
  state->staging.resize(total, 64);
  state->start_ns = now_ns();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->stop) fail(Errc::invalid_argument, "prefetch after shutdown");
    for (size_t i = 0; i < state->layers.size(); ++i) shared_->queue.push_back({state, i});
  }
  shared_->cv.notify_all();
  return Ticket(std::move(state));
}

}  // namespace engram
