// `engram generate`: text from a trained model with the KV-cache decode step, streamed to stdout
// as it is produced; tokens/s on stderr.
//
//   engram generate --model runs/base --prompt "The jury said" --max-tokens 64
//       [--temperature 0.8] [--top-k 40] [--top-p 0.95] [--seed 0]
// --model takes a model directory (with tokenizer.json) or a training folder (its `latest`).
// Sampling: logits / temperature -> softmax -> keep the top-k, then the smallest set of most
// likely tokens whose probability reaches top-p -> renormalize -> draw with a seeded
// mt19937_64 (53-bit uniforms, so a seed gives the same text everywhere). Temperature 0 is
// greedy. Generation stops at --max-tokens, at <|eos|> when the tokenizer has it, or when the
// model's max_seq_len positions are used (said on stderr).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "cli/commands.h"
#include "engram/error.h"
#include "engram/model.h"
#include "engram/tokenizer.h"
#include "engram/trainer.h"

namespace engram::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int64_t max_tokens = 64;
  float temperature = 0.8f;
  int64_t top_k = 40;
  float top_p = 0.95f;
  uint64_t seed = 0;
  int threads = 0;
};

int32_t sample(std::span<const float> logits, const GenerateArgs& a, std::mt19937_64& rng) {
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

void run_generate(const GenerateArgs& a) {
  set_compute_threads(a.threads);
  if (a.max_tokens < 0) fail(Errc::invalid_argument, "--max-tokens must be >= 0");
  if (!(a.top_p > 0.0f && a.top_p <= 1.0f))
    fail(Errc::invalid_argument, "--top-p must be in (0, 1], got ", a.top_p);
  const std::string dir = resolve_model_dir(a.model);
  Model model = Model::load(dir);
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  const std::vector<int32_t> prompt = tok.encode(a.prompt, false);
  if (prompt.empty()) fail(Errc::invalid_argument, "--prompt encodes to no tokens");
  const int64_t max_len = model.config().max_seq_len;
  if (int64_t(prompt.size()) >= max_len)
    fail(Errc::invalid_argument, "--prompt has ", prompt.size(),
         " tokens; the model's max_seq_len ", max_len, " leaves no room to generate");
  for (int32_t id : prompt) {
    if (id >= model.config().vocab_size)
      fail(Errc::mismatch, "prompt token id ", id, " is outside the model's vocab_size ",
           model.config().vocab_size);
  }
  const std::optional<int32_t> eos = tok.token_to_id("<|eos|>");
  std::mt19937_64 rng(a.seed);

  std::span<const float> logits;
  for (int32_t id : prompt) logits = model.decode_step(id);
  std::vector<int32_t> out;
  std::string printed;  // decoded text already written to stdout
  const auto t0 = std::chrono::steady_clock::now();
  bool hit_limit = false;
  for (int64_t i = 0; i < a.max_tokens; i++) {
    const int32_t next = sample(logits, a, rng);
    if (eos && next == *eos) break;
    out.push_back(next);
    // Decode the whole continuation and write what is new; a trailing U+FFFD may be half of a
    // multi-byte character that the next token completes, so it is held back.
    std::string text = tok.decode(out);
    size_t stable = text.size();
    while (stable >= 3 && text.compare(stable - 3, 3, "\xEF\xBF\xBD") == 0) stable -= 3;
    if (stable > printed.size() && text.compare(0, printed.size(), printed) == 0) {
      std::fwrite(text.data() + printed.size(), 1, stable - printed.size(), stdout);
      std::fflush(stdout);
      printed.assign(text, 0, stable);
    }
    if (model.cache_length() >= max_len) {
      hit_limit = i + 1 < a.max_tokens;
      break;
    }
    logits = model.decode_step(next);
  }
  const std::string text = tok.decode(out);
  if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0)
    std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (hit_limit)
    std::fprintf(stderr, "stopped at the model's max_seq_len (%lld positions)\n",
                 static_cast<long long>(max_len));
  std::fprintf(stderr, "%zu tokens in %.3f s: %.1f tokens/s\n", out.size(), s,
               s > 0 ? double(out.size()) / s : 0.0);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "sample text from a model (KV cache, streamed)");
  auto a = std::make_shared<GenerateArgs>();
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
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace engram::cli
