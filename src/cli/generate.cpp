// generate_text / generate_with (generate.h): sampling, streamed output and the store tiers the
// Engram tables are served from while decoding.
//
// Sampling: logits / temperature -> softmax -> keep the top-k, then the smallest set of most
// likely tokens whose probability reaches top-p -> renormalize -> draw with a seeded mt19937_64
// (53-bit uniforms, so a seed gives the same text everywhere). Temperature 0 is greedy.
// Generation stops at max_tokens, at <|eos|> when the tokenizer has it, or when the model's
// max_seq_len positions are used.
#include "cli/generate.h"

#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>

#include "engram/error.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "engram/trainer.h"
#include "util/clock.h"

namespace engram::cli {

namespace {

int32_t sample(std::span<const float> logits, const GenerateOptions& a, std::mt19937_64& rng) {
  const int64_t V = int64_t(logits.size());
  if (a.temperature <= 0.0f) {
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Descending logit, ties by id, so the kept set never depends on the sort's stability.
  const auto by_logit = [&](int32_t x, int32_t y) {
    return logits[x] != logits[y] ? logits[x] > logits[y] : x < y;
  };
  const int64_t k = a.top_k > 0 ? std::min(a.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
  order.resize(size_t(k));
  std::vector<double> p(order.size());
  const double mx = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < order.size(); i++) {
    p[i] = std::exp((double(logits[order[i]]) - mx) / double(a.temperature));
    sum += p[i];
  }
  size_t keep = order.size();
  if (a.top_p > 0.0f && a.top_p < 1.0f) {
    double c = 0;
    for (size_t i = 0; i < order.size(); i++) {
      c += p[i] / sum;
      if (c >= double(a.top_p)) {
        keep = i + 1;
        break;
      }
    }
  }
  const double total = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  const double u = double(rng() >> 11) * 0x1.0p-53 * total;
  double c = 0;
  for (size_t i = 0; i < keep; i++) {
    c += p[i];
    if (u < c) return order[i];
  }
  return order[keep - 1];
}

void check_options(const GenerateOptions& a) {
  if (a.fetch_threads < -1 || a.fetch_threads > 64)
    fail(Errc::invalid_argument, "--fetch-threads must be in -1..64, got ", a.fetch_threads);
  if (a.max_tokens < 0)
    fail(Errc::invalid_argument, "--max-tokens must be >= 0, got ", a.max_tokens);
  if (!(a.top_p > 0.0f && a.top_p <= 1.0f))
    fail(Errc::invalid_argument, "--top-p must be in (0, 1], got ", a.top_p);
  if (!(a.temperature >= 0.0f))
    fail(Errc::invalid_argument, "--temperature must be >= 0, got ", a.temperature);
  if (a.tables != "resident" && a.tables != "dram" && a.tables != "file" && a.tables != "cache")
    fail(Errc::invalid_argument, "--tables must be resident, dram, file or cache, got \"", a.tables,
         "\"");
}

// While alive: the model's Engram tables are served from the tier `opt.tables` names, over the
// exported tables in opt.tables_file; at the end, back to resident.
class TierScope {
 public:
  TierScope(Model& model, const GenerateOptions& opt) : model_(model) {
    if (opt.tables == "resident") return;
    if (opt.tables_file.empty())
      fail(Errc::invalid_argument, "--tables ", opt.tables, " needs the exported tables' file");
    FileStoreOptions fo;
    fo.direct = opt.direct;
    std::shared_ptr<FileStore> file =
        FileStore::open(model.engram_table_sources(opt.tables_file), fo);
    if (opt.tables == "file") {
      store_ = file;
    } else if (opt.tables == "dram") {
      store_ = DramStore::load(*file);
    } else {
      cached_ = std::make_shared<CachedStore>(file, opt.cache_bytes, CachePolicy::s3fifo);
      store_ = cached_;
    }
    // One fetch worker per Engram layer: each layer's fetch starts at once, and no idle
    // threads compete with the compute for the cores.
    PrefetchOptions po;
    po.threads = opt.fetch_threads >= 0
                     ? unsigned(opt.fetch_threads)
                     : unsigned(std::max<size_t>(1, model.config().engram.layer_ids.size()));
    model.serve_engram_from(store_, po);
  }
  ~TierScope() { model_.serve_engram_resident(); }
  TierScope(const TierScope&) = delete;
  TierScope& operator=(const TierScope&) = delete;

  std::string describe() const { return store_ ? store_->describe() : "resident"; }
  CachedStore* cached() const { return cached_.get(); }

 private:
  Model& model_;
  std::shared_ptr<RowStore> store_;
  std::shared_ptr<CachedStore> cached_;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

ExportedTables::ExportedTables(Model& model, std::string path) : path_(std::move(path)) {
  if (path_.empty()) {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("engram-tables-" + std::to_string(getpid()) + "-" + std::to_string(counter++) +
              ".safetensors"))
                .string();
    temporary_ = true;
  }
  model.export_engram_tables(path_);
}

ExportedTables::~ExportedTables() {
  if (!temporary_) return;
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

GenerateResult generate_with(Model& model, const Tokenizer& tok, const GenerateOptions& opt) {
  check_options(opt);
  const std::vector<int32_t> prompt = tok.encode(opt.prompt, false);
  if (prompt.empty()) fail(Errc::invalid_argument, "--prompt encodes to no tokens");
  const int64_t max_len = model.config().max_seq_len;
  if (int64_t(prompt.size()) >= max_len)
    fail(Errc::invalid_argument, "--prompt has ", prompt.size(),
         " tokens; the model's max_seq_len ", max_len, " leaves no room to generate");
  for (size_t i = 0; i < prompt.size(); i++) {
    if (prompt[i] >= model.config().vocab_size)
      fail(Errc::mismatch, "prompt token ", i, " has id ", prompt[i],
           ", outside the model's vocab_size ", model.config().vocab_size,
           " (tokenizer and model do not match)");
  }
  const std::optional<int32_t> eos = tok.token_to_id("<|eos|>");
  std::mt19937_64 rng(opt.seed);

  TierScope tier(model, opt);
  GenerateResult r;
  r.tier = tier.describe();
  r.prompt_tokens = int64_t(prompt.size());
  model.reset_cache();

  auto t0 = std::chrono::steady_clock::now();
  std::span<const float> logits = model.decode_prompt(prompt);
  r.prompt_seconds = seconds_since(t0);
  model.reset_decode_stats();
  if (tier.cached()) tier.cached()->reset_cache_counters();

  // A model's vocab_size may round the tokenizer's up; ids past the tokenizer's never occur in
  // training text and cannot be decoded, so they are never sampled.
  const size_t n_ids = size_t(std::min(model.config().vocab_size, tok.vocab_size()));
  std::string printed;  // decoded text already written to stdout
  t0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  for (int64_t i = 0; i < opt.max_tokens; i++) {
    const int32_t next = sample(logits.first(n_ids), opt, rng);
    if (opt.stop_at_eos && eos && next == *eos) break;
    r.ids.push_back(next);
    if (opt.stream) {
      // Write what is new; a trailing U+FFFD may be half of a multi-byte character that the
      // next token completes, so it is held back.
      const std::string text = tok.decode(r.ids);
      size_t stable = text.size();
      while (stable >= 3 && text.compare(stable - 3, 3, "\xEF\xBF\xBD") == 0) stable -= 3;
      if (stable > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fwrite(text.data() + printed.size(), 1, stable - printed.size(), stdout);
        std::fflush(stdout);
        printed.assign(text, 0, stable);
      }
    }
    if (model.cache_length() >= max_len) {
      r.hit_max_seq_len = i + 1 < opt.max_tokens;
      break;
    }
    // Every generated token is fed, the last one too, so `seconds` holds one decode step per
    // token (as a longer generation would run).
    logits = model.decode_step(next);
  }
  r.seconds = seconds_since(t0);
  r.cpu_seconds = thread_cpu_seconds() - cpu0;
  r.text = tok.decode(r.ids);
  if (opt.stream) {
    if (r.text.size() > printed.size() && r.text.compare(0, printed.size(), printed) == 0)
      std::fwrite(r.text.data() + printed.size(), 1, r.text.size() - printed.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  r.tokens = int64_t(r.ids.size());
  r.tokens_per_s = r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0;
  const DecodeStats st = model.decode_stats();
  if (st.step_ns > 0) r.wait_fraction = double(st.wait_ns) / double(st.step_ns);
  const int64_t n_engram = int64_t(model.config().engram.layer_ids.size());
  if (st.steps > 0 && n_engram > 0) {
    r.mean_fetch_us = double(st.fetch_ns) / double(st.steps * n_engram) / 1e3;
    r.mean_ahead_us = double(st.ahead_ns) / double(st.steps) / 1e3;
  }
  if (tier.cached()) r.cache_hit_rate = tier.cached()->cache_stats().hit_rate();
  return r;
}

GenerateResult generate_text(const GenerateOptions& opt) {
  check_options(opt);
  set_compute_threads(opt.threads);
  const std::string dir = resolve_model_dir(opt.model);
  Model model = Model::load(dir);
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  if (opt.tables == "resident") return generate_with(model, tok, opt);
  const ExportedTables tables(model, opt.tables_file);  // outlives the store that reads it
  GenerateOptions served = opt;
  served.tables_file = tables.path();
  return generate_with(model, tok, served);
}

}  // namespace engram::cli
