// tokenizer_bench: encode throughput of engram's tokenizer on the Brown corpus (tags stripped),
// decode of the result, and the time to build the compression lookup.
//   usage: tokenizer_bench [TOKENIZER.json] [BROWN_DIR]
//   (defaults: assets/deepseek_v3/tokenizer.json, assets/brown, relative to the current dir)
// Prints one line per measurement. Single-threaded; the first encode fills the word cache, so
// the second pass is reported separately.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "util/clock.h"
#include "util/cpu_info.h"

namespace {

// A Brown file with "word/tag" turned into "word"; white space is kept as it is.
std::string strip_tags(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t end = i;
    while (end < raw.size() && raw[end] != ' ' && raw[end] != '\n' && raw[end] != '\t' &&
           raw[end] != '\r')
      ++end;
    const std::string_view word(raw.data() + i, end - i);
    const size_t slash = word.rfind('/');
    out.append(slash == std::string_view::npos ? word : word.substr(0, slash));
    i = end;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("%s\n", engram::cpu_info_line().c_str());  // figures are per CPU and ISA
  const std::string tok_path = argc > 1 ? argv[1] : "assets/deepseek_v3/tokenizer.json";
  const std::string brown = argc > 2 ? argv[2] : "assets/brown";
  try {
    std::vector<std::string> texts;
    size_t bytes = 0;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(brown)) {
      const std::string name = e.path().filename().string();
      if (name.size() == 4 && name[0] == 'c') files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      texts.push_back(strip_tags(ss.str()));
      bytes += texts.back().size();
    }
    auto t0 = std::chrono::steady_clock::now();
    const engram::Tokenizer tok = engram::Tokenizer::from_file(tok_path);
    std::printf("load tokenizer: %.3f s\n", engram::seconds_since(t0));
    std::vector<std::vector<int32_t>> all_ids(texts.size());
    for (int pass = 0; pass < 2; ++pass) {
      t0 = std::chrono::steady_clock::now();
      size_t tokens = 0;
      for (size_t i = 0; i < texts.size(); ++i) {
        all_ids[i] = tok.encode(texts[i], true);
        tokens += all_ids[i].size();
      }
      const double s = engram::seconds_since(t0);
      std::printf(
          "encode brown (%zu files, %.2f MB) pass %d: %.3f s, %zu tokens, %.2f MB/s, %.0f "
          "tokens/s\n",
          texts.size(), bytes / 1e6, pass + 1, s, tokens, bytes / 1e6 / s, tokens / s);
    }
    t0 = std::chrono::steady_clock::now();
    size_t out_bytes = 0;
    for (const auto& ids : all_ids) out_bytes += tok.decode(ids, false).size();
    std::printf("decode brown: %.3f s (%zu bytes)\n", engram::seconds_since(t0), out_bytes);
    t0 = std::chrono::steady_clock::now();
    const engram::TokenCompressor c = engram::TokenCompressor::from_tokenizer(tok);
    std::printf("build compression lookup: %.3f s, %lld -> %lld ids\n", engram::seconds_since(t0),
                static_cast<long long>(c.vocab_size()),
                static_cast<long long>(c.compressed_vocab_size()));
  } catch (const engram::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
