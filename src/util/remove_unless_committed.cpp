// remove_unless_committed.cpp: the guard of remove_unless_committed.h.
#include "util/remove_unless_committed.h"

#include <utility>

#include "engram/error.h"

namespace engram {

namespace fs = std::filesystem;

RemoveUnlessCommitted::RemoveUnlessCommitted(fs::path path) {
  std::error_code ec;
  // symlink_status: a dangling link exists too, and is not ours to remove.
  if (!fs::exists(fs::symlink_status(path, ec))) path_ = std::move(path);
}

RemoveUnlessCommitted::RemoveUnlessCommitted(RemoveUnlessCommitted&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

RemoveUnlessCommitted& RemoveUnlessCommitted::operator=(RemoveUnlessCommitted&& other) noexcept {
  if (this != &other) {
    RemoveUnlessCommitted old(std::move(*this));
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

RemoveUnlessCommitted::~RemoveUnlessCommitted() {
  if (path_.empty()) return;
  std::error_code ec;  // best effort: a destructor must not throw, and the original error matters
  fs::remove_all(path_, ec);
}

RemoveUnlessCommitted guard_new_path(const fs::path& path) {
  fs::path top;
  std::error_code ec;
  for (fs::path p = path; !p.empty(); p = p.parent_path()) {
    if (fs::exists(fs::symlink_status(p, ec))) break;
    top = p;
    if (p == p.parent_path()) break;
  }
  return top.empty() ? RemoveUnlessCommitted() : RemoveUnlessCommitted(top);
}

RemoveUnlessCommitted create_folders_guarded(const fs::path& dir) {
  RemoveUnlessCommitted guard = guard_new_path(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(Errc::io, dir.string(), ": cannot create folder: ", ec.message());
  return guard;
}

}  // namespace engram
