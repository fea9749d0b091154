// engram/generator.h: generating tokens from a Model with the KV-cache decode step, its Engram
// tables resident or served from a row-store tier while decoding.
//
// generate() feeds the prompt (decode_prompt), then draws each next token with sample_token
// (engram/sampler.h) from an mt19937_64 seeded with sampling.seed, and feeds it back. It stops
// at max_tokens, at a stop id (which is not emitted), when the callback returns false, or when
// the model's max_seq_len positions are used. generate_text() does the same from text with a
// tokenizer: it encodes the prompt, stops at <|eos|> when the tokenizer has it, never samples an
// id the tokenizer cannot decode, and can stream the text as it grows.
//
// Tiers (ServeOptions::tier):
//   resident  the tables stay inside the model (what training wrote); no store, no prefetch.
//   dram      every row in memory (a DRAM store filled from the exported tables), prefetched.
//   file      rows read in place from the exported tables' file (io_uring), prefetched.
//   cache     a hot-row cache (cache_bytes, S3-FIFO) in front of the file tier, prefetched.
// The store tiers serve the model's tables exported to a safetensors file (ExportedTables), opened
// with open_store (engram/store.h). Every tier gives the same logits bit for bit, so a seed gives
// the same tokens on every tier.
//
// Errors: a bad option, prompt (empty, too long, an id outside the vocabulary) or table file
// throws engram::Error naming what was wrong; so does a store I/O error while decoding, and an
// exception thrown by the callback passes through. In every case the model is back on its
// resident tables when generate returns or throws. Not thread-safe: one model, one caller.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engram/sampler.h"

namespace engram {

class Model;
class Tokenizer;

enum class TableTier { resident, dram, file, cache };

// "resident", "dram", "file", "cache" <-> TableTier; parse_table_tier throws
// Errc::invalid_argument naming the bad name and the valid ones.
TableTier parse_table_tier(std::string_view name);
const char* table_tier_name(TableTier tier);

// Where the Engram tables are served from during one generate call.
struct ServeOptions {
  TableTier tier = TableTier::resident;
  // Store tiers: the file holding this model's exported tables (ExportedTables). Empty: generate
  // exports them to a temporary file for the call and removes it at the end.
  std::string tables_file;
  uint64_t cache_bytes = 4ull << 20;  // cache tier: the hot-row cache's size (> 0)
  bool direct = true;                 // file and cache tiers: O_DIRECT reads (false: page cache)
  // Store tiers: prefetch workers; -1: one per Engram layer; 0: no worker, the decoding thread
  // gathers each step's rows itself at step entry (cheaper than a hand-off for DRAM).
  int fetch_threads = -1;
};

struct GenerateOptions {
  int64_t max_tokens = 64;  // >= 0
  SamplingOptions sampling;
  std::vector<int32_t> stop_ids;  // generation ends before emitting any of these
  // Sample only ids below this (0: the model's whole vocabulary). generate_text sets it to the
  // tokenizer's size when the model's vocab_size rounds it up.
  int64_t vocab_limit = 0;
  // Called with each emitted token, in order, as soon as it is drawn (before it is fed back).
  // Returning false ends the generation after that token.
  std::function<bool(int32_t id)> on_token;
  ServeOptions serve;
};

struct GenerateResult {
  std::vector<int32_t> ids;  // the generated tokens (prompt and stop id excluded)
  std::string text;          // generate_text only: the ids decoded
  int64_t prompt_tokens = 0;
  int64_t tokens = 0;            // == ids.size()
  int32_t stop_id = -1;          // the stop id that ended the generation, else -1
  bool hit_max_seq_len = false;  // stopped early because the model's positions ran out
  double prompt_seconds = 0;     // feeding the prompt through the decode step
  double seconds = 0;            // generating `tokens` (sampling and callbacks included)
  double tokens_per_s = 0;       // tokens / seconds
  double cpu_seconds = 0;  // CPU time of the calling thread over `seconds` (fetch workers excluded)
  std::string tier;  // the store's description, e.g. "file(io_uring, O_DIRECT)", or "resident"
  // Store tiers, over the generated tokens' steps: the share of decode time spent blocked
  // waiting for rows, the mean time from a layer's prefetch to its rows being in, and a step's
  // compute before its first Engram layer (what a fetch hides behind).
  double wait_fraction = 0;
  double mean_fetch_us = 0;
  double mean_ahead_us = 0;
  double cache_hit_rate = 0;  // cache tier only
};

// Generates from `prompt` (token ids, at least one, fewer than max_seq_len). The model's KV cache
// is reset first; the tables are served from options.serve for the call only.
GenerateResult generate(Model& model, std::span<const int32_t> prompt,
                        const GenerateOptions& options);

struct TextOptions {
  bool stop_at_eos = true;  // add the tokenizer's <|eos|> to the stop ids (when it has one)
  // Called with each newly stable piece of text (a trailing U+FFFD, perhaps half a character, is
  // held back until the next token completes it); the pieces concatenate to the result's text.
  std::function<void(std::string_view piece)> on_text;
};

// generate() from text: the prompt encoded without special tokens, the result's text decoded.
GenerateResult generate_text(Model& model, const Tokenizer& tokenizer, const std::string& prompt,
                             const GenerateOptions& options, const TextOptions& text = {});

// The model's Engram tables exported (F32 safetensors) for the store tiers: to `path` (kept), or,
// when path is empty, to a temporary file that the destructor removes. Export once and pass
// path() as ServeOptions::tables_file to serve several generations from one file.
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

}  // namespace engram
