// V4.1 checkpoint tests: synthetic checkpoints (sharded and single-file, and one with the full
// V4.1 row count as a sparse file) open, validate, and serve rows equal to the tensor bytes read
// directly; every kind of bad checkpoint is refused with a message naming what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engram/error.h"
#include "engram/v41_checkpoint.h"
#include "store/test_util.h"

namespace engram {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

SyntheticV41Options small_options() {
  SyntheticV41Options o;
  o.vocab_size = 100;
  o.max_ngram = 3;
  o.n_heads = 2;
  o.head_dim = 64;
  o.hidden_size = 16;
  o.hc_mult = 2;
  return o;
}

// Every row of every layer read through `store` equals the tensors' bytes read directly.
void expect_rows_match_tensors(const V41Checkpoint& ck, RowStore& store) {
  for (const V41Layer& layer : ck.layers()) {
    const size_t t = ck.table_of_layer(layer.layer_id);
    const std::string p = "layers." + std::to_string(layer.layer_id) + ".engram.";
    const auto& w = ck.weights().tensor(p + "embed.weight");
    const auto& s = ck.weights().tensor(p + "embed.scale");
    const int64_t hd = ck.config().head_dim;
    std::vector<int64_t> ids{0, layer.rows - 1, layer.rows / 2, 3, 3};
    std::vector<std::byte> got(ids.size() * (hd + hd / 32));
    store.gather_packed(t, ids, got.data());
    for (size_t i = 0; i < ids.size(); ++i) {
      std::vector<std::byte> want(hd + hd / 32);
      w.file->read_range(w.info->name, ids[i] * hd, {want.data(), size_t(hd)});
      s.file->read_range(s.info->name, ids[i] * (hd / 32), {want.data() + hd, size_t(hd / 32)});
      ASSERT_EQ(std::memcmp(got.data() + i * want.size(), want.data(), want.size()), 0)
          << "layer " << layer.layer_id << " row " << ids[i];
    }
  }
}

TEST(V41Checkpoint, ShardedSyntheticCheckpointOpensAndServesRows) {
  TempDir dir;
  auto rows = write_synthetic_v41(dir.path(), small_options());
  auto ck = V41Checkpoint::open(dir.path());
  ASSERT_EQ(ck->layers().size(), 2u);
  EXPECT_EQ(ck->layers()[0].layer_id, 1);
  EXPECT_EQ(ck->layers()[1].layer_id, 14);
  EXPECT_EQ(ck->layers()[0].rows, rows[0]);
  // Weight and scale of a layer live in different shards.
  EXPECT_NE(ck->layers()[0].table.data_path, ck->layers()[0].table.scale_path);
  EXPECT_EQ(ck->table_of_layer(14), 1u);
  EXPECT_THROW(ck->table_of_layer(2), Error);
  auto store = FileStore::open(ck->table_sources());
  expect_rows_match_tensors(*ck, *store);
  std::vector<int64_t> bad{rows[1]};
  std::vector<std::byte> out(66 * 2);
  EXPECT_THROW(store->gather_packed(1, bad, out.data()), Error);
}

TEST(V41Checkpoint, SingleFileAndDefaultGeometry) {
  TempDir dir;
  SyntheticV41Options o;  // head_dim 256, 8 heads, 4-grams: the V4.1 geometry, fewer rows
  o.shards = 1;
  write_synthetic_v41(dir.path(), o);
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors")));
  auto ck = V41Checkpoint::open(dir.path());
  EXPECT_EQ(ck->table_sources()[0].desc.row_bytes(), 264u);
  auto store = DramStore::load(*FileStore::open(ck->table_sources()));
  expect_rows_match_tensors(*ck, *store);
}

TEST(V41Checkpoint, FullV41RowCountAsASparseFile) {
  TempDir dir;
  SyntheticV41Options o;
  o.vocab_size = 16'000'000;  // V4.1's engram_vocab_size: ~384M rows a layer
  o.sparse = true;
  try {
    write_synthetic_v41(dir.path(), o);
  } catch (const Error& e) {
    GTEST_SKIP() << "filesystem cannot hold the sparse file: " << e.what();
  }
  auto ck = V41Checkpoint::open(dir.path());
  EXPECT_GT(ck->layers()[0].rows, 380'000'000);
  EXPECT_LT(ck->layers()[0].rows, 390'000'000);
  auto store = FileStore::open(ck->table_sources());
  expect_rows_match_tensors(*ck, *store);
}

// Rewrites the JSON header of a safetensors file in place through `edit`, keeping its length.
void edit_header(const std::string& path, const std::function<void(json&)>& edit) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string text(n, ' ');
  f.read(text.data(), static_cast<std::streamsize>(n));
  json h = json::parse(text);
  edit(h);
  std::string out = h.dump();
  ASSERT_LE(out.size(), n) << "edited header does not fit";
  out.resize(n, ' ');
  f.seekp(8);
  f.write(out.data(), static_cast<std::streamsize>(n));
}

