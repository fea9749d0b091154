// Tests of engram::Model and the optimizers (engram/model.h, engram/optim.h): config parsing,
// parameter layout and names, whole-model gradients against finite differences (dense and MoE),
// KV-cache decode against the full forward, determinism, AdamW / sparse row Adam / schedule.
// Parity with a PyTorch implementation is in tests/python/test_model_parity.py.
#include <cblas.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/optim.h"
#include "engram/token_file.h"

namespace engram {
namespace {

// These shapes are tiny: thread start-up and spinning would cost 100x the arithmetic on a busy
// machine. The threaded kernel paths are covered by tests/nn/transformer_kernels_test.cpp and the
// Python tests.
const bool single_threaded = [] {
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  return true;
}();

enum Kind { kDense = 0, kMoe = 1, kEngram = 2 };

ModelConfig tiny_config(int kind) {
  const bool moe = kind == kMoe;
  ModelConfig c;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 20;
  c.max_seq_len = 12;
  c.rope_theta = 100.0f;
  if (moe) {
    c.moe.n_experts = 3;
    c.moe.top_k = 2;
    c.moe.expert_ffn_hidden = 8;
    c.moe.shared_ffn_hidden = 6;
    c.moe.aux_loss_coef = 0.1f;
  }
  if (kind == kEngram) {
    c.engram.layer_ids = {1};
    c.engram.vocab_size_per_ngram = {31, 37};
    c.engram.max_ngram = 3;
    c.engram.n_embed_per_ngram = 8;
    c.engram.n_head = 2;
    c.engram.pad_id = 0;
    c.engram.seed = 0;
    c.engram.kernel_size = 4;
  }
  return c;
}

// Every gradient of the last backward by parameter name (Engram tables densified).
std::map<std::string, std::vector<float>> all_grads(Model& m) {
  std::map<std::string, std::vector<float>> out;
  for (const ParamInfo& info : m.param_infos()) {
    if (info.name.ends_with("multi_head_embedding.embedding.weight")) continue;
    auto g = m.grad(info.name);
    out[info.name].assign(g.begin(), g.end());
  }
  for (const EngramTableView& t : m.engram_tables()) {
    std::vector<float> dense(t.rows * t.width, 0.0f);
    for (size_t r = 0; r < t.grad_rows.size(); r++) {
      for (int64_t j = 0; j < t.width; j++) {
        dense[t.grad_rows[r] * t.width + j] = t.grad_values[r * t.width + j];
      }
    }
    out[t.name] = std::move(dense);
  }
  return out;
}

// Widens the init so that gradients are well above fp32 noise.
void randomize(Model& m, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  for (const ParamInfo& info : m.param_infos()) {
    auto w = m.param(info.name);
    for (float& x : w) x = info.shape.size() == 1 ? 1.0f + 0.1f * d(rng) / scale : d(rng);
  }
}

std::vector<int32_t> tokens(int64_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> out(n);
  for (auto& t : out) t = static_cast<int32_t>(rng() % V);
  return out;
}

TEST(ModelConfig, ParsesValidatesAndRoundTrips) {
  const std::string text = R"({"vocab_size": 100, "hidden_size": 32, "n_layers": 2, "n_heads": 4,
      "ffn_hidden": 64, "max_seq_len": 16, "rope_theta": 500000.0,
      "moe": {"n_experts": 4, "top_k": 1, "expert_ffn_hidden": 16}})";
  ModelConfig c = ModelConfig::from_json(text);
  EXPECT_EQ(c.n_kv_heads, 4);  // defaults to n_heads
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.moe.n_experts, 4);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  ModelConfig again = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(again.to_json(), c.to_json());

  auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      ModelConfig::from_json(json, "cfg.json");
      ADD_FAILURE() << "no error for " << json;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"vocab_size": 10, "hidden_size": 30, "n_layers": 1, "n_heads": 4,
                   "ffn_hidden": 8, "max_seq_len": 4})",
               "n_heads");
  expect_error(R"({"vocab_size": "ten"})", "vocab_size");
  expect_error(R"({"vocab_size": 10, "colour": 1})", "colour");
  expect_error(R"({"vocab_size": 10, "hidden_size": 8, "n_layers": 1, "n_heads": 2,
                   "ffn_hidden": 8, "max_seq_len": 4, "engram": {"layer_ids": [3]}})",
               "layer 3");
  expect_error("[1, 2", "invalid JSON");
  ModelConfig hc2 = tiny_config(kEngram);
  hc2.engram.hc_mult = 2;
  EXPECT_THROW(Model m(hc2), Error);
  ModelConfig wrong = tiny_config(kEngram);
  wrong.engram.vocab_size_per_ngram = {31};  // max_ngram_size 3 needs two
  EXPECT_THROW(Model m(wrong), Error);
  expect_error(R"({"vocab_size": 10, "hidden_size": 8, "n_layers": 1, "n_heads": 2,
                   "ffn_hidden": 8, "max_seq_len": 4, "engram": {"layer_ids": [0],
                   "engram_vocab_size": [31, 37], "max_ngram": 3}})",
               "max_ngram");
}

