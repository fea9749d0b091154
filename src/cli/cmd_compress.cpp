// cmd_compress.cpp: `engram compress`: builds the tokenizer-compression lookup (DESIGN.md 2.1)
// and writes {"vocab_size": N, "compressed_vocab_size": M, "lookup": [N ints]}; prints M.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engram/compressor.h"
#include "engram/error.h"
#include "util/read_file.h"

namespace engram::cli {
namespace {

struct CompressOptions {
  std::string tokenizer, output;
};

void run_compress(const CompressOptions& o) {
  const TokenCompressor c = TokenCompressor::from_tokenizer_file(o.tokenizer);
  std::string s = "{\"vocab_size\": " + std::to_string(c.vocab_size()) +
                  ", \"compressed_vocab_size\": " + std::to_string(c.compressed_vocab_size()) +
                  ", \"lookup\": [";
  for (size_t i = 0; i < c.lookup().size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(c.lookup()[i]);
  }
  s += "]}\n";
  write_file_atomic(o.output, s);  // a failed write leaves no partial file behind
  std::printf("%lld\n", static_cast<long long>(c.compressed_vocab_size()));
}

}  // namespace

void add_compress_command(CLI::App& app) {
  auto o = std::make_shared<CompressOptions>();
  CLI::App* c =
      app.add_subcommand("compress", "Build the compressed-vocabulary lookup of a tokenizer");
  c->add_option("--tokenizer", o->tokenizer, "tokenizer.json (Hugging Face format)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--output", o->output, "JSON file to write")->required();
  c->callback([o] { run_compress(*o); });
}

}  // namespace engram::cli
