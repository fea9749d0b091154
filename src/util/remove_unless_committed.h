// Outputs a command creates are removed again when the command fails: a guard names a path the
// command is about to make, and unless the command commits it, the path (file or folder, with
// everything inside) is removed when the guard goes out of scope, on success and on throw alike.
// A path that already existed is never removed: the guard only undoes what its command made.
#pragma once

#include <filesystem>
#include <string>

namespace engram {

class RemoveUnlessCommitted {
 public:
  RemoveUnlessCommitted() = default;
  // Guards `path` when it does not exist yet; an existing path is left alone whatever happens.
  explicit RemoveUnlessCommitted(std::filesystem::path path);
  RemoveUnlessCommitted(RemoveUnlessCommitted&& other) noexcept;
  RemoveUnlessCommitted& operator=(RemoveUnlessCommitted&& other) noexcept;
  RemoveUnlessCommitted(const RemoveUnlessCommitted&) = delete;
  RemoveUnlessCommitted& operator=(const RemoveUnlessCommitted&) = delete;
  ~RemoveUnlessCommitted();

  // The output is complete: keep it.
  void commit() { path_.clear(); }

 private:
  std::filesystem::path path_;  // empty: nothing to remove
};

// A guard for the topmost missing folder on the way to `path` (or `path` itself), so that a
// failure removes every folder made on the way to it, not only the last one.
RemoveUnlessCommitted guard_new_path(const std::filesystem::path& path);

// Creates folder `dir` and any missing parents (Errc::io naming `dir` on failure) and returns a
// guard for the topmost folder this call created, so a failure removes every folder it made.
RemoveUnlessCommitted create_folders_guarded(const std::filesystem::path& dir);

}  // namespace engram
