// See read_file.h.
#include "util/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engram/error.h"

namespace engram {

const char* file_type_name(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
  }
  return "not a regular file";
}

namespace {

// Fails unless `st` describes a regular file.
void require_regular(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    fail(Errc::io, path, ": is ", file_type_name(st.st_mode),
         ", not a regular file (engram reads inputs only from regular files)");
  }
}

[[noreturn]] void fail_too_large(const std::string& path, uint64_t size, const ReadLimits& l) {
  fail(Errc::io, path, ": ", size, " bytes exceeds the limit of ", l.max_bytes, " bytes for ",
       l.kind);
}

}  // namespace

int open_regular_file(const std::string& path, uint64_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    fail(Errc::io, path, ": cannot open for reading (", std::strerror(errno), ")");
  }
  require_regular(path, st);
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(Errc::io, path, ": cannot open for reading (", std::strerror(errno), ")");
  // The path may have been replaced between stat and open: what counts is the descriptor.
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(Errc::io, path, ": fstat failed (", std::strerror(err), ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    require_regular(path, st);
  }
  // Regular files ignore O_NONBLOCK, but the caller gets an ordinary descriptor.
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

std::string read_file(const std::string& path, const ReadLimits& limits) {
  int fd;
  uint64_t size = 0;
  if (limits.allow_special) {
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) fail(Errc::io, path, ": cannot open for reading (", std::strerror(errno), ")");
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = static_cast<uint64_t>(st.st_size);
  } else {
    fd = open_regular_file(path, &size);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (size > limits.max_bytes) fail_too_large(path, size, limits);
  // The size from fstat is a hint: the file may grow while read, and some regular files
  // (/proc, /sys) report 0. Reading stops one byte past the limit either way.
  std::string out;
  out.resize(static_cast<size_t>(std::min<uint64_t>(size, limits.max_bytes) + 1));
  size_t done = 0;
  for (;;) {
    if (done == out.size()) {
      if (done > limits.max_bytes) fail_too_large(path, done, limits);
      out.resize(static_cast<size_t>(
          std::min<uint64_t>(std::max<uint64_t>(2 * done, 4096), limits.max_bytes + 1)));
    }
    const ssize_t got = ::read(fd, out.data() + done, out.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(Errc::io, path, ": read failed (", std::strerror(errno), ")");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  if (done > limits.max_bytes) fail_too_large(path, done, limits);
  out.resize(done);
  return out;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(Errc::io, path, ": cannot open to sync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail(Errc::io, path, ": fsync failed: ", std::strerror(errno));
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const auto remove_tmp = [&] {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  };
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(Errc::io, tmp, ": cannot create (", std::strerror(errno), ")");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      remove_tmp();
      fail(Errc::io, tmp, ": write failed (disk full?)");
    }
  }
  try {
    fsync_path(tmp, false);
  } catch (...) {
    remove_tmp();
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    remove_tmp();
    fail(Errc::io, path, ": cannot rename ", tmp, " into place: ", ec.message());
  }
}

}  // namespace engram
