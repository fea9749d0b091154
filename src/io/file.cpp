// RAII file descriptors and mappings, and the exact-length pread every reader uses.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "engram/error.h"
#include "engram/safetensors.h"
#include "util/read_file.h"

namespace engram {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

UniqueFd UniqueFd::open(const std::string& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(Errc::io, path, ": cannot open: ", std::strerror(errno));
  return UniqueFd(fd);
}

int UniqueFd::release() noexcept {
  return std::exchange(fd_, -1);
}

void UniqueFd::reset(int fd) noexcept {
  // close() is not retried on EINTR: on Linux the descriptor is released either way.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

uint64_t file_size(int fd, const std::string& what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(Errc::io, what, ": fstat failed: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    fail(Errc::io, what, ": is ", file_type_name(st.st_mode), ", not a regular file");
  }
  return static_cast<uint64_t>(st.st_size);
}

void pread_full(int fd, std::span<std::byte> out, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(Errc::io, what, ": read of ", out.size(), " bytes at byte offset ", offset,
           " failed: ", std::strerror(errno));
    }
    if (got == 0) {
      fail(Errc::io, what, ": file ends at byte offset ", offset + done, ", expected ", out.size(),
           " bytes from byte offset ", offset);
    }
    done += static_cast<size_t>(got);
  }
}

Mapping Mapping::map_file(int fd, uint64_t offset, uint64_t length, const std::string& what,
                          bool populate) {
  Mapping m;
  if (length == 0) return m;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const uint64_t len = offset - start + length;
  if (len < length) fail(Errc::out_of_range, what, ": mapping length overflows");
  int flags = MAP_SHARED;
  if (populate) flags |= MAP_POPULATE;
  void* p =
      ::mmap(nullptr, static_cast<size_t>(len), PROT_READ, flags, fd, static_cast<off_t>(start));
  if (p == MAP_FAILED) {
    fail(Errc::io, what, ": mmap of ", length, " bytes at byte offset ", offset,
         " failed: ", std::strerror(errno));
  }
  m.base_ = p;
  m.base_len_ = static_cast<size_t>(len);
  m.data_ = static_cast<const std::byte*>(p) + (offset - start);
  m.size_ = length;
  return m;
}

Mapping::Mapping(Mapping&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      base_len_(std::exchange(o.base_len_, 0)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (base_) ::munmap(base_, base_len_);
    base_ = std::exchange(o.base_, nullptr);
    base_len_ = std::exchange(o.base_len_, 0);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (base_) ::munmap(base_, base_len_);
}

}  // namespace engram
