// generate / generate_text / ExportedTables (engram/generator.h): the decode loop, the text
// streaming, and the tier a call serves the Engram tables from (built by open_store).
#include "engram/generator.h"

#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "engram/tokenizer.h"
#include "util/clock.h"

namespace engram {

namespace {

constexpr TableTier kTiers[] = {TableTier::resident, TableTier::dram, TableTier::file,
                                TableTier::cache};

void check_options(const GenerateOptions& a) {
  check_sampling(a.sampling);
  if (a.max_tokens < 0) fail(Errc::invalid_argument, "max_tokens must be >= 0, got ", a.max_tokens);
  if (a.vocab_limit < 0)
    fail(Errc::invalid_argument, "vocab_limit must be >= 0, got ", a.vocab_limit);
  if (a.serve.fetch_threads < -1 || a.serve.fetch_threads > 64)
    fail(Errc::invalid_argument, "fetch_threads must be in -1..64, got ", a.serve.fetch_threads);
  if (a.serve.tier == TableTier::cache && a.serve.cache_bytes == 0)
    fail(Errc::invalid_argument, "the cache tier needs cache_bytes > 0");
}

// While alive: the model's Engram tables are served from the tier `opt` names; at the end, back
// to resident. Member order matters: a temporary export outlives the store reading it.
class ServedTables {
 public:
  ServedTables(Model& model, const ServeOptions& opt) : model_(model) {
    if (opt.tier == TableTier::resident) return;
    std::string path = opt.tables_file;
    if (path.empty()) path = exported_.emplace(model).path();
    StoreOptions so;
    so.tier = opt.tier == TableTier::dram ? StoreTier::dram : StoreTier::file;
    so.file.direct = opt.direct;
    if (opt.tier == TableTier::cache) {
      so.cache_bytes = opt.cache_bytes;
      so.cache_policy = CachePolicy::s3fifo;
    }
    opened_ = open_store(model.engram_table_sources(path), so);
    // One fetch worker per Engram layer: each layer's fetch starts at once, and no idle
    // threads compete with the compute for the cores.
    PrefetchOptions po;
    po.threads = opt.fetch_threads >= 0
                     ? unsigned(opt.fetch_threads)
                     : unsigned(std::max<size_t>(1, model.config().engram.layer_ids.size()));
    model.serve_engram_from(opened_.store, po);
  }
  ~ServedTables() { model_.serve_engram_resident(); }
  ServedTables(const ServedTables&) = delete;
  ServedTables& operator=(const ServedTables&) = delete;

  std::string describe() const { return opened_.store ? opened_.store->describe() : "resident"; }
  CachedStore* cache() const { return opened_.cache.get(); }

