// Names of error codes, for messages and the C API.
#include "engram/error.h"

namespace engram {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::parse: return "parse error";
    case Errc::out_of_range: return "out of range";
    case Errc::io: return "I/O error";
    case Errc::unsupported: return "unsupported";
    case Errc::mismatch: return "mismatch";
    case Errc::internal: return "internal error";
  }
  return "unknown error";
}

}  // namespace engram
