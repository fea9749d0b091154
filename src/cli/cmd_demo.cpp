// `engram demo`: the whole story on one corpus, end to end, in one command.
//
//   engram demo [--out runs/demo] [--corpus assets/brown] [--steps 500] [--batch 16] [--seq 128]
//       [--threads 0] [--quick]
//   1. BPE tokenizer (8,192 ids) trained on the corpus's train split -> OUT/tokenizer.json;
//      train / held-out token files -> OUT/data/{train,val}.bin
//   2. the baseline and the Engram preset (configs/baseline_d128.json, configs/engram_d128.json)
//      trained for the same token budget, seed and schedule -> OUT/baseline, OUT/engram
//   3. both evaluated on every held-out window; a side-by-side table; OUT/losses.png
//   4. samples from the Engram model, its tables resident and then served from the file tier
//      (rows read with io_uring, prefetched at step entry; with O_DIRECT and through the page
//      cache): text and tokens/s of each tier
// Steps whose outputs are present and valid are skipped: the tokenizer and token files are
// reused, and a training folder with a checkpoint is resumed (a finished run is not retrained;
// a run started with other options is refused by the trainer). --quick is a tiny budget for tests.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "engram/bpe_trainer.h"
#include "engram/corpus.h"
#include "engram/error.h"
#include "engram/generator.h"
#include "engram/model.h"
#include "engram/token_file.h"
#include "engram/tokenize_corpus.h"
#include "engram/tokenizer.h"
#include "engram/trainer.h"
#include "plot/plot.h"
#include "util/clock.h"
#include "util/read_file.h"

