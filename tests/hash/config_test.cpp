// EngramConfig: both forms parse (including the committed example configs), and every bad
// field is refused with Errc::parse naming the file and the key.
#include "engram/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engram/error.h"

namespace engram {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json demo_json() {
  return json::parse(R"({"engram_vocab_size": [646400, 646400], "max_ngram_size": 3,
    "n_embed_per_ngram": 512, "n_head_per_ngram": 8, "layer_ids": [1, 15], "pad_id": 2,
    "seed": 0, "kernel_size": 4})");
}

json v41_json() {
  return json::parse(R"({"engram_layer_ids": [1, 14],
    "engram_num_embeddings": [384006168, 384016682], "engram_max_ngram_size": 4,
    "engram_vocab_size": 16000000, "engram_n_heads": 8, "engram_head_dim": 256,
    "engram_pad_token_id": 2, "engram_compressed_vocab_size": 99092, "hc_mult": 4,
    "hidden_size": 5120, "rms_norm_eps": 1e-20, "num_hidden_layers": 40,
    "dspark_block_size": 5, "model_type": "deepseek_v41"})");
}

// Parses j and expects Errc::parse with every fragment in the message.
void expect_parse_error(const json& j, std::vector<std::string> fragments) {
  try {
    EngramConfig::from_json(j.dump(), "cfg.json");
    FAIL() << "accepted: " << j.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::parse) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("cfg.json"));
    for (const auto& f : fragments) EXPECT_THAT(e.what(), HasSubstr(f));
  }
}

TEST(EngramConfig, ParsesDemoForm) {
  const auto cfg = EngramConfig::from_json(demo_json().dump(), "demo.json");
  EXPECT_EQ(cfg.form, EngramConfig::Form::demo);
  EXPECT_EQ(cfg.origin, "demo.json");
  EXPECT_EQ(cfg.layer_ids, (std::vector<int64_t>{1, 15}));
  EXPECT_EQ(cfg.max_ngram, 3);
  EXPECT_EQ(cfg.n_head, 8);
  EXPECT_EQ(cfg.vocab_size_per_ngram, (std::vector<int64_t>{646400, 646400}));
  EXPECT_EQ(cfg.pad_id, 2);
  EXPECT_EQ(cfg.seed, 0);
  EXPECT_EQ(cfg.kernel_size, 4);
  EXPECT_EQ(cfg.num_columns(), 16);
  EXPECT_EQ(cfg.row_dim(), 64);
  EXPECT_FALSE(cfg.compressed_vocab_size.has_value());
  EXPECT_FALSE(cfg.hidden_size.has_value());
}

TEST(EngramConfig, ParsesV41FormAtTopLevelAndUnderTextConfig) {
  json nested;
  nested["text_config"] = v41_json();
  nested["vision_config"] = json::object();
  for (const json& j : {v41_json(), nested}) {
    const auto cfg = EngramConfig::from_json(j.dump(), "config.json");
    EXPECT_EQ(cfg.form, EngramConfig::Form::deepseek_v41);
    EXPECT_EQ(cfg.layer_ids, (std::vector<int64_t>{1, 14}));
    EXPECT_EQ(cfg.max_ngram, 4);
    EXPECT_EQ(cfg.n_head, 8);
    EXPECT_EQ(cfg.vocab_size_per_ngram, (std::vector<int64_t>(3, 16000000)));
    EXPECT_EQ(cfg.num_embeddings, (std::vector<int64_t>{384006168, 384016682}));
    EXPECT_EQ(cfg.compressed_vocab_size, 99092);
    EXPECT_EQ(cfg.pad_id, 2);
    EXPECT_EQ(cfg.seed, 0);
    EXPECT_EQ(cfg.head_dim, 256);
    EXPECT_EQ(cfg.row_dim(), 256);
    EXPECT_EQ(cfg.num_columns(), 24);
    EXPECT_EQ(cfg.hidden_size, 5120);
    EXPECT_EQ(cfg.hc_mult, 4);
    EXPECT_DOUBLE_EQ(*cfg.norm_eps, 1e-20);
  }
}

TEST(EngramConfig, AcceptsInferenceAliasesAndSeed) {
  json j = v41_json();
  j.erase("engram_pad_token_id");
  j["engram_pad_id"] = 7;
  j.erase("rms_norm_eps");
  j["norm_eps"] = 1e-6;
  j["engram_seed"] = 123;
  const auto cfg = EngramConfig::from_json(j.dump());
  EXPECT_EQ(cfg.pad_id, 7);
  EXPECT_DOUBLE_EQ(*cfg.norm_eps, 1e-6);
  EXPECT_EQ(cfg.seed, 123);
  j["engram_pad_token_id"] = 8;
  expect_parse_error(j, {"engram_pad_token_id", "engram_pad_id", "disagree"});
}

