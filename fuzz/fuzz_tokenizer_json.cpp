// Fuzz target for the tokenizer.json loader and the encode/decode pipeline. Input: a
// tokenizer.json document, optionally followed by a NUL byte and a sample text (at most 256
// bytes are used). When the loader accepts the document, the text is encoded (with and without
// special tokens), the ids are decoded, and a compression lookup is built when the vocabulary
// is small. engram::Error is the expected outcome of bad input; anything else (a crash, a
// sanitizer report, another exception type, a hang) is a bug. Inputs over 1 MiB are skipped
// to keep memory bounded; smaller ones must be reachable, as deeply nested documents are only
// dangerous when large (scripts/fuzz.sh runs this target with -max_len=1048576).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string_view doc = all.substr(0, nul);
  std::string_view sample =
      nul == std::string_view::npos ? std::string_view("Hello world 123 <s>") : all.substr(nul + 1);
  if (sample.size() > 256) sample = sample.substr(0, 256);
  try {
    const engram::Tokenizer tok = engram::Tokenizer::from_json(doc, "fuzz.json");
    for (const bool special : {true, false}) {
      try {
        const std::vector<int32_t> ids = tok.encode(sample, special);
        (void)tok.decode(ids, false);
        (void)tok.decode(ids, true);
      } catch (const engram::Error&) {
      }
    }
    if (tok.vocab_size() <= 4096) {
      const engram::TokenCompressor c = engram::TokenCompressor::from_tokenizer(tok);
      (void)c.compressed_vocab_size();
    }
  } catch (const engram::Error&) {
  }
  return 0;
}
