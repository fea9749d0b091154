// Batched random reads: ReadFile (buffered + O_DIRECT descriptors), the pread reference engine
// and the io_uring engine. Both engines share one rule set for a read attempt's result (see
// Attempt below) so they report the same errors for the same faults.
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "engram/error.h"
#include "store/aligned.h"
#include "store/io_engine.h"

namespace engram {

namespace {

constexpr int kMaxRetries = 64;  // EINTR/EAGAIN repeats of one request before giving up

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ReadFile

ReadFile::ReadFile(const std::string& path, bool try_direct)
    : path_(path), direct_ok_(std::make_shared<std::atomic<bool>>(false)) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(Errc::io, path, ": cannot open for reading: ", errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    int err = errno;
    ::close(fd_);
    fail(Errc::io, path, ": fstat failed: ", errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail(Errc::io, path, ": not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (try_direct) {
    direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    // EINVAL: the filesystem has no O_DIRECT (tmpfs, some overlayfs); buffered reads only.
    direct_ok_->store(direct_fd_ >= 0);
  }
}

ReadFile::~ReadFile() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

ReadFile::ReadFile(ReadFile&& o) noexcept
    : path_(std::move(o.path_)),
      size_(o.size_),
      fd_(std::exchange(o.fd_, -1)),
      direct_fd_(std::exchange(o.direct_fd_, -1)),
      direct_ok_(std::move(o.direct_ok_)) {}

ReadFile& ReadFile::operator=(ReadFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
    path_ = std::move(o.path_);
    size_ = o.size_;
    fd_ = std::exchange(o.fd_, -1);
    direct_fd_ = std::exchange(o.direct_fd_, -1);
    direct_ok_ = std::move(o.direct_ok_);
  }
  return *this;
}

void ReadFile::disable_direct() const {
  direct_ok_->store(false);
}
bool ReadFile::direct() const {
  return direct_fd_ >= 0 && direct_ok_->load();
}

// ---------------------------------------------------------------------------------------------
// One request's progress, shared by both engines.

namespace {

struct Attempt {
  const ReadRequest* req = nullptr;
  uint64_t done = 0;  // bytes of the request delivered so far
  int retries = 0;
  int64_t cap = 0;      // > 0: the fault hook limited this attempt to `cap` bytes
  bool direct = false;  // this attempt goes through O_DIRECT and a bounce buffer
  uint64_t dio_offset = 0;
  uint32_t dio_length = 0;
  uint32_t dio_head = 0;  // bytes to skip at the start of the bounce buffer

  uint64_t offset() const { return req->offset + done; }
  uint32_t remaining() const { return static_cast<uint32_t>(req->length - done); }
};

enum class Outcome { done, again, failed };

// Applies one attempt's result `res` (bytes into the request for buffered reads, bytes into the
// aligned span for O_DIRECT, or a negative errno). Copies bounce data into the caller's buffer.
// Returns whether the request is complete, needs another attempt, or failed (then `error` holds
// the message).
Outcome apply_result(Attempt& a, int64_t res, const std::byte* bounce, IoStats& stats,
                     std::string& error) {
  const ReadRequest& r = *a.req;
  if (res < 0) {
    int err = static_cast<int>(-res);
    if ((err == EINTR || err == EAGAIN) && a.retries < kMaxRetries) {
      ++a.retries;
      ++stats.retries;
      return Outcome::again;
    }
    if (err == EINVAL && a.direct) {
      // The filesystem accepted O_DIRECT at open but refuses this read: go buffered for good.
      r.file->disable_direct();
      return Outcome::again;
    }
    error = str_cat("read of ", a.remaining(), " bytes at offset ", a.offset(),
                    " failed: ", errno_text(err));
    return Outcome::failed;
  }
  uint64_t got = static_cast<uint64_t>(res);
  if (a.direct) {
    got = got > a.dio_head ? std::min<uint64_t>(got - a.dio_head, a.remaining()) : 0;
  }
  if (a.cap > 0) got = std::min<uint64_t>(got, static_cast<uint64_t>(a.cap));
  if (got == 0) {
    error = str_cat("unexpected end of file reading ", a.remaining(), " bytes at offset ",
                    a.offset(), " (file size ", r.file->size(), ")");
    return Outcome::failed;
  }
  if (a.direct) std::memcpy(r.dest + a.done, bounce + a.dio_head, got);
  a.done += got;
  stats.bytes += got;
  if (a.done < r.length) {
    ++stats.short_reads;
    return Outcome::again;
  }
  ++stats.requests;
  return Outcome::done;
}

constexpr uint32_t kMaxRequestBytes = 1u << 30;

void check_request(const ReadRequest& r) {
  if (!r.file || (!r.dest && r.length > 0))
    fail(Errc::invalid_argument, "IoEngine::read: request without a file or a destination");
  if (r.length > kMaxRequestBytes)
    fail(Errc::invalid_argument, r.file->path(), ": read of ", r.length, " bytes at offset ",
         r.offset, " exceeds the per-request limit of ", kMaxRequestBytes, " bytes");
}

// ---------------------------------------------------------------------------------------------
// pread engine

class PreadEngine final : public IoEngine {
 public:
  const char* name() const override { return "pread"; }