TEST(EngramConfig, LoadsTheExampleConfigs) {
  const std::string dir = std::string(ENGRAM_SOURCE_DIR) + "/configs/";
  const auto demo = EngramConfig::from_file(dir + "engram_demo.json");
  EXPECT_EQ(demo.form, EngramConfig::Form::demo);
  EXPECT_EQ(demo.hidden_size, 1024);
  EXPECT_EQ(demo.hc_mult, 4);
  const auto v41 = EngramConfig::from_file(dir + "deepseek_v41_config.json");
  EXPECT_EQ(v41.form, EngramConfig::Form::deepseek_v41);
  EXPECT_EQ(v41.compressed_vocab_size, 99092);
}

TEST(EngramConfig, RefusesMissingFileAndMalformedJson) {
  try {
    EngramConfig::from_file("/nonexistent/engram.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/engram.json"));
  }
  for (const char* text : {"", "{", "[1, 2]", "{\"layer_ids\": [1,]}", "null", "{} trailing"}) {
    try {
      EngramConfig::from_json(text, "bad.json");
      FAIL() << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::parse) << text;
      EXPECT_THAT(e.what(), HasSubstr("bad.json"));
    }
  }
  expect_parse_error(json::object(), {"not an Engram config"});
}

TEST(EngramConfig, DemoFormFieldErrorsNameTheKey) {
  struct Case {
    const char* key;
    json value;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"max_ngram_size", 1, "outside [2, 16]"},
      {"max_ngram_size", 17, "outside"},
      {"max_ngram_size", 3.0, "expected an integer"},
      {"max_ngram_size", "3", "expected an integer"},
      {"max_ngram_size", true, "expected an integer"},
      {"n_head_per_ngram", 0, "outside"},
      {"n_embed_per_ngram", 500, "not divisible by n_head_per_ngram = 8"},
      {"engram_vocab_size", json::array({646400}), "expected 2..2 entries"},
      {"engram_vocab_size", json::array({646400, 0}), "entry 1"},
      {"engram_vocab_size", json::array({646400, -5}), "outside"},
      {"engram_vocab_size", 646400, "expected a list"},
      {"layer_ids", json::array(), "entries"},
      {"layer_ids", json::array({15, 1}), "strictly increasing"},
      {"layer_ids", json::array({1, 1}), "strictly increasing"},
      {"layer_ids", json::array({-1, 2}), "outside"},
      {"pad_id", -1, "outside"},
      {"pad_id", nullptr, "expected an integer"},
      {"seed", -3, "outside"},
      {"seed", 18446744073709551615ull, "does not fit in int64"},
      {"kernel_size", 0, "outside"},
      {"hidden_size", 0, "outside"},
      {"tokenizer_name_or_path", 5, "expected a string"},
  };
  for (const Case& c : cases) {
    json j = demo_json();
    j[c.key] = c.value;
    SCOPED_TRACE(j.dump());
    expect_parse_error(j, {std::string("'") + c.key + "'", c.fragment});
  }
  for (const char* key : {"engram_vocab_size", "max_ngram_size", "n_embed_per_ngram",
                          "n_head_per_ngram", "pad_id", "seed", "kernel_size"}) {
    json j = demo_json();
    j.erase(key);
    expect_parse_error(j, {"missing key", key});
  }
  json j = demo_json();
  j["max_ngram"] = 3;
  expect_parse_error(j, {"unknown key 'max_ngram'"});
  j = demo_json();
  j["num_layers"] = 10;
  expect_parse_error(j, {"'layer_ids'", "not below the model's 10 layers"});
}