// Sizes from a config file are bounded by name and multiplied in checked arithmetic; what would
// not fit in memory is refused with an estimate before anything is allocated.
TEST(ModelConfig, AbsurdSizesAreRefusedByKeyBeforeAllocation) {
  const nlohmann::json base = nlohmann::json::parse(R"({"vocab_size": 100, "hidden_size": 32,
      "n_layers": 2, "n_heads": 4, "ffn_hidden": 64, "max_seq_len": 16})");
  auto expect_error = [](const nlohmann::json& j, const std::string& needle) {
    try {
      ModelConfig::from_json(j.dump(), "cfg.json");
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  };
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = base;
    j[key] = std::move(v);
    return j;
  };
  expect_error(with("ffn_hidden", 4611686018427387904LL), "ffn_hidden");
  expect_error(with("hidden_size", int64_t{1} << 40), "hidden_size");
  expect_error(with("n_layers", int64_t{1} << 40), "n_layers");
  expect_error(with("max_seq_len", int64_t{1} << 40), "max_seq_len");
  // Each within its bound, together far beyond any machine: the estimate names the largest term.
  expect_error(with("vocab_size", INT32_MAX), "vocab_size x hidden_size");
  nlohmann::json big = base;
  big["hidden_size"] = int64_t{1} << 20;
  big["ffn_hidden"] = int64_t{1} << 24;
  big["n_heads"] = 16;
  big["n_layers"] = 1024;
  expect_error(big, "ffn_hidden");
  nlohmann::json moe = base;
  moe["moe"] = {{"n_experts", 65536}, {"top_k", 2}, {"expert_ffn_hidden", int64_t{1} << 24}};
  expect_error(moe, "moe.n_experts");
  moe["moe"]["n_experts"] = int64_t{1} << 20;
  expect_error(moe, "moe.n_experts");
  nlohmann::json eng = base;
  eng["engram"] = {{"layer_ids", {0}},
                   {"engram_vocab_size", {int64_t{1} << 55, 37}},
                   {"max_ngram_size", 3},
                   {"n_embed_per_ngram", 1 << 20},
                   {"n_head_per_ngram", 4},
                   {"pad_id", 0},
                   {"seed", 0},
                   {"kernel_size", 4}};
  expect_error(eng, "engram_vocab_size");
  eng["engram"]["engram_vocab_size"] = {int64_t{1} << 34, 37};
  eng["engram"]["n_embed_per_ngram"] = 64;
  expect_error(eng, "engram_vocab_size");
  eng["engram"]["engram_vocab_size"] = {31, 37};
  eng["engram"]["n_head_per_ngram"] = 100000;
  expect_error(eng, "n_head_per_ngram");
  eng["engram"]["n_head_per_ngram"] = 4;
  eng["engram"]["n_embed_per_ngram"] = int64_t{1} << 30;
  expect_error(eng, "n_embed_per_ngram");
  // An engram object without layers would train a model without Engram silently.
  eng["engram"]["n_embed_per_ngram"] = 64;
  eng["engram"]["layer_ids"] = nlohmann::json::array();
  expect_error(eng, "layer_ids");

  // The estimate grows with what training keeps per token.
  const ModelConfig c = ModelConfig::from_json(base.dump());
  EXPECT_GT(c.train_bytes(8, 16), c.model_bytes());
  EXPECT_GT(c.train_bytes(16, 16), c.train_bytes(8, 16));
  EXPECT_EQ(c.train_bytes(8, 16),
            c.model_bytes() + 8 * c.param_count() + c.activation_bytes(8, 16));  // + AdamW
  EXPECT_THROW(c.train_bytes(int64_t{1} << 40, int64_t{1} << 30), Error);
}

