// Whole small files: reading one into memory (configs, tokenizer.json, ids JSON, checkpoint
// state) and replacing one atomically. Large data (tables, token files, corpora) is never read
// this way; it is mapped or streamed.
//
// Inputs come from users and may be anything a path can name: only regular files are read
// (a FIFO would block forever, /dev/zero never ends), and a whole-file read stops at a limit
// set per kind of input, so a wrong path fails at once with a message instead of hanging or
// filling memory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace engram {

// Whole-file read limits per kind of input. Each is far above any real file of its kind
// (DeepSeek-V3's tokenizer.json is 7.5 MiB; a config is a few KiB).
inline constexpr uint64_t kMaxConfigBytes = uint64_t{64} << 20;      // model/hash configs, state
inline constexpr uint64_t kMaxTokenizerBytes = uint64_t{512} << 20;  // tokenizer.json
inline constexpr uint64_t kMaxIdsBytes = uint64_t{1} << 30;          // ids JSON files
inline constexpr uint64_t kMaxTextBytes = uint64_t{1} << 30;         // text to encode
inline constexpr uint64_t kMaxReadBytes = uint64_t{16} << 30;        // anything else

struct ReadLimits {
  uint64_t max_bytes = kMaxReadBytes;
  const char* kind = "file";   // for messages: "<path>: ... the limit of N bytes for a <kind>"
  bool allow_special = false;  // also read FIFOs and devices (may block; still capped)
};

// "a FIFO", "a character device", "a directory", ... for an st_mode; "a regular file" too.
const char* file_type_name(unsigned mode);

// Opens `path` read-only for an input that must be a regular file, without blocking: stat
// first, open with O_NONBLOCK (so a FIFO without a writer cannot block the open), then fstat the
// descriptor (the path may have changed in between). Returns the descriptor (owned by the
// caller, O_CLOEXEC, blocking mode restored) and its size. Errc::io "<path>: cannot open for
// reading (<reason>)" or "<path>: is a FIFO, not a regular file".
int open_regular_file(const std::string& path, uint64_t* size);

// The file's bytes. Refuses what is not a regular file (unless limits.allow_special) and files
// larger than limits.max_bytes (Errc::io "<path>: 2147483648 bytes exceeds the limit of
// 1073741824 bytes for an ids file"); Errc::io "<path>: cannot open for reading (<reason>)" or
// "<path>: read failed (<reason>)" on error.
std::string read_file(const std::string& path, const ReadLimits& limits = {});

// Writes `bytes` to path + ".tmp", fsyncs it and renames it over `path`: readers see the old
// file or the new one, never a partial one. On failure (Errc::io naming the file and the reason)
// the temporary is removed and `path` is untouched.
void write_file_atomic(const std::string& path, std::string_view bytes);

// fsync of a file, or of a directory (after a rename into it). Errc::io on failure.
void fsync_path(const std::string& path, bool directory);

}  // namespace engram
