// generate (engram/generator.h) on a small random model: greedy decoding is the argmax of the
// model's own logits step by step; sampling is sample_token fed by one mt19937_64 stream; stop
// ids, the per-token callback, vocab_limit and max_seq_len end or bound a generation as promised;
// every table tier gives the same tokens; bad options and prompts are refused with a message; the
// model is back on its resident tables after every call, failed ones included.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engram/error.h"
#include "engram/generator.h"
#include "engram/model.h"
#include "test_helpers.h"

namespace engram {
namespace {

using testing::error_of;

constexpr const char* kConfig = R"({
  "vocab_size": 97, "hidden_size": 32, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2,
  "ffn_hidden": 48, "max_seq_len": 40,
  "engram": {"layer_ids": [0, 2], "engram_vocab_size": [211, 223], "max_ngram_size": 3,
             "n_embed_per_ngram": 16, "n_head_per_ngram": 2, "pad_id": 0, "seed": 0,
             "kernel_size": 4}
})";

// Every parameter redrawn with a large spread, so logits differ clearly between ids and steps
// (the initial 0.02-scale weights give nearly flat logits) and the Engram rows matter.
Model test_model() {
  Model m(ModelConfig::from_json(kConfig), 1);
  uint64_t seed = 10;
  for (const ParamInfo& info : m.param_infos()) {
    if (info.name.find("norm") != std::string::npos) continue;
    std::span<float> w = m.param(info.name);
    const std::vector<float> r = testing::randn(w.size(), seed++, 0.3f);
    std::copy(r.begin(), r.end(), w.begin());
  }
  return m;
}

const std::vector<int32_t> kPrompt = {5, 17, 3, 42, 8};

GenerateOptions sampled(uint64_t seed = 5) {
  GenerateOptions o;
  o.max_tokens = 24;
  o.sampling = SamplingOptions{0.9f, 20, 0.9f, seed};
  return o;
}

int32_t argmax(std::span<const float> v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(Generator, GreedyIsTheArgmaxOfTheModelsLogits) {
  Model m = test_model();
  GenerateOptions o;
  o.max_tokens = 20;
  o.sampling.temperature = 0.0f;
  const GenerateResult r = generate(m, kPrompt, o);

  m.reset_cache();
  std::span<const float> logits = m.decode_prompt(kPrompt);
  std::vector<int32_t> want;
  for (int i = 0; i < 20; i++) {
    want.push_back(argmax(logits));
    logits = m.decode_step(want.back());
  }
  EXPECT_EQ(r.ids, want);
  EXPECT_EQ(r.tokens, 20);
  EXPECT_EQ(r.prompt_tokens, int64_t(kPrompt.size()));
  EXPECT_EQ(r.tier, "resident");
  // Not one token repeated throughout: the test would not notice a generator that ignores logits.
  EXPECT_GT(std::set<int32_t>(want.begin(), want.end()).size(), 3u);
}

TEST(Generator, SamplingIsSampleTokenOverOneSeededStream) {
  Model m = test_model();
  const GenerateOptions o = sampled(5);
  const GenerateResult r = generate(m, kPrompt, o);

  m.reset_cache();
  std::mt19937_64 rng(5);
  std::span<const float> logits = m.decode_prompt(kPrompt);
  std::vector<int32_t> want;
  for (int i = 0; i < 24; i++) {
    want.push_back(sample_token(logits, o.sampling, rng));
    logits = m.decode_step(want.back());
  }
  EXPECT_EQ(r.ids, want);
  EXPECT_EQ(generate(m, kPrompt, o).ids, want);           // the same seed again
  EXPECT_NE(generate(m, kPrompt, sampled(6)).ids, want);  // another seed
}

TEST(Generator, StopIdsEndTheGenerationBeforeTheStopId) {
  Model m = test_model();
  const GenerateResult full = generate(m, kPrompt, sampled());
  ASSERT_EQ(full.stop_id, -1);
  // A token that first occurs a few steps in.
  size_t k = 3;
  while (k < full.ids.size() &&
         std::find(full.ids.begin(), full.ids.begin() + k, full.ids[k]) != full.ids.begin() + k)
    k++;
  ASSERT_LT(k, full.ids.size());
  GenerateOptions o = sampled();
  int32_t unseen = 0;  // a second stop id that never comes up
  while (std::ranges::find(full.ids, unseen) != full.ids.end()) unseen++;
  o.stop_ids = {unseen, full.ids[k]};
  const GenerateResult r = generate(m, kPrompt, o);
  EXPECT_EQ(r.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + k));
  EXPECT_EQ(r.stop_id, full.ids[k]);
  EXPECT_EQ(r.tokens, int64_t(k));
}

