// store/io_engine.h: batched random reads from files, the bottom of the File/SSD tier.
//
// An IoEngine reads many small (offset, length) pieces of already-open files into caller memory
// and returns when every piece is done, or throws. Two engines: io_uring (liburing) with O_DIRECT
// through aligned bounce buffers, and a plain pread loop (the fallback and the reference the
// io_uring engine is tested against). Neither maps whole files. An engine is not thread-safe:
// use one per thread (FileStore keeps a pool).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "engram/store.h"  // IoStats, FileStore

namespace engram {

// A file opened for random reads: a buffered descriptor always, plus an O_DIRECT one when the
// filesystem accepts it (tmpfs and overlayfs refuse it; then every read is buffered).
class ReadFile {
 public:
  static constexpr uint32_t kDirectAlign =
      4096;  // offset, length and buffer alignment for O_DIRECT

  // Throws Errc::io naming the path when the file cannot be opened or is not a regular file.
  explicit ReadFile(const std::string& path, bool try_direct = true);
  ~ReadFile();
  ReadFile(ReadFile&& other) noexcept;
  ReadFile& operator=(ReadFile&& other) noexcept;
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // bytes, at open time
  int fd() const { return fd_; }
  int direct_fd() const { return direct_fd_; }  // -1 when O_DIRECT is off for this file
  // Called by an engine when the kernel refuses an O_DIRECT read (EINVAL): later reads of this
  // file go through the buffered descriptor. Safe to call from several threads.
  void disable_direct() const;
  bool direct() const;

 private:
  std::string path_;
  uint64_t size_ = 0;
  int fd_ = -1;
  int direct_fd_ = -1;
  mutable std::shared_ptr<std::atomic<bool>> direct_ok_;
};

// One piece to read: `length` bytes of `file` at byte `offset`, into `dest` (any alignment).
struct ReadRequest {
  const ReadFile* file = nullptr;
  uint64_t offset = 0;
  uint32_t length = 0;
  std::byte* dest = nullptr;
};

// Fault injection for tests. Called before every read attempt of a request (retries and the
// rest of a short read included) with the attempt's file offset and length. Return 0 to do the
// read, a negative errno to make the attempt fail with that error without touching the file, or
// a positive count below `length` to let the attempt deliver only that many bytes.
using IoFaultHook =
    std::function<int64_t(const ReadRequest& req, uint64_t offset, uint32_t length)>;

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  virtual const char* name() const = 0;

  // Reads every request completely. Short reads are continued, EINTR/EAGAIN retried (a bounded
  // number of times). On failure throws engram::Error(Errc::io) naming the file, the byte offset
  // and the OS error of the first failed request; when it throws, no read is still in flight, so
  // nothing writes into caller memory afterwards. A request whose range passes the end of its
  // file fails with "unexpected end of file".
  virtual void read(std::span<const ReadRequest> reqs) = 0;

  void set_fault_hook(IoFaultHook hook) { fault_hook_ = std::move(hook); }
  const IoStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  IoFaultHook fault_hook_;
  IoStats stats_;
};

// The reference engine: one pread at a time, buffered descriptors only.
std::unique_ptr<IoEngine> make_pread_engine();

struct UringOptions {
  unsigned queue_depth = 64;  // reads in flight at once
  bool direct = true;         // use O_DIRECT where the file allows it
};
// Throws Errc::io when io_uring cannot be set up (old kernel, seccomp); see uring_available().
std::unique_ptr<IoEngine> make_uring_engine(const UringOptions& options = {});
// True when this process can create an io_uring instance (probed once, cached).
bool uring_available();
// io_uring when available, pread otherwise.
std::unique_ptr<IoEngine> make_default_engine(const UringOptions& options = {});

// Fault injection for tests: installs `hook` on every engine `store` uses, now and later (null
// removes it).
void set_fault_hook(FileStore& store, IoFaultHook hook);

}  // namespace engram
