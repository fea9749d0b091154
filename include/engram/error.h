// engram/error.h: the one error type of engram's C++ API.
//
// Every C++ call that can fail on bad input or I/O throws engram::Error: a code plus a message
// that names what was wrong and where (file, tensor, byte offset, token position). Nothing
// returns a silent default. The C API (engram.h) turns these into error codes and messages;
// the Python module turns them into ValueError / OSError / IndexError.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace engram {

enum class Errc {
  invalid_argument = 1,  // a caller passed something that cannot be right (shape, option)
  parse = 2,             // malformed input file or text (JSON, safetensors header, ...)
  out_of_range = 3,      // an id, row or offset outside its valid range
  io = 4,                // the OS refused: missing file, short read, full disk
  unsupported = 5,       // well-formed but not handled (unknown tokenizer model type, dtype)
  mismatch = 6,          // two inputs disagree (config vs tokenizer, weights vs config)
  internal = 7,          // a bug in engram: please report it
};

const char* errc_name(Errc c);

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const { return code_; }

 private:
  Errc code_;
};

// str_cat("row ", 7, " of ", name): builds a message from any streamable values.
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// fail(Errc::parse, "tokenizer.json: ", what): throws engram::Error with the joined message.
template <typename... Args>
[[noreturn]] void fail(Errc code, Args&&... args) {
  throw Error(code, str_cat(std::forward<Args>(args)...));
}

}  // namespace engram
