// cmd_hash.cpp: `engram hash`: n-gram hash ids of token ids (DESIGN.md 2.2-2.3).
//   engram hash --config CFG.json --tokenizer tokenizer.json --input IDS.json --output OUT.json
// IDS.json: {"input_ids": [B][T], "dead_mask": [B][T] (optional)} (text/ids_json.h).
// OUT.json: {"hash_ids": {"<layer id>": [B][T][columns]}}: per-column values before the column
// offsets, as the demo's NgramHashMapping.hash() returns them (--rows adds the offsets).
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "text/ids_json.h"
#include "util/read_file.h"

namespace engram::cli {
namespace {

struct HashOptions {
  std::string config, tokenizer, input, output;
  bool rows = false;
  int threads = 0;
};

void run_hash(const HashOptions& o) {
  EngramConfig config = EngramConfig::from_file(o.config);
  const TokenCompressor comp = TokenCompressor::from_tokenizer_file(o.tokenizer);
  config.check_compressed_vocab_size(comp.compressed_vocab_size(), o.tokenizer);
  NgramHasher hasher(std::move(config), comp.lookup(), comp.compressed_vocab_size());
  hasher.set_num_threads(o.threads);

  // Ids are checked by the hasher under the rule all front ends share (util/token_ids.h): live
  // ids must be < vocab; negative ids are padding and pass, as in the demo.
  const IdsBatch batch = read_ids_json(o.input, IdsLimits{-1, /*allow_negative=*/true});
  const int64_t B = batch.batch, T = batch.length, C = hasher.num_columns();
  std::span<const uint8_t> dead;
  if (batch.has_dead_mask) dead = batch.dead_mask;
  std::vector<int64_t> compressed(batch.ids.size());
  try {
    hasher.compress(batch.ids, B, T, compressed, dead);
  } catch (const Error& e) {
    fail(e.code(), o.input, ": ", e.what());
  }

  std::string text = "{\"hash_ids\": {";
  std::vector<int64_t> out(static_cast<size_t>(B * T * C));
  for (size_t li = 0; li < hasher.layer_ids().size(); ++li) {
    const int64_t layer = hasher.layer_ids()[li];
    hasher.hash_compressed(layer, compressed, B, T, out, dead, o.rows);
    text += (li ? ", \"" : "\"") + std::to_string(layer) + "\": [";
    for (int64_t b = 0; b < B; ++b) {
      text += b ? ",\n  [" : "\n  [";
      for (int64_t t = 0; t < T; ++t) {
        text += t ? ", [" : "[";
        const int64_t* v = out.data() + (b * T + t) * C;
        for (int64_t c = 0; c < C; ++c) {
          if (c) text += ", ";
          text += std::to_string(v[c]);
        }
        text += "]";
      }
      text += "]";
    }
    text += "]";
  }
  text += "}}\n";

  write_file_atomic(o.output, text);  // a failed write leaves no partial file behind
}

}  // namespace

void add_hash_command(CLI::App& app) {
  auto o = std::make_shared<HashOptions>();
  CLI::App* c = app.add_subcommand("hash", "N-gram hash ids of token ids, per Engram layer");
  c->add_option("--config", o->config,
                "Engram config: demo-form JSON or a DeepSeek-V4.1 config.json")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--tokenizer", o->tokenizer, "tokenizer.json (Hugging Face format)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--input", o->input, "ids JSON: {\"input_ids\": [B][T], \"dead_mask\": [B][T]?}")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--output", o->output, "JSON file to write: {\"hash_ids\": {layer: [B][T][cols]}}")
      ->required();
  c->add_flag("--rows", o->rows, "add column offsets: rows of each layer's flat table");
  c->add_option("--threads", o->threads, "threads for large inputs (0: OpenMP default)")
      ->check(CLI::NonNegativeNumber);
  c->callback([o] { run_hash(*o); });
}

}  // namespace engram::cli