// The engram object is typed in memory; on disk it keeps the form configs/ and existing runs use.
TEST(ModelConfig, EngramObjectIsTypedAndWrittenBackInTheSameForm) {
  for (const char* file : {"engram_d128.json", "baseline_d128.json"}) {
    const std::string path = std::string(ENGRAM_SOURCE_DIR) + "/configs/" + file;
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const nlohmann::json disk = nlohmann::json::parse(text);
    const ModelConfig c = ModelConfig::from_json(text, path);
    const nlohmann::json written = nlohmann::json::parse(c.to_json());
    EXPECT_EQ(written.contains("engram"), disk.contains("engram")) << file;
    if (!disk.contains("engram")) continue;
    EXPECT_EQ(written["engram"], disk["engram"]) << file;
    EXPECT_EQ(c.engram.layer_ids, (std::vector<int64_t>{1}));
    EXPECT_EQ(c.engram.vocab_size_per_ngram, (std::vector<int64_t>{16384, 16384}));
    EXPECT_EQ(c.engram.max_ngram, 3);
    EXPECT_EQ(c.engram.n_embed_per_ngram, 128);
    EXPECT_EQ(c.engram.n_head, 4);
    EXPECT_EQ(c.engram.pad_id, 2);
    EXPECT_EQ(c.engram.kernel_size, 4);
    EXPECT_TRUE(c.engram.compress_tokens);
  }
}