  void read(std::span<const ReadRequest> reqs) override {
    for (const ReadRequest& r : reqs) {
      check_request(r);
      if (r.length == 0) {
        ++stats_.requests;
        continue;
      }
      Attempt a;
      a.req = &r;
      for (;;) {
        int64_t res = 0;
        a.cap = 0;
        int64_t fault = fault_hook_ ? fault_hook_(r, a.offset(), a.remaining()) : 0;
        if (fault < 0) {
          res = fault;
        } else {
          a.cap = fault;
          ssize_t n =
              ::pread(r.file->fd(), r.dest + a.done, a.remaining(), static_cast<off_t>(a.offset()));
          ++stats_.reads;
          res = n < 0 ? -errno : n;
        }
        std::string error;
        Outcome o = apply_result(a, res, nullptr, stats_, error);
        if (o == Outcome::done) break;
        if (o == Outcome::failed) fail(Errc::io, r.file->path(), ": ", error);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// io_uring engine

class UringEngine final : public IoEngine {
 public:
  explicit UringEngine(const UringOptions& o) : opt_(o) {
    if (opt_.queue_depth == 0 || opt_.queue_depth > 4096)
      fail(Errc::invalid_argument, "io_uring queue depth must be in 1..4096, got ",
           opt_.queue_depth);
    int rc = io_uring_queue_init(opt_.queue_depth, &ring_, 0);
    if (rc < 0)
      fail(Errc::io, "io_uring_queue_init(", opt_.queue_depth, ") failed: ", errno_text(-rc));
    slots_.resize(opt_.queue_depth);
    bounce_.resize(opt_.queue_depth);
  }
  ~UringEngine() override { io_uring_queue_exit(&ring_); }

  const char* name() const override { return "io_uring"; }

  void read(std::span<const ReadRequest> reqs) override {
    if (broken_) fail(Errc::io, "io_uring engine unusable after an earlier ring failure");
    for (const ReadRequest& r : reqs) check_request(r);
    const unsigned qd = opt_.queue_depth;
    std::vector<unsigned> ready;  // slots holding an attempt to submit
    std::vector<unsigned> free_slots;
    for (unsigned i = qd; i-- > 0;) free_slots.push_back(i);
    size_t next = 0;
    unsigned inflight = 0;
    std::string first_error;  // set once; then nothing new is submitted and in-flight reads drain
    const ReadRequest* first_error_req = nullptr;

    auto record_failure = [&](unsigned slot, const std::string& what) {
      if (first_error_req == nullptr) {
        first_error_req = slots_[slot].req;
        first_error = what;
      }
      free_slots.push_back(slot);
    };
    // Handles a finished attempt in `slot` (res: kernel result or injected error).
    auto complete = [&](unsigned slot, int64_t res) {
      Attempt& a = slots_[slot];
      std::string error;
      Outcome o = apply_result(a, res, bounce_[slot].data(), stats_, error);
      if (o == Outcome::done)
        free_slots.push_back(slot);
      else if (o == Outcome::again)
        ready.push_back(slot);
      else
        record_failure(slot, error);
    };

    for (;;) {
      // Fill the ring: continuations first, then new requests.
      while (first_error_req == nullptr && inflight < qd) {
        unsigned slot;
        if (!ready.empty()) {
          slot = ready.back();
          ready.pop_back();
        } else if (next < reqs.size() && !free_slots.empty()) {
          const ReadRequest& r = reqs[next++];
          if (r.length == 0) {
            ++stats_.requests;
            continue;
          }
          slot = free_slots.back();
          free_slots.pop_back();
          slots_[slot] = Attempt{};
          slots_[slot].req = &r;
        } else {
          break;
        }
        Attempt& a = slots_[slot];
        int64_t fault = fault_hook_ ? fault_hook_(*a.req, a.offset(), a.remaining()) : 0;
        if (fault < 0) {
          a.direct = false;
          complete(slot, fault);
          continue;
        }
        a.cap = fault;
        prepare(slot);
        ++inflight;
      }
      if (inflight == 0) {
        if (first_error_req != nullptr || (ready.empty() && next >= reqs.size())) break;
        continue;  // continuations from injected faults are waiting in `ready`
      }
      int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        // The ring itself is broken. Reads already in the kernel may still write into caller
        // memory, so this engine must not be used again.
        broken_ = true;
        fail(Errc::io, "io_uring_submit_and_wait failed with ", inflight,
             " reads in flight: ", errno_text(-rc));
      }
      io_uring_cqe* cqe = nullptr;
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        unsigned slot = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
        int64_t res = cqe->res;
        --inflight;
        complete(slot, res);
      }
      io_uring_cq_advance(&ring_, seen);
    }
    if (first_error_req != nullptr)
      fail(Errc::io, first_error_req->file->path(), ": ", first_error);
  }

 private:
  void prepare(unsigned slot) {
    Attempt& a = slots_[slot];
    const ReadRequest& r = *a.req;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      // The ring has qd entries and at most qd are in flight, so this cannot happen.
      fail(Errc::internal, "io_uring: no submission entry free");
    }
    a.direct = opt_.direct && r.file->direct();
    ++stats_.reads;
    if (a.direct) {
      constexpr uint64_t A = ReadFile::kDirectAlign;
      uint64_t start = a.offset() / A * A;
      uint64_t end = (a.offset() + a.remaining() + A - 1) / A * A;
      a.dio_offset = start;
      a.dio_length = static_cast<uint32_t>(end - start);
      a.dio_head = static_cast<uint32_t>(a.offset() - start);
      if (bounce_[slot].size() < a.dio_length) bounce_[slot].resize(a.dio_length, A);
      ++stats_.direct_reads;
      io_uring_prep_read(sqe, r.file->direct_fd(), bounce_[slot].data(), a.dio_length,
                         a.dio_offset);
    } else {
      io_uring_prep_read(sqe, r.file->fd(), r.dest + a.done, a.remaining(), a.offset());
    }
    io_uring_sqe_set_data64(sqe, slot);
  }

  UringOptions opt_;
  io_uring ring_{};
  std::vector<Attempt> slots_;
  std::vector<store_detail::AlignedBuffer> bounce_;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<IoEngine> make_pread_engine() {
  return std::make_unique<PreadEngine>();
}

std::unique_ptr<IoEngine> make_uring_engine(const UringOptions& options) {
  return std::make_unique<UringEngine>(options);
}

bool uring_available() {
  static const bool ok = [] {
    io_uring ring{};
    if (io_uring_queue_init(2, &ring, 0) < 0) return false;
    io_uring_queue_exit(&ring);
    return true;
  }();
  return ok;
}

std::unique_ptr<IoEngine> make_default_engine(const UringOptions& options) {
  if (uring_available()) return make_uring_engine(options);
  return make_pread_engine();
}

}  // namespace engram