namespace engram::cli {

namespace {

namespace fs = std::filesystem;

struct DemoArgs {
  std::string out = "runs/demo";
  std::string corpus = "assets/brown";
  std::string baseline_config = "configs/baseline_d128.json";
  std::string engram_config = "configs/engram_d128.json";
  int64_t steps = 500;
  int64_t batch = 16;
  int64_t seq = 128;
  float lr = 2e-3f;
  int64_t warmup = 0;      // 0: steps / 20
  int64_t eval_every = 0;  // 0: steps / 10
  int64_t vocab_size = 8192;
  int64_t max_tokens = 64;
  uint64_t seed = 0;
  int threads = 0;
  bool quick = false;
};

constexpr const char* kPrompts[] = {"The jury said", "In the morning", "He was"};

// A Brown corpus folder holds the tagged texts ca01 .. cr09; anything else is plain UTF-8 text.
CorpusOptions corpus_options(const std::string& corpus, CorpusSplit split) {
  if (!fs::exists(corpus))
    fail(Errc::io, "--corpus ", corpus, ": no such file or folder (run scripts/fetch-assets.sh)");
  CorpusOptions o;
  o.inputs = {corpus};
  o.format = fs::exists(fs::path(corpus) / "ca01") ? CorpusFormat::brown : CorpusFormat::text;
  o.split = split;
  return o;
}

// Step 1a: OUT/tokenizer.json, trained unless a valid one is there. Returns true if trained now.
bool ensure_tokenizer(const DemoArgs& a, const std::string& path) {
  if (fs::exists(path)) {
    try {
      const Tokenizer tok = Tokenizer::from_file(path);
      if (tok.token_to_id("<|eos|>")) {
        std::printf("tokenizer: %s (%lld ids, kept)\n", path.c_str(),
                    static_cast<long long>(tok.vocab_size()));
        return false;
      }
    } catch (const Error& e) {
      std::printf("tokenizer: %s is not usable (%s): training a new one\n", path.c_str(), e.what());
    }
  }
  BpeTrainerOptions options;
  options.vocab_size = a.vocab_size;
  const auto t0 = std::chrono::steady_clock::now();
  BpeTrainer trainer(options);
  const CorpusStats stats = trainer.add_corpus(corpus_options(a.corpus, CorpusSplit::train));
  const BpeVocab vocab = trainer.train();
  write_file_atomic(path, BpeTrainer::tokenizer_json(vocab, options));
  std::printf("tokenizer: %zu ids trained on %llu documents (%llu bytes) in %.1f s -> %s\n",
              vocab.tokens.size(), static_cast<unsigned long long>(stats.documents),
              static_cast<unsigned long long>(stats.bytes), seconds_since(t0), path.c_str());
  return true;
}

// A token file that opens, verifies, and was written with this tokenizer's vocabulary size.
bool token_file_ok(const std::string& path, const Tokenizer& tok) {
  if (!fs::exists(path)) return false;
  try {
    return TokenFile::open(path, /*verify_payload=*/true).vocab_size() == tok.vocab_size();
  } catch (const Error&) {
    return false;
  }
}

// Step 1b: OUT/data/{train,val}.bin.
void ensure_token_files(const DemoArgs& a, const std::string& tok_path, bool retokenize,
                        const std::string& data_dir) {
  const Tokenizer tok = Tokenizer::from_file(tok_path);
  const std::optional<int32_t> eos = tok.token_to_id("<|eos|>");
  if (!eos) fail(Errc::invalid_argument, tok_path, ": no <|eos|> token to separate documents");
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) fail(Errc::io, data_dir, ": cannot create folder: ", ec.message());
  for (const CorpusSplit split : {CorpusSplit::train, CorpusSplit::val}) {
    const char* name = split == CorpusSplit::train ? "train" : "val";
    const std::string path = (fs::path(data_dir) / (std::string(name) + ".bin")).string();
    if (!retokenize && token_file_ok(path, tok)) {
      std::printf("data: %s (%llu tokens, kept)\n", path.c_str(),
                  static_cast<unsigned long long>(TokenFile::open(path, false).size()));
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const TokenizeStats s = tokenize_corpus(tok, corpus_options(a.corpus, split), path, *eos);
    std::printf("data: %s split, %llu documents -> %llu tokens in %.1f s -> %s\n", name,
                static_cast<unsigned long long>(s.documents),
                static_cast<unsigned long long>(s.tokens), seconds_since(t0), path.c_str());
  }
}

struct RunSummary {
  std::string name;
  int64_t params = 0;
  int64_t table_params = 0;
  int64_t tokens = 0;
  double tokens_per_s = 0;  // training, from metrics.csv (evaluations included)
  EvalResult held_out;
};

// Step 2: trains (or resumes) one run; prints the trainer's progress on stderr.
void train_run(const DemoArgs& a, const std::string& config, const std::string& tok_path,
               const std::string& data_dir, const std::string& out_dir) {
  TrainOptions o;
  o.config_path = config;
  o.tokenizer_path = tok_path;
  o.data_dir = data_dir;
  o.out_dir = out_dir;
  o.steps = a.steps;
  o.batch = a.batch;
  o.seq = a.seq;
  o.lr = a.lr;
  o.warmup = a.warmup > 0 ? a.warmup : std::max<int64_t>(1, a.steps / 20);
  o.eval_every = a.eval_every > 0 ? a.eval_every : std::max<int64_t>(1, a.steps / 10);
  o.eval_windows = a.quick ? 4 : 64;
  o.seed = a.seed;
  o.log_every = std::max<int64_t>(1, a.steps / 50);
  o.resume = fs::exists(fs::path(out_dir) / "latest");
  o.overwrite = !o.resume;  // the demo's own folder: a run killed before its first checkpoint
  std::printf("== training %s (%s): %lld steps of %lld x %lld tokens%s\n", out_dir.c_str(),
              config.c_str(), static_cast<long long>(o.steps), static_cast<long long>(o.batch),
              static_cast<long long>(o.seq), o.resume ? ", resuming its checkpoint" : "");
  std::fflush(stdout);
  try {
    train(o, stderr);
  } catch (const Error& e) {
    if (!o.resume || e.code() != Errc::mismatch) throw;
    fail(Errc::mismatch, e.what(), " (", out_dir,
         " holds a run with other options: remove it or pick another --out)");
  }
}

RunSummary summarize_run(const std::string& name, const std::string& out_dir, const TokenFile& val,
                         const DemoArgs& a) {
  RunSummary r;
  r.name = name;
  Model model = Model::load(resolve_model_dir(out_dir));
  for (const ParamInfo& p : model.param_infos()) r.params += p.numel;
  for (const EngramTableView& t : model.engram_tables()) r.table_params += t.rows * t.width;
  const TrainingCurves c = read_metrics_csv((fs::path(out_dir) / "metrics.csv").string());
  if (c.tokens.empty()) fail(Errc::parse, out_dir, "/metrics.csv: no training step logged");
  r.tokens = int64_t(c.tokens.back());
  const double elapsed = c.elapsed_s.empty() ? 0.0 : c.elapsed_s.back();
  r.tokens_per_s = elapsed > 0 ? double(r.tokens) / elapsed : 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  r.held_out = evaluate(model, val, a.batch, a.seq, a.quick ? 8 : 0);
  std::printf("held-out %s: loss %.4f over %lld windows (%lld tokens) in %.1f s\n", name.c_str(),
              r.held_out.loss, static_cast<long long>(r.held_out.windows),
              static_cast<long long>(r.held_out.tokens), seconds_since(t0));
  return r;
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fM", double(n) / 1e6);
  return buf;
}

void print_table(const RunSummary& b, const RunSummary& e) {
  const double pb = std::exp(b.held_out.loss), pe = std::exp(e.held_out.loss);
  std::printf("\n%-22s %14s %14s %14s\n", "", b.name.c_str(), e.name.c_str(), "difference");
  std::printf("%-22s %14s %14s %14s\n", "parameters", millions(b.params).c_str(),
              millions(e.params).c_str(), ("+" + millions(e.params - b.params)).c_str());
  std::printf("%-22s %14s %14s\n", "  in Engram tables", millions(b.table_params).c_str(),
              millions(e.table_params).c_str());
  std::printf("%-22s %14lld %14lld\n", "train tokens", static_cast<long long>(b.tokens),
              static_cast<long long>(e.tokens));
  std::printf("%-22s %14.0f %14.0f %13.1f%%\n", "train tokens/s", b.tokens_per_s, e.tokens_per_s,
              b.tokens_per_s > 0 ? 100.0 * (e.tokens_per_s / b.tokens_per_s - 1.0) : 0.0);
  std::printf("%-22s %14.4f %14.4f %+14.4f\n", "held-out loss", b.held_out.loss, e.held_out.loss,
              e.held_out.loss - b.held_out.loss);
  std::printf("%-22s %14.2f %14.2f %13.1f%%\n\n", "held-out perplexity", pb, pe,
              100.0 * (pe / pb - 1.0));
}

// Step 4: the same prompts and seed on every tier; the texts must agree (every tier gives the
// same logits bit for bit), so a difference is reported as an error. Two file tiers: rows read
// with O_DIRECT (from the device every time) and through the page cache (the OS keeps hot rows).
void generate_samples(const DemoArgs& a, const std::string& out_dir) {
  const std::string dir = resolve_model_dir(out_dir);
  Model model = Model::load(dir);
  const Tokenizer tok = Tokenizer::from_file((fs::path(dir) / "tokenizer.json").string());
  GenerateOptions g;
  g.max_tokens = a.max_tokens;
  g.sampling.seed = a.seed;
  // Exported once; every file-tier run below serves this file.
  const ExportedTables tables(model, (fs::path(out_dir) / "engram_tables.safetensors").string());
  g.serve.tables_file = tables.path();
  std::printf(
      "== samples from the Engram model (temperature %.2g, top-k %lld, top-p %.2g, seed %llu), "
      "tables resident and served from the file tier\n",
      double(g.sampling.temperature), static_cast<long long>(g.sampling.top_k),
      double(g.sampling.top_p), static_cast<unsigned long long>(g.sampling.seed));
  // One untimed run first, so the first prompt does not pay for cold caches.
  g.serve.tier = TableTier::resident;
  generate_text(model, tok, kPrompts[0], g);

  // Each prompt is generated kRounds times on every tier, the tiers taking turns, and each tier's
  // fastest round counts: a 64-token generation takes tens of milliseconds, so one scheduler
  // preemption on a shared machine would otherwise decide the ratio.
  constexpr int kRounds = 5;
  struct Tier {
    TableTier tier;
    bool direct;
    int fetch_threads;  // ServeOptions::fetch_threads
    std::string name;   // GenerateResult::tier
    double tokens = 0;
    double seconds = 0;
  };
  // O_DIRECT reads go to the device, so a fetch worker overlaps them with layer 0; page-cache
  // reads take microseconds, which the decoding thread does itself at step entry.
  Tier tiers[] = {{TableTier::resident, true, -1, "resident"},
                  {TableTier::file, true, -1, "file"},
                  {TableTier::file, false, 0, "file"}};
  for (const char* prompt : kPrompts) {
    std::vector<int32_t> first_ids;
    std::string text;
    std::vector<double> best(std::size(tiers), 0.0);
    std::vector<int64_t> count(std::size(tiers), 0);
    std::vector<double> wait(std::size(tiers), 0.0);
    for (int round = 0; round < kRounds; round++) {
      for (size_t i = 0; i < std::size(tiers); i++) {
        Tier& t = tiers[i];
        g.serve.tier = t.tier;
        g.serve.direct = t.direct;
        g.serve.fetch_threads = t.fetch_threads;
        const GenerateResult r = generate_text(model, tok, prompt, g);
        t.name = r.tier;
        if (i == 0 && round == 0) {
          first_ids = r.ids;
          text = r.text;
        } else if (r.ids != first_ids) {
          fail(Errc::internal, "prompt \"", prompt, "\": tier ", r.tier,
               " generated other tokens than the resident tables");
        }
        if (round == 0 || r.seconds < best[i]) {
          best[i] = r.seconds;
          wait[i] = r.wait_fraction;
        }
        count[i] = r.tokens;
      }
    }
    std::printf("\n%s%s\n", prompt, text.c_str());
    const double resident_tps = best[0] > 0 ? double(count[0]) / best[0] : 0.0;
    for (size_t i = 0; i < std::size(tiers); i++) {
      Tier& t = tiers[i];
      t.tokens += double(count[i]);
      t.seconds += best[i];
      const double tps = best[i] > 0 ? double(count[i]) / best[i] : 0.0;
      std::printf("  %-36s %lld tokens, %6.0f tokens/s (%5.1f%% of resident)", t.name.c_str(),
                  static_cast<long long>(count[i]), tps,
                  resident_tps > 0 ? 100.0 * tps / resident_tps : 0.0);
      if (i > 0) std::printf(", waited for rows %.1f%% of decode time", 100.0 * wait[i]);
      std::printf("\n");
    }
  }
  std::printf(
      "\ndecode over the %zu prompts (the same tokens on every tier; fastest of %d rounds):\n",
      std::size(kPrompts), kRounds);
  const double base = tiers[0].seconds > 0 ? tiers[0].tokens / tiers[0].seconds : 0.0;
  for (const Tier& t : tiers) {
    const double tps = t.seconds > 0 ? t.tokens / t.seconds : 0.0;
    std::printf("  %-40s %8.0f tokens/s  %6.1f%% of resident\n", t.name.c_str(), tps,
                base > 0 ? 100.0 * tps / base : 0.0);
  }
}

// Every id a model can sample must decode: the tokenizer must have exactly the configs' vocab size
// (a small corpus can stop BPE training early).
int64_t config_vocab(const std::string& config_path) {
  return ModelConfig::from_json(read_file(config_path, {kMaxConfigBytes, "config"}), config_path)
      .vocab_size;
}

void check_vocab(const std::string& tok_path, const std::string& config_path) {
  const int64_t tok_v = Tokenizer::from_file(tok_path).vocab_size();
  const int64_t cfg_v = config_vocab(config_path);
  if (tok_v != cfg_v)
    fail(Errc::mismatch, tok_path, " has ", tok_v, " ids but ", config_path, " has vocab_size ",
         cfg_v, ": pass --vocab-size ", cfg_v,
         " (a corpus too small for that many merges needs a config with fewer ids)");
}

void run_demo(DemoArgs a) {
  if (a.quick) {
    a.steps = 4;
    a.batch = 4;
    a.seq = 32;
    a.max_tokens = 12;
  }
  if (a.steps < 1 || a.batch < 1 || a.seq < 2)
    fail(Errc::invalid_argument, "--steps, --batch must be >= 1 and --seq >= 2");
  if (a.max_tokens < 0) fail(Errc::invalid_argument, "--max-tokens must be >= 0");
  // Both configs are read before any work, so a wrong path fails at once.
  config_vocab(a.baseline_config);
  config_vocab(a.engram_config);
  set_compute_threads(a.threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) fail(Errc::io, "--out ", a.out, ": cannot create folder: ", ec.message());
  const fs::path out(a.out);
  const std::string tok_path = (out / "tokenizer.json").string();
  const std::string data_dir = (out / "data").string();

  std::printf("== data: corpus %s\n", a.corpus.c_str());
  const bool trained = ensure_tokenizer(a, tok_path);
  ensure_token_files(a, tok_path, trained, data_dir);
  check_vocab(tok_path, a.baseline_config);
  check_vocab(tok_path, a.engram_config);

  const std::string base_dir = (out / "baseline").string();
  const std::string engram_dir = (out / "engram").string();
  train_run(a, a.baseline_config, tok_path, data_dir, base_dir);
  train_run(a, a.engram_config, tok_path, data_dir, engram_dir);

  std::printf("== held-out evaluation (every window of %lld tokens%s)\n",
              static_cast<long long>(a.seq), a.quick ? ", --quick: 8 windows" : "");
  const TokenFile val = TokenFile::open((fs::path(data_dir) / "val.bin").string());
  const RunSummary b = summarize_run("baseline", base_dir, val, a);
  const RunSummary e = summarize_run("engram", engram_dir, val, a);
  print_table(b, e);
  const std::string png = (out / "losses.png").string();
  write_loss_plot({(fs::path(base_dir) / "metrics.csv").string(),
                   (fs::path(engram_dir) / "metrics.csv").string()},
                  {"baseline", "engram"}, png,
                  "baseline vs Engram, " + std::to_string(b.tokens) + " training tokens each");
  std::printf("loss curves: %s\n", png.c_str());

  generate_samples(a, engram_dir);
  std::printf("\ndemo done in %.1f s (outputs in %s)\n", seconds_since(t0), a.out.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "train baseline and Engram on a corpus, compare held-out loss, generate from tiers");
  auto a = std::make_shared<DemoArgs>();
  cmd->add_option("--out", a->out, "output folder (tokenizer, token files, runs, losses.png)")
      ->capture_default_str();
  cmd->add_option("--corpus", a->corpus, "Brown corpus folder, or UTF-8 text files / folder")
      ->capture_default_str();
  cmd->add_option("--baseline-config", a->baseline_config, "baseline model config")
      ->capture_default_str();
  cmd->add_option("--engram-config", a->engram_config, "Engram model config")
      ->capture_default_str();
  cmd->add_option("--steps", a->steps, "optimizer steps per model")->capture_default_str();
  cmd->add_option("--batch", a->batch, "sequences per step (B)")->capture_default_str();
  cmd->add_option("--seq", a->seq, "tokens per sequence (T)")->capture_default_str();
  cmd->add_option("--lr", a->lr, "peak learning rate (Engram tables: 5x)")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "warm-up steps (0: steps / 20)")->capture_default_str();
  cmd->add_option("--eval-every", a->eval_every, "held-out evaluation period (0: steps / 10)")
      ->capture_default_str();
  cmd->add_option("--vocab-size", a->vocab_size, "BPE tokenizer size")->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "tokens generated per prompt")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "model init, batches and sampling")->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP / OpenBLAS threads (0: default)")
      ->capture_default_str();
  cmd->add_flag("--quick", a->quick,
                "tiny budget for tests (overrides --steps, --batch, --seq, --max-tokens): 4 steps "
                "of 4 x 32 tokens, 8 held-out windows, 12 tokens per sample");
  cmd->callback([a] { run_demo(*a); });
}

}  // namespace engram::cli
