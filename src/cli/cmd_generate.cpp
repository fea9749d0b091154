// `engram generate`: text from a trained model with the KV-cache decode step, streamed to stdout
// as it is produced; tokens/s on stderr (and, for store tiers, the share of decode time spent
// waiting for Engram rows). The work is generate_text (engram/generator.h).
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
#include <optional>

#include "cli/commands.h"
#include "engram/error.h"
#include "engram/generator.h"
#include "engram/model.h"
#include "engram/tokenizer.h"
#include "engram/trainer.h"

namespace engram::cli {

namespace {

struct GenerateArgs {
  std::string model, prompt, tables = "resident", tables_file;
  double cache_mb = 4;
  bool buffered = false;
  int threads = 0;
  GenerateOptions g;
};

void run_generate(GenerateArgs& a) {
  if (!(a.cache_mb >= 0)) fail(Errc::invalid_argument, "--cache-mb must be >= 0");
  check_sampling(a.g.sampling);  // before the model loads
  try {
    a.g.serve.tier = parse_table_tier(a.tables);
  } catch (const Error& e) {
    fail(e.code(), "--tables: ", e.what());
  }
  a.g.serve.cache_bytes = uint64_t(a.cache_mb * double(1 << 20));
  a.g.serve.direct = !a.buffered;
  set_compute_threads(a.threads);
  const std::string dir = resolve_model_dir(a.model);
  Model model = Model::load(dir);
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  verify_checkpoint_tokenizer(dir, tok, dir + "/tokenizer.json");
  // --tables-file is written even for a run that then fails, so a user can inspect it.
  std::optional<ExportedTables> kept;
  if (a.g.serve.tier != TableTier::resident && !a.tables_file.empty())
    a.g.serve.tables_file = kept.emplace(model, a.tables_file).path();
  TextOptions text;
  text.on_text = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  const GenerateResult r = generate_text(model, tok, a.prompt, a.g, text);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (r.hit_max_seq_len) std::fprintf(stderr, "stopped at the model's max_seq_len\n");
  std::fprintf(stderr, "%lld tokens in %.3f s: %.1f tokens/s (tables: %s)\n",
               static_cast<long long>(r.tokens), r.seconds, r.tokens_per_s, r.tier.c_str());
  if (a.g.serve.tier != TableTier::resident) {
    if (a.g.serve.fetch_threads == 0)
      std::fprintf(stderr, "inline gathers: %.1f%% of decode time, mean %.1f us a layer",
                   100.0 * r.wait_fraction, r.mean_fetch_us);
    else
      std::fprintf(stderr, "prefetch: waited %.1f%% of decode time, mean fetch %.1f us a layer",
                   100.0 * r.wait_fraction, r.mean_fetch_us);
    if (a.g.serve.tier == TableTier::cache)
      std::fprintf(stderr, ", cache hit rate %.1f%%", 100 * r.cache_hit_rate);
    std::fputc('\n', stderr);
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "sample text from a model (KV cache, streamed)");
  auto a = std::make_shared<GenerateArgs>();
  SamplingOptions& s = a->g.sampling;
  cmd->add_option("--model", a->model, "model directory or training folder")->required();
  cmd->add_option("--prompt", a->prompt, "text to continue")->required();
  cmd->add_option("--max-tokens", a->g.max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", s.temperature, "softmax temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "nucleus: keep tokens up to this probability mass")
      ->capture_default_str();
  cmd->add_option("--seed", s.seed, "sampling seed")->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP / OpenBLAS threads (0: default)")
      ->capture_default_str();
  cmd->add_option("--tables", a->tables,
                  "where Engram rows come from: resident, dram, file (io_uring) or cache "
                  "(hot-row cache over file)")
      ->capture_default_str();
  cmd->add_option("--tables-file", a->tables_file,
                  "export the Engram tables here (kept); default: a temporary file");
  cmd->add_option("--cache-mb", a->cache_mb, "hot-row cache size of --tables cache (MiB)")
      ->capture_default_str();
  cmd->add_flag("--buffered", a->buffered, "file tiers read through the page cache (no O_DIRECT)");
  cmd->add_option("--fetch-threads", a->g.serve.fetch_threads,
                  "prefetch workers (-1: one per Engram layer; 0: gather inline at step entry)")
      ->capture_default_str();
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace engram::cli
