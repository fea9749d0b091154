// `engram bench decode`: decode tokens/s with the Engram tables resident and served from each
// store tier with prefetch, same model, prompt and seed, side by side.
//
//   engram bench decode --model runs/engram [--prompt TEXT] [--max-tokens 128] [--repeats 15]
//       [--tiers resident,dram,dram-inline,file,file-buffered,file-buffered-inline,cache]
//       [--cache-mb 4] [--threads 1]
//   engram bench decode --config configs/engram_d128.json --tokenizer tok.json   (random weights)
//
// Tiers: resident (the model's own tables), dram (DramStore), file (FileStore, io_uring,
// O_DIRECT), file-buffered (FileStore through the page cache), cache (hot-row cache over the
// O_DIRECT file); "-inline" gathers on the decoding thread at step entry instead of handing the
// fetch to a prefetch worker (PrefetchOptions.threads = 0). The tiers run interleaved, one
// generation each per round, so a noisy machine slows them alike; the table gives medians over
// rounds and the median of each round's ratio to resident. Every generation's text must equal the
// resident one (the logits are bit-identical), or the bench fails. Per store tier it also prints
// where a step's time went: the compute before the first Engram layer that a fetch can hide behind,
// the mean fetch time and the share of decode time spent waiting for rows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "engram/error.h"
#include "engram/generator.h"
#include "engram/model.h"
#include "engram/tokenizer.h"
#include "engram/trainer.h"
#include "util/cpu_info.h"

