// `engram generate`: text from a trained model with the KV-cache decode step, streamed to stdout
// as it is produced; tokens/s on stderr (and, for store tiers, the share of decode time spent
// waiting for Engram rows). The work is generate_text (generate.h).
//
//   engram generate --model runs/base --prompt "The jury said" --max-tokens 64
//       [--temperature 0.8] [--top-k 40] [--top-p 0.95] [--seed 0]
//       [--tables resident|dram|file|cache] [--tables-file PATH] [--cache-mb 4] [--buffered]
//       [--fetch-threads -1]
// --model takes a model directory (with tokenizer.json) or a training folder (its `latest`).
// --tables other than resident exports the Engram tables to --tables-file (default: a temporary
// file) and serves them from that tier with prefetch; the text is the same on every tier.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/generate.h"
#include "engram/error.h"

namespace engram::cli {

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "sample text from a model (KV cache, streamed)");
  auto a = std::make_shared<GenerateOptions>();
  auto cache_mb = std::make_shared<double>(double(a->cache_bytes) / double(1 << 20));
  auto buffered = std::make_shared<bool>(false);
  cmd->add_option("--model", a->model, "model directory or training folder")->required();
  cmd->add_option("--prompt", a->prompt, "text to continue")->required();
  cmd->add_option("--max-tokens", a->max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "softmax temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "keep the k most likely tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "nucleus: keep tokens up to this probability mass")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP / OpenBLAS threads (0: default)")
      ->capture_default_str();
  cmd->add_option("--tables", a->tables,
                  "where Engram rows come from: resident, dram, file (io_uring) or cache "
                  "(hot-row cache over file)")
      ->capture_default_str();
  cmd->add_option("--tables-file", a->tables_file,
                  "export the Engram tables here (kept); default: a temporary file");
  cmd->add_option("--cache-mb", *cache_mb, "hot-row cache size of --tables cache (MiB)")
      ->capture_default_str();
  cmd->add_flag("--buffered", *buffered, "file tiers read through the page cache (no O_DIRECT)");
  cmd->add_option("--fetch-threads", a->fetch_threads,
                  "prefetch workers (-1: one per Engram layer; 0: gather inline at step entry)")
      ->capture_default_str();
  cmd->callback([a, cache_mb, buffered] {
    if (!(*cache_mb >= 0)) fail(Errc::invalid_argument, "--cache-mb must be >= 0");
    a->cache_bytes = uint64_t(*cache_mb * double(1 << 20));
    a->direct = !*buffered;
    a->stream = true;
    const GenerateResult r = generate_text(*a);
    if (r.hit_max_seq_len) std::fprintf(stderr, "stopped at the model's max_seq_len\n");
    std::fprintf(stderr, "%lld tokens in %.3f s: %.1f tokens/s (tables: %s)\n",
                 static_cast<long long>(r.tokens), r.seconds, r.tokens_per_s, r.tier.c_str());
    if (a->tables != "resident") {
      if (a->fetch_threads == 0)
        std::fprintf(stderr, "inline gathers: %.1f%% of decode time, mean %.1f us a layer",
                     100.0 * r.wait_fraction, r.mean_fetch_us);
      else
        std::fprintf(stderr, "prefetch: waited %.1f%% of decode time, mean fetch %.1f us a layer",
                     100.0 * r.wait_fraction, r.mean_fetch_us);
      if (a->tables == "cache")
        std::fprintf(stderr, ", cache hit rate %.1f%%", 100 * r.cache_hit_rate);
      std::fputc('\n', stderr);
    }
  });
}

}  // namespace engram::cli
