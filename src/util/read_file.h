// Reading a whole (small) file into memory: configs, tokenizer.json, ids JSON, checkpoint state.
// Large data (tables, token files, corpora) is never read this way; it is mapped or streamed.
#pragma once

#include <string>

namespace engram {

// The file's bytes. Errc::io "<path>: cannot open for reading (<reason>)" or "<path>: read
// failed" on error.
std::string read_file(const std::string& path);

}  // namespace engram
