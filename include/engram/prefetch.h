// engram/prefetch.h: fetch one step's rows for every Engram layer while earlier layers compute.
//
// Row ids depend only on token ids, so at step entry the caller knows every row every Engram
// layer will need. prefetch() takes them all, starts every layer's fetch at once on worker
// threads (a FileStore then puts each layer's reads in flight together through io_uring), and
// returns a Ticket; a layer's consumer calls ticket.wait(layer) and blocks only until that
// layer's rows are in.
//
// Contracts:
//  - Staging is bounded: a step's rows are staged in memory charged to a byte budget. prefetch()
//    never blocks on tickets the caller still holds: if live tickets leave too little room it
//    throws Errc::invalid_argument (release a ticket first); it waits only for staging of
//    tickets already released whose reads are still finishing, which is bounded.
//  - Errors reach the waiter: a fetch that fails (I/O error, id out of range) makes wait() on
//    that layer throw the same engram::Error; other layers are unaffected. Never a hang: every
//    fetch finishes or fails, and shutdown resolves what was queued.
//  - Cancellation: ticket.cancel() or destroying the ticket skips fetches not yet started;
//    wait() on a skipped layer throws Errc::invalid_argument ("cancelled"). Fetches already
//    running finish into staging the ticket still owns, so nothing writes freed memory.
//  - Shutdown: ~Prefetcher cancels queued fetches, waits for running ones and joins its threads.
//    Tickets may outlive it; their finished layers stay readable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engram/store.h"

namespace engram {

enum class RowOutput { packed, f32, bf16 };

struct PrefetchOptions {
  unsigned threads = 2;                   // fetch workers (V4.1 has 2 Engram layers)
  uint64_t staging_bytes = 256ull << 20;  // budget for all live steps' staged rows
  RowOutput output = RowOutput::f32;
};

// One layer's part of a step: the table to read and the row ids (already offset, in range).
struct LayerRequest {
  size_t table = 0;
  std::vector<int64_t> ids;
};

// A layer's rows as staged: n rows of row_bytes each (packed bytes, fp32 or bf16 values).
struct StagedRows {
  const std::byte* data = nullptr;
  size_t n = 0;
  size_t row_bytes = 0;
  RowOutput output = RowOutput::f32;
  std::span<const float> f32() const;      // Errc::invalid_argument unless output == f32
  std::span<const uint16_t> bf16() const;  // likewise for bf16
};

struct LayerTiming {
  int64_t fetch_ns = 0;  // from prefetch() to the layer's rows being in
  int64_t wait_ns = 0;   // time wait() blocked for this layer
};

class Prefetcher;
struct TicketState;

class Ticket {
 public:
  Ticket() = default;
  Ticket(Ticket&&) noexcept;
  Ticket& operator=(Ticket&&) noexcept;
  ~Ticket();  // cancel() and give the staging back once running fetches are done

  int64_t step() const;
  size_t num_layers() const;  // the requests given to prefetch(), in order
  // Blocks until layer `i` (index into the requests) is in; throws its error, or
  // Errc::invalid_argument if it was cancelled. The view lives as long as this ticket.
  StagedRows wait(size_t i);
  bool ready(size_t i) const;  // finished (rows, error or cancelled) without blocking
  void cancel();
  LayerTiming timing(size_t i) const;

 private:
  friend class Prefetcher;
  explicit Ticket(std::shared_ptr<TicketState> s) : state_(std::move(s)) {}
  std::shared_ptr<TicketState> state_;
};

class Prefetcher {
 public:
  Prefetcher(std::shared_ptr<RowStore> store, const PrefetchOptions& options = {});
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Checks every table index and id (Errc::out_of_range naming layer, position and value) and
  // the staging budget (see above), then queues every layer's fetch and returns at once.
  Ticket prefetch(int64_t step, std::vector<LayerRequest> requests);

  uint64_t staging_in_use() const;  // bytes charged now, live and releasing tickets together
  RowStore& store() { return *store_; }

 private:
  struct Shared;
  std::shared_ptr<RowStore> store_;
  PrefetchOptions options_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace engram