TEST(Generator, CallbackSeesEveryTokenInOrderAndCanStop) {
  Model m = test_model();
  GenerateOptions o = sampled();
  std::vector<int32_t> seen;
  o.on_token = [&](int32_t id) {
    seen.push_back(id);
    return true;
  };
  const GenerateResult r = generate(m, kPrompt, o);
  EXPECT_EQ(seen, r.ids);
  ASSERT_EQ(r.ids.size(), 24u);

  seen.clear();
  o.on_token = [&](int32_t id) {
    seen.push_back(id);
    return seen.size() < 7;
  };
  const GenerateResult stopped = generate(m, kPrompt, o);
  EXPECT_EQ(stopped.ids, std::vector<int32_t>(r.ids.begin(), r.ids.begin() + 7));
  EXPECT_EQ(seen, stopped.ids);

  // A stop id is not emitted, so the callback never sees it.
  seen.clear();
  o.on_token = [&](int32_t id) {
    seen.push_back(id);
    return true;
  };
  o.stop_ids = {r.ids[0]};
  EXPECT_TRUE(generate(m, kPrompt, o).ids.empty());
  EXPECT_TRUE(seen.empty());
}

TEST(Generator, VocabLimitBoundsTheIds) {
  Model m = test_model();
  GenerateOptions o = sampled();
  o.sampling = SamplingOptions{5.0f, 0, 1.0f, 3};  // nearly flat: every id is likely
  o.max_tokens = 30;
  o.vocab_limit = 10;
  const GenerateResult r = generate(m, kPrompt, o);
  ASSERT_EQ(r.ids.size(), 30u);
  for (int32_t id : r.ids) EXPECT_LT(id, 10);
  o.vocab_limit = 0;
  EXPECT_TRUE(
      std::ranges::any_of(generate(m, kPrompt, o).ids, [](int32_t id) { return id >= 10; }));
}

TEST(Generator, StopsWhenThePositionsRunOut) {
  Model m = test_model();
  std::vector<int32_t> prompt(37, 4);  // max_seq_len 40
  GenerateOptions o = sampled();
  o.max_tokens = 10;
  const GenerateResult r = generate(m, prompt, o);
  // Tokens 1-3 are fed (positions 37-39); the 4th is drawn from the last position's logits.
  EXPECT_EQ(r.tokens, 4);
  EXPECT_TRUE(r.hit_max_seq_len);
  o.max_tokens = 4;
  EXPECT_FALSE(generate(m, prompt, o).hit_max_seq_len);
}

TEST(Generator, EveryTierGivesTheSameTokens) {
  Model m = test_model();
  const GenerateResult resident = generate(m, kPrompt, sampled());
  const ExportedTables tables(m);
  struct Case {
    TableTier tier;
    bool direct;
    int fetch_threads;
    bool exported;
  };
  for (const Case& c :
       {Case{TableTier::dram, true, -1, true}, Case{TableTier::dram, true, 0, true},
        Case{TableTier::file, true, -1, true}, Case{TableTier::file, false, 0, true},
        Case{TableTier::cache, true, -1, true}, Case{TableTier::cache, false, 1, false},
        Case{TableTier::file, true, 2, false}}) {
    GenerateOptions o = sampled();
    o.serve.tier = c.tier;
    o.serve.direct = c.direct;
    o.serve.fetch_threads = c.fetch_threads;
    o.serve.cache_bytes = 4096;
    if (c.exported) o.serve.tables_file = tables.path();
    const GenerateResult r = generate(m, kPrompt, o);
    const std::string what = std::string(table_tier_name(c.tier)) + " " + r.tier;
    EXPECT_EQ(r.ids, resident.ids) << what;
    EXPECT_NE(r.tier, "resident") << what;
    EXPECT_FALSE(m.engram_served()) << what;
    if (c.tier == TableTier::cache) {
      EXPECT_NE(r.tier.find("cache"), std::string::npos) << what;
      EXPECT_GT(r.cache_hit_rate, 0.0) << what;  // the prompt's rows are hit again
    }
  }
}