 private:
  Model& model_;
  std::optional<ExportedTables> exported_;
  OpenedStore opened_;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

void check_prompt(const Model& model, std::span<const int32_t> prompt) {
  if (prompt.empty()) fail(Errc::invalid_argument, "the prompt has no tokens");
  const int64_t max_len = model.config().max_seq_len;
  if (int64_t(prompt.size()) >= max_len)
    fail(Errc::invalid_argument, "the prompt has ", prompt.size(),
         " tokens; the model's max_seq_len ", max_len, " leaves no room to generate");
  const int64_t V = model.config().vocab_size;
  for (size_t i = 0; i < prompt.size(); i++) {
    if (prompt[i] < 0 || prompt[i] >= V)
      fail(Errc::out_of_range, "prompt token ", i, " has id ", prompt[i],
           ", outside the model's vocabulary [0, ", V, ")");
  }
}

}  // namespace

TableTier parse_table_tier(std::string_view name) {
  for (TableTier t : kTiers)
    if (name == table_tier_name(t)) return t;
  fail(Errc::invalid_argument, "table tier must be resident, dram, file or cache, got \"", name,
       "\"");
}

const char* table_tier_name(TableTier tier) {
  switch (tier) {
    case TableTier::resident:
      return "resident";
    case TableTier::dram:
      return "dram";
    case TableTier::file:
      return "file";
    case TableTier::cache:
      return "cache";
  }
  return "?";
}

GenerateResult generate(Model& model, std::span<const int32_t> prompt, const GenerateOptions& opt) {
  check_options(opt);
  check_prompt(model, prompt);
  const int64_t max_len = model.config().max_seq_len;
  const int64_t V = model.config().vocab_size;
  const size_t n_ids = size_t(opt.vocab_limit > 0 ? std::min(opt.vocab_limit, V) : V);
  std::mt19937_64 rng(opt.sampling.seed);

  ServedTables served(model, opt.serve);
  GenerateResult r;
  r.tier = served.describe();
  r.prompt_tokens = int64_t(prompt.size());
  model.reset_cache();

  auto t0 = std::chrono::steady_clock::now();
  std::span<const float> logits = model.decode_prompt(prompt);
  r.prompt_seconds = seconds_since(t0);
  model.reset_decode_stats();
  if (served.cache()) served.cache()->reset_cache_counters();

  t0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  for (int64_t i = 0; i < opt.max_tokens; i++) {
    const int32_t next = sample_token(logits.first(n_ids), opt.sampling, rng);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), next) != opt.stop_ids.end()) {
      r.stop_id = next;
      break;
    }
    r.ids.push_back(next);
    if (opt.on_token && !opt.on_token(next)) break;
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
  r.tokens = int64_t(r.ids.size());
  r.tokens_per_s = r.seconds > 0 ? double(r.tokens) / r.seconds : 0.0;
  const DecodeStats st = model.decode_stats();
  if (st.step_ns > 0) r.wait_fraction = double(st.wait_ns) / double(st.step_ns);
  const int64_t n_engram = int64_t(model.config().engram.layer_ids.size());
  if (st.steps > 0 && n_engram > 0) {
    r.mean_fetch_us = double(st.fetch_ns) / double(st.steps * n_engram) / 1e3;
    r.mean_ahead_us = double(st.ahead_ns) / double(st.steps) / 1e3;
  }
  if (served.cache()) r.cache_hit_rate = served.cache()->cache_stats().hit_rate();
  return r;
}

GenerateResult generate_text(Model& model, const Tokenizer& tok, const std::string& prompt,
                             const GenerateOptions& options, const TextOptions& text) {
  const std::vector<int32_t> ids = tok.encode(prompt, false);
  if (ids.empty()) fail(Errc::invalid_argument, "the prompt \"", prompt, "\" encodes to no tokens");
  const int64_t V = model.config().vocab_size;
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] >= V)
      fail(Errc::mismatch, "prompt token ", i, " has id ", ids[i],
           ", outside the model's vocab_size ", V, " (tokenizer and model do not match)");
  }
  GenerateOptions opt = options;
  // A model's vocab_size may round the tokenizer's up; ids past the tokenizer's never occur in
  // training text and cannot be decoded, so they are never sampled.
  opt.vocab_limit = std::min(opt.vocab_limit > 0 ? opt.vocab_limit : V, tok.vocab_size());
  if (text.stop_at_eos) {
    if (const std::optional<int32_t> eos = tok.token_to_id("<|eos|>")) opt.stop_ids.push_back(*eos);
  }
  std::vector<int32_t> so_far;
  std::string emitted;  // text already handed to on_text
  if (text.on_text) {
    opt.on_token = [&](int32_t id) {
      so_far.push_back(id);
      // Hand on what is new; a trailing U+FFFD may be half of a multi-byte character that the
      // next token completes, so it is held back.
      const std::string t = tok.decode(so_far);
      size_t stable = t.size();
      while (stable >= 3 && t.compare(stable - 3, 3, "\xEF\xBF\xBD") == 0) stable -= 3;
      if (stable > emitted.size() && t.compare(0, emitted.size(), emitted) == 0) {
        text.on_text(std::string_view(t).substr(emitted.size(), stable - emitted.size()));
        emitted.assign(t, 0, stable);
      }
      return options.on_token ? options.on_token(id) : true;
    };
  }
  GenerateResult r = generate(model, ids, opt);
  r.text = tok.decode(r.ids);
  if (text.on_text && r.text.size() > emitted.size() &&
      r.text.compare(0, emitted.size(), emitted) == 0)
    text.on_text(std::string_view(r.text).substr(emitted.size()));
  return r;
}

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

}  // namespace engram
