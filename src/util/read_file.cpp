// See read_file.h.
#include "util/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engram/error.h"

namespace engram {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(Errc::io, path, ": cannot open for reading (", std::strerror(errno), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(Errc::io, path, ": read failed");
  return ss.str();
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