std::string shard_of(const std::string& dir, const std::string& tensor) {
  std::ifstream f(dir + "/model.safetensors.index.json");
  json idx = json::parse(f);
  return dir + "/" + idx["weight_map"][tensor].get<std::string>();
}

struct BadCase {
  const char* name;
  std::function<void(const std::string& dir)> damage;
  const char* expect;  // in the message
};

TEST(V41Checkpoint, BadCheckpointsAreRefusedWithClearErrors) {
  const std::string scale = "layers.14.engram.embed.scale";
  std::vector<BadCase> cases = {
      {"missing tensor",
       [&](const std::string& d) {
         std::ifstream f(d + "/model.safetensors.index.json");
         json idx = json::parse(f);
         f.close();
         idx["weight_map"].erase("layers.1.engram.k_weight");
         std::ofstream(d + "/model.safetensors.index.json") << idx.dump();
       },
       "layers.1.engram.k_weight is missing"},
      {"header lies about dtype",
       [&](const std::string& d) {
         edit_header(shard_of(d, scale), [&](json& h) { h[scale]["dtype"] = "U8"; });
       },
       "dtype U8, expected F8_E8M0"},
      {"header lies about offsets",
       [&](const std::string& d) {
         edit_header(shard_of(d, scale), [&](json& h) {
           auto& o = h[scale]["data_offsets"];
           o[1] = o[0];  // an empty span for a [rows, 2] tensor
         });
       },
       scale.c_str()},
      {"shape disagrees with config",
       [&](const std::string& d) {
         std::ifstream f(d + "/config.json");
         json c = json::parse(f);
         f.close();
         c["engram_num_embeddings"][1] = c["engram_num_embeddings"][1].get<int64_t>() + 1;
         std::ofstream(d + "/config.json") << c.dump();
       },
       ""},
      {"truncated shard",
       [&](const std::string& d) {
         std::string s = shard_of(d, scale);
         ASSERT_EQ(::truncate(s.c_str(), fs::file_size(s) - 10), 0);
       },
       "model-"},
      {"vanished shard", [&](const std::string& d) { fs::remove(shard_of(d, scale)); }, "model-"},
      {"no config", [&](const std::string& d) { fs::remove(d + "/config.json"); }, "config.json"},
      {"no weights",
       [&](const std::string& d) {
         for (auto& e : fs::directory_iterator(d))
           if (e.path().filename() != "config.json") fs::remove(e.path());
       },
       "model.safetensors"},
  };
  for (auto& c : cases) {
    TempDir dir;
    write_synthetic_v41(dir.path(), small_options());
    c.damage(dir.path());
    try {
      V41Checkpoint::open(dir.path());
      ADD_FAILURE() << c.name << ": opened";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
          << c.name << ": " << e.what();
    }
  }
}

TEST(V41Checkpoint, AShardThatShrinksAfterOpenFailsTheGatherNotTheProcess) {
  TempDir dir;
  write_synthetic_v41(dir.path(), small_options());
  auto ck = V41Checkpoint::open(dir.path());
  auto store = FileStore::open(ck->table_sources());
  const std::string& path = ck->layers()[1].table.data_path;
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  std::vector<int64_t> ids{5};
  std::vector<std::byte> out(66);
  try {
    store->gather_packed(1, ids, out.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::io);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace engram