TEST(Model, ParametersHaveHuggingFaceNamesAndTheDecayRule) {
  Model m(tiny_config(kDense));
  const ParamInfo& q = m.param_info("model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{16, 16}));
  EXPECT_TRUE(q.weight_decay);
  EXPECT_EQ(m.param_info("model.layers.1.self_attn.k_proj.weight").shape,
            (std::vector<int64_t>{8, 16}));
  EXPECT_FALSE(m.param_info("model.embed_tokens.weight").weight_decay);
  EXPECT_FALSE(m.param_info("model.norm.weight").weight_decay);
  EXPECT_TRUE(m.param_info("lm_head.weight").weight_decay);
  int64_t total = 0;
  for (const ParamInfo& info : m.param_infos()) {
    EXPECT_EQ(info.offset, total) << info.name;  // one contiguous allocation, no gaps
    total += info.numel;
  }
  EXPECT_EQ(total, static_cast<int64_t>(m.params().size()));
  EXPECT_THROW(m.param("lm_head.bias"), Error);

  ModelConfig tied = tiny_config(kMoe);
  tied.tie_word_embeddings = true;
  Model t(tied);
  EXPECT_THROW(t.param_info("lm_head.weight"), Error);
  EXPECT_EQ(t.param_info("model.layers.0.mlp.experts.2.down_proj.weight").shape,
            (std::vector<int64_t>{16, 8}));
}

class ModelGradTest : public ::testing::TestWithParam<int> {};

// loss(params) by finite differences against backward(), on sampled coordinates of every tensor.
// Tolerance: |fd - an| <= 3e-2 * max(|fd|, |an|) + 1e-3 with central differences, eps = 1e-2
// (fp32 forwards: the loss carries ~1e-6 relative noise). MoE routing is piecewise: where a nudge
// flips a top-k choice the loss has a kink, seen as one-sided slopes that disagree; such
// coordinates are skipped, and at most a tenth of them may be.
TEST_P(ModelGradTest, WholeModelGradientsMatchFiniteDifferences) {
  const bool moe = GetParam() == kMoe;
  ModelConfig c = tiny_config(GetParam());
  Model m(c, 1);
  randomize(m, 2, 0.3f);
  const int64_t B = 2, T = 6;
  auto ids = tokens(B * T, c.vocab_size, 3);
  auto targets = tokens(B * T, c.vocab_size, 4);
  targets[5] = -1;
  const double l0 = m.forward(ids.data(), targets.data(), B, T);
  m.zero_grad();
  m.backward();
  auto grads = all_grads(m);
  std::map<std::string, std::vector<int64_t>> coords;  // Engram tables: the rows read
  for (const EngramTableView& t : m.engram_tables()) {
    ASSERT_FALSE(t.grad_rows.empty());
    for (size_t r = 0; r < t.grad_rows.size(); r += 3) {
      coords[t.name].push_back(t.grad_rows[r] * t.width + static_cast<int64_t>(r) % t.width);
    }
  }
  const float eps = 1e-2f;
  int checked = 0, kinks = 0;
  for (const ParamInfo& info : m.param_infos()) {
    auto w = m.param(info.name);
    std::vector<int64_t> where = coords[info.name];
    if (where.empty()) {
      for (int64_t i = 0; i < info.numel; i += std::max<int64_t>(1, info.numel / 6)) {
        where.push_back(i);
      }
    }
    for (int64_t i : where) {
      const float orig = w[i];
      w[i] = orig + eps;
      const double lp = m.forward(ids.data(), targets.data(), B, T);
      w[i] = orig - eps;
      const double lm = m.forward(ids.data(), targets.data(), B, T);
      w[i] = orig;
      const double right = (lp - l0) / eps, left = (l0 - lm) / eps;
      if (std::abs(right - left) > 0.5 * std::max(std::abs(right), std::abs(left)) + 0.05) {
        kinks++;
        continue;
      }
      const double fd = (lp - lm) / (2.0 * eps);
      const double an = grads.at(info.name)[i];
      checked++;
      EXPECT_LE(std::abs(fd - an), 3e-2 * std::max(std::abs(fd), std::abs(an)) + 1e-3)
          << info.name << "[" << i << "]: fd " << fd << " vs analytic " << an;
    }
  }
  EXPECT_GT(checked, 50);
  EXPECT_LE(kinks * 10, checked) << kinks << " coordinates sit on a routing change";
  if (!moe) {
    EXPECT_EQ(kinks, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(DenseMoeEngram, ModelGradTest, ::testing::Values(kDense, kMoe, kEngram));

class ModelDecodeTest : public ::testing::TestWithParam<int> {};

TEST_P(ModelDecodeTest, IncrementalDecodeLogitsEqualTheFullForward) {
  ModelConfig c = tiny_config(GetParam());
  Model m(c, 5);
  randomize(m, 6, 0.2f);
  const int64_t T = c.max_seq_len;
  auto ids = tokens(T, c.vocab_size, 7);
  m.forward(ids.data(), 1, T);
  std::vector<float> full(m.logits().begin(), m.logits().end());
  m.reset_cache();
  for (int64_t t = 0; t < T; t++) {
    auto step = m.decode_step(ids[t]);
    for (int64_t v = 0; v < c.vocab_size; v++) {
      ASSERT_NEAR(step[v], full[t * c.vocab_size + v], 1e-4f) << "position " << t << " token " << v;
    }
  }
  EXPECT_EQ(m.cache_length(), T);
  EXPECT_THROW(m.decode_step(ids[0]), Error);  // cache full
  m.reset_cache();
  EXPECT_THROW(m.decode_step(static_cast<int32_t>(c.vocab_size)), Error);
}

INSTANTIATE_TEST_SUITE_P(DenseMoeEngram, ModelDecodeTest, ::testing::Values(kDense, kMoe, kEngram));

TEST(Model, TrainingIsDeterministicForASeedAndLearns) {
  auto run = [](uint64_t seed) {
    ModelConfig c = tiny_config(kMoe);
    Model m(c, seed);
    AdamW opt(m.param_spans(), AdamWOptions{});
    LrSchedule sched{1e-2f, 1e-3f, 3, 20};
    std::vector<float> losses;
    auto ids = tokens(2 * 10, c.vocab_size, 8);
    auto targets = ids;  // predict the current token: learnable quickly
    for (int64_t step = 0; step < 20; step++) {
      losses.push_back(m.forward(ids.data(), targets.data(), 2, 10));
      m.zero_grad();
      m.backward();
      m.clip_grad_norm(1.0f);
      opt.step(sched.at(step));
    }
    return losses;
  };
  auto a = run(11), b = run(11), c = run(12);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_LT(a.back(), 0.5f * a.front());
}

TEST(Model, EngramModelTrainsWithSparseTableUpdatesDeterministically) {
  auto run = [](std::vector<float>* table_out) {
    ModelConfig c = tiny_config(kEngram);
    Model m(c, 3);
    AdamW opt(m.param_spans(), AdamWOptions{});
    EngramTableAdam table_opt(m, 5.0f);
    auto ids = tokens(2 * 10, c.vocab_size, 9);
    std::vector<float> losses;
    for (int step = 0; step < 15; step++) {
      losses.push_back(m.forward(ids.data(), ids.data(), 2, 10));
      m.zero_grad();
      m.backward();
      m.clip_grad_norm(1.0f);
      opt.step(1e-2f);
      table_opt.step(1e-2f);
    }
    auto t = m.engram_tables().at(0);
    table_out->assign(t.table, t.table + t.rows * t.width);
    return losses;
  };
  std::vector<float> t1, t2;
  auto a = run(&t1), b = run(&t2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(t1, t2);
  EXPECT_LT(a.back(), 0.5f * a.front());
  // Rows never read keep their initial values: compare against a fresh model's table.
  Model fresh(tiny_config(kEngram), 3);
  auto t0 = fresh.engram_tables().at(0);
  auto ids = tokens(2 * 10, fresh.config().vocab_size, 9);
  auto hashed = fresh.engram_hash_ids(1, ids.data(), 2, 10);
  const int64_t cols = static_cast<int64_t>(hashed.size()) / 20;
  int64_t changed = 0, unchanged_unused = 0;
  for (int64_t r = 0; r < t0.rows; r++) {
    bool same = true;
    for (int64_t j = 0; j < t0.width; j++)
      same &= t0.table[r * t0.width + j] == t1[r * t0.width + j];
    changed += !same;
    unchanged_unused += same;
  }
  EXPECT_GT(changed, 0);
  EXPECT_LE(changed, 20 * cols);  // at most one row per (position, column)
  EXPECT_GT(unchanged_unused, 0);
}

TEST(Model, ClipGradNormScalesEveryGradientTablesIncludedInPlace) {
  ModelConfig c = tiny_config(kEngram);
  Model m(c, 5);
  randomize(m, 6, 0.3f);
  auto ids = tokens(2 * 10, c.vocab_size, 7);
  m.forward(ids.data(), ids.data(), 2, 10);
  m.zero_grad();
  m.backward();
  const auto before = all_grads(m);
  double ss = 0.0;
  for (const auto& [name, g] : before) {
    for (float x : g) ss += double(x) * x;
  }
  const double max_norm = 0.25 * std::sqrt(ss);
  EXPECT_NEAR(m.clip_grad_norm(static_cast<float>(max_norm)), std::sqrt(ss), 1e-5 * std::sqrt(ss));
  const double scale = max_norm / (std::sqrt(ss) + 1e-6);
  const auto after = all_grads(m);
  ASSERT_EQ(after.size(), before.size());
  ASSERT_TRUE(after.contains(engram_table_param_name(1)));
  for (const auto& [name, g] : before) {
    const std::vector<float>& got = after.at(name);
    for (size_t i = 0; i < g.size(); i++) {
      ASSERT_NEAR(got[i], g[i] * scale, 1e-6 * std::abs(g[i]) + 1e-12) << name << " [" << i << "]";
    }
  }
}

TEST(Model, SavesAndLoadsAHuggingFaceStyleDirectory) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("engram_model_test_" + std::to_string(::getpid())))
          .string();
  ModelConfig c = tiny_config(kEngram);
  Model m(c, 21);
  randomize(m, 22, 0.2f);
  m.save(dir);
  Model back = Model::load(dir);
  EXPECT_EQ(back.config().to_json(), c.to_json());
  auto ids = tokens(2 * 8, c.vocab_size, 23);
  EXPECT_EQ(m.forward(ids.data(), ids.data(), 2, 8), back.forward(ids.data(), ids.data(), 2, 8));
  for (const ParamInfo& info : m.param_infos()) {
    auto a = m.param(info.name), b = back.param(info.name);
    ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << info.name;
  }
  // A config that implies other shapes than the file holds is refused, naming the tensor.
  ModelConfig wider = c;
  wider.ffn_hidden = 24;
  { std::ofstream(dir + "/config.json") << wider.to_json(); }
  try {
    Model::load(dir);
    ADD_FAILURE() << "loaded a mismatched checkpoint";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_NE(std::string(e.what()).find("mlp.gate_proj.weight"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(Model::load(dir), Error);
}

// Every load verifies what --resume verifies (the recorded checksum), refuses non-finite weights
// by tensor, and refuses a config.json that hashes n-grams otherwise than the weights were made.
TEST(Model, LoadVerifiesChecksumFiniteWeightsAndHashingParameters) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("engram_model_id_" + std::to_string(::getpid())))
          .string();
  const ModelConfig c = tiny_config(kEngram);
  Model m(c, 5);
  auto expect_refused = [&](const std::string& needle, const std::string& also = "") {
    try {
      Model::load(dir);
      ADD_FAILURE() << "loaded; expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(also), std::string::npos) << e.what();
    }
  };
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto record_checksum = [&] {
    const std::string bytes = slurp(dir + "/model.safetensors");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(fnv1a64(
                      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))));
    std::ofstream(dir + "/trainer_state.json")
        << nlohmann::json{{"checksum.model.safetensors", hex}}.dump();
  };

  // Another Engram seed in config.json than the weights were trained with: both sides named.
  m.save(dir);
  ModelConfig reseeded = c;
  reseeded.engram.seed = c.engram.seed + 1;
  { std::ofstream(dir + "/config.json") << reseeded.to_json(); }
  expect_refused("\"seed\":" + std::to_string(reseeded.engram.seed),
                 "\"seed\":" + std::to_string(c.engram.seed));
  { std::ofstream(dir + "/config.json") << c.to_json(); }
  EXPECT_NO_THROW(Model::load(dir));

  // A recorded checksum is verified: one flipped byte is refused, not evaluated.
  record_checksum();
  EXPECT_NO_THROW(Model::load(dir));
  std::string bytes = slurp(dir + "/model.safetensors");
  bytes[bytes.size() - 5] ^= 0x01;
  { std::ofstream(dir + "/model.safetensors", std::ios::binary) << bytes; }
  expect_refused("checksum", "trainer_state.json");

  // NaN weights are refused naming the tensor, with or without a recorded checksum.
  Model bad(c, 5);
  bad.param("model.norm.weight")[3] = std::nanf("");
  bad.save(dir);
  std::filesystem::remove(dir + "/trainer_state.json");
  expect_refused("model.norm.weight", "nan");
  bad.param("model.norm.weight")[3] = INFINITY;
  bad.save(dir);
  record_checksum();
  expect_refused("model.norm.weight", "inf");
  std::filesystem::remove_all(dir);
}

// Vocabulary compression (engram.compress_tokens): the model hashes lookup[id], so ids the lookup
// merges get the same hash ids everywhere; the lookup is saved in model.safetensors and a missing,
// stray or malformed lookup is refused.
TEST(Model, CompressedTokensAreHashedThroughTheLookupAndSaved) {
  ModelConfig c = tiny_config(kEngram);
  c.engram.compress_tokens = true;
  EXPECT_THROW(Model(c, 1), Error);  // compress_tokens without a lookup
  std::vector<int64_t> lookup(size_t(c.vocab_size));
  for (int64_t i = 0; i < c.vocab_size; i++) lookup[size_t(i)] = i < 12 ? i : i - 11;  // 23 -> 12
  c.engram.compress_lookup = {0, 2, 1};
  EXPECT_THROW(Model(c, 1), Error);  // wrong length
  c.engram.compress_lookup = lookup;
  c.engram.compress_lookup[5] = 40;
  EXPECT_THROW(Model(c, 1), Error);  // not a dense range
  c.engram.compress_lookup = lookup;
  Model m(c, 3);
  ModelConfig plain_cfg = tiny_config(kEngram);
  Model plain(plain_cfg, 3);
  const std::vector<int32_t> a = {1, 5, 7, 7, 3, 11, 2, 9, 4, 6};
  std::vector<int32_t> b = a;
  for (int32_t& id : b) id += 11;  // 1..11 -> 12..22, merged with them by the lookup
  EXPECT_EQ(m.engram_hash_ids(1, a.data(), 1, 10), m.engram_hash_ids(1, b.data(), 1, 10));
  EXPECT_NE(plain.engram_hash_ids(1, a.data(), 1, 10), plain.engram_hash_ids(1, b.data(), 1, 10));

  const std::string dir =
      (std::filesystem::temp_directory_path() / ("engram_model_cmp_" + std::to_string(::getpid())))
          .string();
  randomize(m, 4, 0.2f);
  m.save(dir);
  Model back = Model::load(dir);
  EXPECT_EQ(back.config().engram.compress_lookup, lookup);
  EXPECT_EQ(back.config().to_json(), m.config().to_json());
  EXPECT_NE(m.config().to_json().find("compress_tokens"), std::string::npos);
  EXPECT_EQ(m.forward(b.data(), a.data(), 1, 10), back.forward(b.data(), a.data(), 1, 10));
  {
    std::ofstream(dir + "/config.json") << plain_cfg.to_json();  // the lookup becomes a stray
  }
  EXPECT_THROW(Model::load(dir), Error);
  plain.save(dir);
  {
    ModelConfig want = plain_cfg;
    want.engram.compress_tokens = true;
    std::ofstream(dir + "/config.json") << want.to_json();  // asks for a lookup the file lacks
  }
  try {
    Model::load(dir);
    ADD_FAILURE() << "loaded a compress_tokens model without its lookup";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_NE(std::string(e.what()).find("compress_lookup"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Optim, LrScheduleWarmsUpThenDecaysByCosine) {
  LrSchedule s{1.0f, 0.1f, 4, 14};
  EXPECT_FLOAT_EQ(s.at(0), 0.25f);
  EXPECT_FLOAT_EQ(s.at(3), 1.0f);
  EXPECT_FLOAT_EQ(s.at(4), 1.0f);
  EXPECT_NEAR(s.at(9), 0.55f, 1e-6);  // halfway through the decay
  EXPECT_FLOAT_EQ(s.at(14), 0.1f);
  EXPECT_FLOAT_EQ(s.at(100), 0.1f);
}

TEST(Optim, ClipGradNormScalesOnlyAboveTheLimit) {
  std::vector<float> g = {3.0f, 4.0f};
  const std::vector<std::span<float>> bufs = {g};
  EXPECT_FLOAT_EQ(clip_grad_norm(bufs, 10.0f), 5.0f);
  EXPECT_EQ(g, (std::vector<float>{3.0f, 4.0f}));
  EXPECT_FLOAT_EQ(clip_grad_norm(bufs, 1.0f), 5.0f);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0f, 1e-5);
}

TEST(Optim, ClipGradNormTakesOneNormOverAllBuffers) {
  std::vector<float> a = {3.0f}, b = {4.0f};
  const std::vector<std::span<float>> bufs = {a, b};
  EXPECT_FLOAT_EQ(clip_grad_norm(bufs, 0.5f), 5.0f);
  EXPECT_NEAR(a[0], 0.3f, 1e-6);
  EXPECT_NEAR(b[0], 0.4f, 1e-6);
}

TEST(Optim, AdamWFirstStepMovesEachWeightByLrAndDecaysOnlyFlaggedTensors) {
  std::vector<float> p = {1.0f, -2.0f, 0.5f, 0.5f}, g = {0.3f, -0.001f, 2.0f, -5.0f};
  AdamW opt(
      {ParamSpan{p.data(), g.data(), 2, true}, ParamSpan{p.data() + 2, g.data() + 2, 2, false}},
      AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
  opt.step(0.01f);
  // First Adam step: m_hat / sqrt(v_hat) = sign(g) (up to eps).
  EXPECT_NEAR(p[0], 1.0f * (1 - 0.001f) - 0.01f, 1e-6);
  EXPECT_NEAR(p[1], -2.0f * (1 - 0.001f) + 0.01f, 1e-6);
  EXPECT_NEAR(p[2], 0.5f - 0.01f, 1e-6);
  EXPECT_NEAR(p[3], 0.5f + 0.01f, 1e-6);
}

TEST(Optim, SparseRowAdamTouchesOnlyListedRowsAndCorrectsBiasPerRow) {
  const int64_t rows = 5, width = 3;
  std::vector<float> table(rows * width, 1.0f);
  SparseRowAdam opt(rows, width, 0.9f, 0.95f, 1e-8f);
  const std::vector<int64_t> ids1 = {1, 3};
  const std::vector<float> g1 = {1, 2, 3, -1, -2, -3};
  opt.step(table.data(), ids1.data(), g1.data(), 2, 0.1f);
  for (int64_t r : {0, 2, 4}) {
    for (int64_t j = 0; j < width; j++) EXPECT_EQ(table[r * width + j], 1.0f);
  }
  EXPECT_NEAR(table[1 * width], 0.9f, 1e-6);
  EXPECT_NEAR(table[3 * width], 1.1f, 1e-6);
  for (int i = 0; i < 5; i++) opt.step(table.data(), ids1.data(), g1.data(), 2, 0.1f);
  // Row 4 first seen at global step 7: its own first step is still a full lr-sized step.
  const std::vector<int64_t> ids2 = {4};
  const std::vector<float> g2 = {0.01f, -0.01f, 0.02f};
  opt.step(table.data(), ids2.data(), g2.data(), 1, 0.1f);
  EXPECT_NEAR(table[4 * width + 0], 0.9f, 1e-6);
  EXPECT_NEAR(table[4 * width + 1], 1.1f, 1e-6);
  EXPECT_EQ(opt.row_steps(1), 6);
  EXPECT_EQ(opt.row_steps(4), 1);
  EXPECT_EQ(opt.row_steps(0), 0);
  const std::vector<int64_t> bad = {2, 5};
  EXPECT_THROW(opt.step(table.data(), bad.data(), g1.data(), 2, 0.1f), Error);
  const std::vector<int64_t> dup = {2, 2};
  EXPECT_THROW(opt.step(table.data(), dup.data(), g1.data(), 2, 0.1f), Error);
  EXPECT_EQ(opt.row_steps(2), 0);  // a refused step changes nothing
}

}  // namespace
}  // namespace engram
