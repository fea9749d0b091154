// fuzz_token_file.cpp: the token file header parser and payload check on arbitrary bytes.
// Any input must either parse or throw engram::Error; a crash, hang or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "engram/error.h"
#include "engram/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    const engram::TokenFileHeader h = engram::parse_token_file_header(bytes, "fuzz", size);
    engram::check_token_payload(h, bytes.subspan(engram::kTokenFileHeaderBytes), "fuzz");
  } catch (const engram::Error&) {
  }
  // Without the size check: a header that announces more tokens than there are bytes.
  try {
    const engram::TokenFileHeader h = engram::parse_token_file_header(bytes, "fuzz");
    if (size >= engram::kTokenFileHeaderBytes) {
      engram::check_token_payload(h, bytes.subspan(engram::kTokenFileHeaderBytes), "fuzz");
    }
  } catch (const engram::Error&) {
  }
  return 0;
}