TEST(Generator, ExportedTablesKeepsAGivenPathAndRemovesATemporaryOne) {
  Model m = test_model();
  std::string temporary;
  {
    const ExportedTables t(m);
    temporary = t.path();
    EXPECT_TRUE(std::filesystem::exists(temporary));
  }
  EXPECT_FALSE(std::filesystem::exists(temporary));
  const std::string kept =
      (std::filesystem::temp_directory_path() /
       ("engram_generator_test_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  { const ExportedTables t(m, kept); }
  EXPECT_TRUE(std::filesystem::exists(kept));
  std::filesystem::remove(kept);
}

TEST(Generator, BadOptionsAndPromptsAreRefused) {
  Model m = test_model();
  const auto refused = [&](const std::vector<int32_t>& prompt, const GenerateOptions& o) {
    Errc code{};
    const std::string msg = error_of([&] { generate(m, prompt, o); }, &code);
    EXPECT_FALSE(m.engram_served());
    return msg;
  };
  GenerateOptions o = sampled();
  EXPECT_NE(refused({}, o).find("no tokens"), std::string::npos);
  EXPECT_NE(refused(std::vector<int32_t>(40, 1), o).find("max_seq_len 40"), std::string::npos);
  EXPECT_NE(refused({1, 97}, o).find("id 97"), std::string::npos);
  EXPECT_NE(refused({-1}, o).find("id -1"), std::string::npos);
  o.max_tokens = -1;
  EXPECT_NE(refused(kPrompt, o).find("max_tokens"), std::string::npos);
  o = sampled();
  o.sampling.top_p = 0.0f;
  EXPECT_NE(refused(kPrompt, o).find("top_p"), std::string::npos);
  o = sampled();
  o.serve.tier = TableTier::cache;
  o.serve.cache_bytes = 0;
  EXPECT_NE(refused(kPrompt, o).find("cache_bytes"), std::string::npos);
  o = sampled();
  o.serve.tier = TableTier::file;
  o.serve.tables_file = "/nonexistent/engram-tables.safetensors";
  EXPECT_NE(refused(kPrompt, o).find("/nonexistent/engram-tables.safetensors"), std::string::npos);
  o = sampled();
  o.serve.fetch_threads = 65;
  EXPECT_NE(refused(kPrompt, o).find("fetch_threads"), std::string::npos);
}

TEST(Generator, ACallbackErrorLeavesTheModelResident) {
  Model m = test_model();
  GenerateOptions o = sampled();
  o.serve.tier = TableTier::dram;
  o.on_token = [](int32_t) -> bool { throw std::runtime_error("stop here"); };
  EXPECT_THROW(generate(m, kPrompt, o), std::runtime_error);
  EXPECT_FALSE(m.engram_served());
  o.on_token = nullptr;
  EXPECT_EQ(generate(m, kPrompt, o).ids, generate(m, kPrompt, sampled()).ids);
}

TEST(Generator, TierNames) {
  for (TableTier t : {TableTier::resident, TableTier::dram, TableTier::file, TableTier::cache})
    EXPECT_EQ(parse_table_tier(table_tier_name(t)), t);
  EXPECT_NE(error_of([] { parse_table_tier("ssd"); }).find("\"ssd\""), std::string::npos);
}

}  // namespace
}  // namespace engram