// Sizes each within bounds that together ask for absurd work are refused by their keys, before
// any prime is searched or any table allocated.
TEST(EngramConfig, AbsurdProductsOfSizesNameTheKeys) {
  json j = demo_json();
  j["engram_vocab_size"] = json::array({int64_t{1} << 56, int64_t{1} << 56});
  j["n_head_per_ngram"] = 256;
  j["n_embed_per_ngram"] = 256 * 1024;
  expect_parse_error(j, {"table size", "'engram_vocab_size'", "'n_head_per_ngram'",
                         "'n_embed_per_ngram'", "overflows"});
  j = demo_json();
  j["max_ngram_size"] = 16;
  j["engram_vocab_size"] = json(std::vector<int64_t>(15, 1000));
  j["n_head_per_ngram"] = 256;
  j["n_embed_per_ngram"] = 256;
  j["layer_ids"] =
      json(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18});
  expect_parse_error(j, {"'layer_ids'", "'n_head_per_ngram'", "hash tables", "limit"});
  json v = v41_json();
  v["engram_vocab_size"] = int64_t{1} << 56;
  v["engram_head_dim"] = int64_t{1} << 20;
  expect_parse_error(v, {"table size", "'engram_head_dim'", "'engram_n_heads'"});
}

TEST(EngramConfig, V41FormFieldErrorsNameTheKeyPath) {
  struct Case {
    const char* key;
    json value;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"engram_vocab_size", json::array({16000000}), "expected an integer"},
      {"engram_num_embeddings", json::array({384006168}), "expected 2..2 entries"},
      {"engram_num_embeddings", json::array({384006168, 0}), "entry 1"},
      {"engram_compressed_vocab_size", 0, "outside"},
      {"engram_head_dim", 0, "outside"},
      {"engram_n_heads", 300, "outside"},
      {"engram_max_ngram_size", 1, "outside"},
      {"engram_layer_ids", json::array({14, 1}), "strictly increasing"},
      {"engram_layer_ids", json::array({1, 40}), "not below the model's 40 layers"},
      {"hc_mult", 0, "outside"},
      {"rms_norm_eps", 0.0, "finite number > 0"},
      {"rms_norm_eps", "1e-20", "expected a number"},
      {"engram_seed", -1, "outside"},
  };
  for (const Case& c : cases) {
    json j;
    j["text_config"] = v41_json();
    j["text_config"][c.key] = c.value;
    SCOPED_TRACE(j.dump());
    expect_parse_error(j, {std::string("'text_config.") + c.key + "'", c.fragment});
  }
  for (const char* key :
       {"engram_num_embeddings", "engram_max_ngram_size", "engram_vocab_size", "engram_n_heads",
        "engram_head_dim", "engram_compressed_vocab_size", "engram_pad_token_id"}) {
    json j = v41_json();
    j.erase(key);
    expect_parse_error(j, {"missing key", key});
  }
}

// Hashing reads only the engram_* keys: a config.json without the backbone keys parses, with
// the hashing geometry of the full one and the backbone fields left empty.
TEST(EngramConfig, V41FormNeedsOnlyTheKeysHashingUses) {
  const auto full = EngramConfig::from_json(v41_json().dump());
  json j = v41_json();
  for (const char* key : {"hidden_size", "hc_mult", "rms_norm_eps", "num_hidden_layers"})
    j.erase(key);
  const auto cfg = EngramConfig::from_json(j.dump());
  EXPECT_FALSE(cfg.hidden_size.has_value());
  EXPECT_FALSE(cfg.hc_mult.has_value());
  EXPECT_FALSE(cfg.norm_eps.has_value());
  EXPECT_EQ(cfg.layer_ids, full.layer_ids);
  EXPECT_EQ(cfg.vocab_size_per_ngram, full.vocab_size_per_ngram);
  EXPECT_EQ(cfg.num_embeddings, full.num_embeddings);
  EXPECT_EQ(cfg.num_columns(), full.num_columns());
  EXPECT_EQ(cfg.row_dim(), full.row_dim());
  EXPECT_EQ(cfg.compressed_vocab_size, full.compressed_vocab_size);
}

TEST(EngramConfig, CompressedVocabMismatchNamesBothNumbers) {
  const auto cfg = EngramConfig::from_json(v41_json().dump(), "config.json");
  cfg.check_compressed_vocab_size(99092, "tok.json");  // agrees: no throw
  try {
    cfg.check_compressed_vocab_size(98950, "tok.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_THAT(e.what(), HasSubstr("99092"));
    EXPECT_THAT(e.what(), HasSubstr("98950"));
    EXPECT_THAT(e.what(), HasSubstr("tok.json"));
    EXPECT_THAT(e.what(), HasSubstr("config.json"));
  }
  // The demo form has no such key: any tokenizer is accepted.
  EngramConfig::from_json(demo_json().dump()).check_compressed_vocab_size(12345, "tok.json");
}

}  // namespace
}  // namespace engram
