// Whole small files: reading one into memory (configs, tokenizer.json, ids JSON, checkpoint
// state) and replacing one atomically. Large data (tables, token files, corpora) is never read
// this way; it is mapped or streamed.
#pragma once

#include <string>
#include <string_view>

namespace engram {

// The file's bytes. Errc::io "<path>: cannot open for reading (<reason>)" or "<path>: read
// failed" on error.
std::string read_file(const std::string& path);

// Writes `bytes` to path + ".tmp", fsyncs it and renames it over `path`: readers see the old
// file or the new one, never a partial one. On failure (Errc::io naming the file and the reason)
// the temporary is removed and `path` is untouched.
void write_file_atomic(const std::string& path, std::string_view bytes);

// fsync of a file, or of a directory (after a rename into it). Errc::io on failure.
void fsync_path(const std::string& path, bool directory);

}  // namespace engram