namespace engram::cli {

namespace {

struct BenchDecodeArgs {
  std::string model, config, tokenizer;
  std::string prompt = "The jury said it did find that the";
  int64_t max_tokens = 128;
  int repeats = 15;
  std::string tiers = "resident,dram,dram-inline,file,file-buffered,file-buffered-inline,cache";
  double cache_mb = 4;
  int threads = 1;
  float temperature = 0.8f;
  uint64_t seed = 0;
};

struct TierSpec {
  std::string label;
  TableTier tier = TableTier::resident;
  bool direct = true;
  int fetch_threads = -1;
};

// <tier>[-buffered][-inline]: -buffered reads the file through the page cache, -inline gathers
// on the decoding thread at step entry instead of through prefetch workers.
TierSpec parse_tier(const std::string& name) {
  std::string base = name;
  TierSpec t{name, TableTier::resident, true, -1};
  if (base.ends_with("-inline")) {
    t.fetch_threads = 0;
    base.resize(base.size() - 7);
  }
  if (base.ends_with("-buffered")) {
    t.direct = false;
    base.resize(base.size() - 9);
  }
  const bool known = (base == "resident" && t.fetch_threads == -1 && t.direct) ||
                     (base == "dram" && t.direct) || base == "file" || base == "cache";
  if (!known)
    fail(Errc::invalid_argument, "--tiers: unknown tier \"", name,
         "\" (resident, or dram / file / cache, file and cache optionally -buffered, any of "
         "them optionally -inline)");
  t.tier = parse_table_tier(base);
  return t;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Every numeric option is judged before any work, in an error naming the flag: a zero count
// would otherwise divide by zero or print a table of nothing.
void check_numbers(const BenchDecodeArgs& a) {
  if (a.max_tokens < 1)
    fail(Errc::invalid_argument, "--max-tokens must be >= 1, got ", a.max_tokens);
  if (a.repeats < 1) fail(Errc::invalid_argument, "--repeats must be >= 1, got ", a.repeats);
  if (!(a.cache_mb > 0) || !std::isfinite(a.cache_mb) || a.cache_mb * double(1 << 20) >= 0x1p63)
    fail(Errc::invalid_argument, "--cache-mb must be a positive number of MiB, got ", a.cache_mb);
  if (a.threads < 0)
    fail(Errc::invalid_argument, "--threads must be >= 0 (0: the OpenMP default), got ", a.threads);
  if (!(a.temperature >= 0) || !std::isfinite(a.temperature))
    fail(Errc::invalid_argument, "--temperature must be a number >= 0 (0: greedy), got ",
         a.temperature);
}

void run_bench_decode(const BenchDecodeArgs& a) {
  check_numbers(a);
  set_compute_threads(a.threads);
  std::vector<TierSpec> tiers;
  {
    std::stringstream ss(a.tiers);
    std::string t;
    while (std::getline(ss, t, ',')) tiers.push_back(parse_tier(t));
  }
  if (tiers.empty() || tiers[0].label != "resident")
    fail(Errc::invalid_argument, "--tiers must start with resident (the reference)");

  if (a.model.empty() && (a.config.empty() || a.tokenizer.empty()))
    fail(Errc::invalid_argument, "give --model, or --config and --tokenizer");
  const std::string dir = a.model.empty() ? "" : resolve_model_dir(a.model);
  const Tokenizer tok = Tokenizer::from_file(dir.empty() ? a.tokenizer : dir + "/tokenizer.json");
  Model model = dir.empty() ? Model(new_model_config(a.config, tok), 0) : Model::load(dir);
  if (model.config().engram.layer_ids.empty())
    fail(Errc::invalid_argument, "the model has no Engram layer: nothing to serve from a store");

  GenerateOptions base;
  base.max_tokens = a.max_tokens;
  base.sampling.temperature = a.temperature;
  base.sampling.seed = a.seed;
  base.serve.cache_bytes = uint64_t(a.cache_mb * double(1 << 20));
  TextOptions text;
  text.stop_at_eos = false;            // every run decodes max_tokens steps
  const ExportedTables tables(model);  // once, for every store-tier run
  base.serve.tables_file = tables.path();

  const size_t n = tiers.size();
  std::vector<std::vector<double>> tps(n), ratio(n), wait(n), fetch(n), ahead(n), hits(n), cpu(n),
      prompt_ms(n);
  std::vector<std::string> desc(n);
  std::string reference;
  int64_t tokens = 0;
  std::printf("%s\n", cpu_info_line().c_str());
  std::printf("engram bench decode: %d rounds x %zu tiers, %lld tokens each, %d thread(s)\n",
              a.repeats, n, static_cast<long long>(a.max_tokens), a.threads);
  // Round 0 warms every tier up (page cache, huge pages, allocator) and is not counted. Each
  // round starts at another tier, so no tier always runs right after the same neighbour.
  for (int round = 0; round <= a.repeats; round++) {
    std::vector<GenerateResult> res(n);
    for (size_t k = 0; k < n; k++) {
      const size_t i = (k + size_t(round)) % n;
      GenerateOptions o = base;
      o.serve.tier = tiers[i].tier;
      o.serve.direct = tiers[i].direct;
      o.serve.fetch_threads = tiers[i].fetch_threads;
      res[i] = generate_text(model, tok, a.prompt, o, text);
    }
    if (round == 0) {
      reference = res[0].text;
      tokens = res[0].tokens;
    }
    for (size_t i = 0; i < n; i++) {
      const GenerateResult& r = res[i];
      if (r.text != reference)
        fail(Errc::mismatch, "tier ", tiers[i].label,
             " generated a different text than resident "
             "in round ",
             round, ": the logits are not bit-identical");
      desc[i] = r.tier;
      if (round == 0) continue;
      tps[i].push_back(r.tokens_per_s);
      ratio[i].push_back(res[0].tokens_per_s > 0 ? r.tokens_per_s / res[0].tokens_per_s : 0);
      wait[i].push_back(r.wait_fraction);
      fetch[i].push_back(r.mean_fetch_us);
      ahead[i].push_back(r.mean_ahead_us);
      hits[i].push_back(r.cache_hit_rate);
      prompt_ms[i].push_back(1e3 * r.prompt_seconds);
      cpu[i].push_back(r.tokens > 0 ? 1e6 * r.cpu_seconds / double(r.tokens) : 0);
    }
  }
  std::printf("%lld tokens generated per run, text identical on every tier and round\n\n",
              static_cast<long long>(tokens));
  std::printf("%-14s %10s %9s %9s %9s %9s %8s %10s %10s %8s  %s\n", "tier", "tokens/s", "vs res.",
              "ratio/rd", "cpu us/t", "prompt ms", "wait %", "fetch us", "ahead us", "hits %",
              "store");
  for (size_t i = 0; i < n; i++) {
    const bool store = tiers[i].tier != TableTier::resident;
    const double med = median(tps[i]);
    std::printf("%-14s %10.1f %8.1f%% %8.1f%% %9.1f %9.2f ", tiers[i].label.c_str(), med,
                100.0 * med / median(tps[0]), 100.0 * median(ratio[i]), median(cpu[i]),
                median(prompt_ms[i]));
    if (store)
      std::printf("%8.1f %10.1f %10.1f ", 100.0 * median(wait[i]), median(fetch[i]),
                  median(ahead[i]));
    else
      std::printf("%8s %10s %10s ", "-", "-", "-");
    if (tiers[i].tier == TableTier::cache)
      std::printf("%8.1f  ", 100.0 * median(hits[i]));
    else
      std::printf("%8s  ", "-");
    std::printf("%s\n", desc[i].c_str());
  }
  std::printf(
      "\nvs res.: median tokens/s over resident's median; ratio/rd: median of each round's "
      "ratio; cpu: CPU time of the decoding thread per token; prompt: feeding the prompt (its rows "
      "fetched at once); wait: share of decode_step time "
      "blocked on rows; fetch: prefetch() to rows "
      "in, per Engram layer; ahead: compute from step entry to the first Engram layer\n");
}

}  // namespace

void add_bench_decode_command(CLI::App& bench) {
  auto a = std::make_shared<BenchDecodeArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "decode", "decode tokens/s, Engram tables resident vs served from store tiers");
  cmd->add_option("--model", a->model, "model directory or training folder");
  cmd->add_option("--config", a->config, "model config JSON (random weights) instead of --model");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json (with --config)");
  cmd->add_option("--prompt", a->prompt, "text to continue")->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "tokens per generation")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "rounds (each runs every tier once)")
      ->capture_default_str();
  cmd->add_option("--tiers", a->tiers, "comma-separated, resident first")->capture_default_str();
  cmd->add_option("--cache-mb", a->cache_mb, "hot-row cache of the cache tiers (MiB)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP / OpenBLAS threads")->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--seed", a->seed, "sampling seed")->capture_default_str();
  cmd->callback([a] { run_bench_decode(*a); });
}

}  // namespace engram::cli
