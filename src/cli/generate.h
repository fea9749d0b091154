// Text generation as a function, shared by `engram generate`, `engram bench decode` and
// `engram demo`: load a model, optionally serve its Engram tables from a row-store tier, and
// sample a continuation of a prompt with the KV-cache decode step.
//
// Tiers (GenerateOptions::tables):
//   resident  the tables stay inside the model (what training wrote); no store, no prefetch.
//   dram      tables exported to a safetensors file, loaded into a DramStore, rows prefetched.
//   file      rows read in place from that file by a FileStore (io_uring), rows prefetched.
//   cache     a hot-row CachedStore (cache_bytes) in front of that FileStore, rows prefetched.
// generate_text exports to tables_file when given (kept), else to a temporary file removed at
// the end; a caller that serves several runs from one model exports once (ExportedTables) and
// passes that file to generate_with.
// Every tier gives the same logits bit for bit, so a seed gives the same text on every tier.
//
// Errors: a bad option, model directory, tokenizer or table file throws engram::Error naming
// what was wrong; so does an I/O error of the store while decoding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engram/model.h"
#include "engram/tokenizer.h"

namespace engram::cli {

struct GenerateOptions {
  std::string model;  // model directory (with tokenizer.json) or a training folder (its latest)
  std::string prompt;
  int64_t max_tokens = 64;
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 40;        // 0: all
  float top_p = 0.95f;       // (0, 1]
  uint64_t seed = 0;
  int threads = 0;                  // OpenMP / OpenBLAS threads (0: default)
  std::string tables = "resident";  // resident | dram | file | cache
  // Store tiers: the file with this model's exported tables (ExportedTables). generate_text
  // exports them there first (empty: to a temporary file); generate_with serves it as it is.
  std::string tables_file;
  uint64_t cache_bytes = 4ull << 20;  // hot-row cache of the "cache" tier
  bool direct = true;                 // file tiers: O_DIRECT reads (false: the page cache)
  bool stream = false;                // write the text to stdout as it is produced
  bool stop_at_eos = true;            // false: always max_tokens (benchmarks)
  // Store tiers: fetch workers; -1: one per Engram layer; 0: no worker, the decoding thread
  // gathers each step's rows itself at step entry (cheaper than a hand-off for DRAM).
  int fetch_threads = -1;
};

// The model's Engram tables exported to a safetensors file for the store tiers: to `path` (kept),
// or, when path is empty, to a temporary file that the destructor removes.
class ExportedTables {
 public:
  explicit ExportedTables(Model& model, std::string path = {});
  ~ExportedTables();
  ExportedTables(const ExportedTables&) = delete;
  ExportedTables& operator=(const ExportedTables&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool temporary_ = false;
};

struct GenerateResult {
  std::string text;          // the continuation (prompt excluded)
  std::vector<int32_t> ids;  // its token ids
  int64_t prompt_tokens = 0;
  int64_t tokens = 0;         // generated tokens (== ids.size())
  double prompt_seconds = 0;  // feeding the prompt through the decode step
  double seconds = 0;         // generating `tokens` (sampling included)
  double tokens_per_s = 0;    // tokens / seconds
  double cpu_seconds = 0;  // CPU time of the calling thread over `seconds` (fetch workers excluded)
  bool hit_max_seq_len = false;
  std::string tier;  // e.g. "resident", "file(io_uring, O_DIRECT)"
  // Store tiers, over the generated tokens' steps: the share of decode time spent blocked in
  // waiting for rows, and the mean time from a step's prefetch to its rows being in.
  double wait_fraction = 0;
  double mean_fetch_us = 0;
  double mean_ahead_us =
      0;  // a step's compute before its first Engram layer (what a fetch hides behind)
  double cache_hit_rate = 0;  // "cache" tier only
};

// Loads the model and tokenizer named by opt.model, exports the tables for a store tier, and
// generates (see generate_with below).
GenerateResult generate_text(const GenerateOptions& opt);

// The same with a model and tokenizer already loaded (benchmarks reuse them across tiers).
// Serves the model's Engram tables from opt.tables for the call and puts them back to resident
// before returning (also on error). The model's KV cache is reset first.
GenerateResult generate_with(Model& model, const Tokenizer& tok, const GenerateOptions& opt);

}  // namespace engram::cli
