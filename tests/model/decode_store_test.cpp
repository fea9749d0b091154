// Decoding with the Engram tables served from row-store tiers (Model::serve_engram_from): the
// logits must be bit-identical to resident decoding on every tier (file, file behind a small
// hot-row cache, DRAM), with Engram at layer 0, at layer 1 and at two layers; the rows must
// really come from the store; store errors surface from decode_step and lose only the sequence;
// mismatched tables are refused before any step.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engram/engram_layer.h"
#include "engram/error.h"
#include "engram/model.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "store/io_engine.h"
#include "store/test_util.h"
#include "test_helpers.h"

namespace engram {
namespace {

using testing::error_of;
using testing::TempDir;

ModelConfig engram_config(std::vector<int64_t> layer_ids) {
  ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 48;
  c.max_seq_len = 40;
  c.engram.layer_ids = std::move(layer_ids);
  c.engram.vocab_size_per_ngram = {211, 223};
  c.engram.max_ngram = 3;
  c.engram.n_embed_per_ngram = 16;
  c.engram.n_head = 2;
  c.engram.pad_id = 0;
  c.engram.seed = 0;
  c.engram.kernel_size = 4;
  return c;
}

// A model whose Engram layers matter: tables and ShortConv weights far from their initial
// (near-zero) values, so a wrong row or a wrong conv state changes the logits.
Model engram_model(std::vector<int64_t> layer_ids, uint64_t seed = 3) {
  Model m(engram_config(std::move(layer_ids)), seed);
  uint64_t s = 100;
  for (const ParamInfo& info : m.param_infos()) {
    const bool table = info.name.ends_with("multi_head_embedding.embedding.weight");
    const bool conv = info.name.ends_with("short_conv.conv.weight");
    if (!table && !conv) continue;
    std::span<float> w = m.param(info.name);
    const std::vector<float> r = testing::randn(w.size(), s++, table ? 1.0f : 0.5f);
    std::copy(r.begin(), r.end(), w.begin());
  }
  return m;
}

// n tokens: scattered ids first (every step new n-grams), then one id repeated (every step the
// same n-grams, so a hot-row cache hits).
std::vector<int32_t> token_stream(int n) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; i++)
    ids.push_back(i < n / 2 ? int32_t((i * 37 + i * i * 11 + 5) % 97) : 42);
  return ids;
}

// Logits of every step, flattened (steps, V).
std::vector<float> decode_all(Model& m, const std::vector<int32_t>& ids) {
  m.reset_cache();
  std::vector<float> out;
  for (int32_t id : ids) {
    std::span<const float> l = m.decode_step(id);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

// decode_prompt over the first k tokens, then decode_step over the rest: the logits of
// positions k-1 .. end, flattened.
std::vector<float> decode_with_prompt(Model& m, const std::vector<int32_t>& ids, size_t k) {
  m.reset_cache();
  std::span<const float> l = m.decode_prompt({ids.data(), k});
  std::vector<float> out(l.begin(), l.end());
  for (size_t i = k; i < ids.size(); i++) {
    l = m.decode_step(ids[i]);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The layer alone: decode_step_rows on rows gathered by hand equals decode_step on the ids, bit
// for bit, for a batch of 2 and 2 residual branches, through the ShortConv state.
TEST(DecodeStore, LayerDecodeStepRowsEqualsDecodeStep) {
  EngramLayerShape s;
  s.hidden = 8;
  s.hc = 2;
  s.row_width = 4;
  s.primes = {11, 13, 17, 19};
  s.kernel = 3;
  s.dilation = 2;
  EngramLayer by_ids(s, 5), by_rows(s, 5);
  for (EngramLayer* l : {&by_ids, &by_rows}) {  // a nonzero conv, so the state matters
    const std::vector<float> w = testing::randn(size_t(s.hc * s.hidden * s.kernel), 8, 0.5f);
    std::copy(w.begin(), w.end(), l->params().conv_w);
    l->reset_decode(2);
  }
  const int64_t B = 2, HD = s.hc * s.hidden, E = s.emb_dim();
  const float* table = by_ids.params().table;
  for (int t = 0; t < 9; t++) {
    const std::vector<float> h = testing::randn(size_t(B * HD), 100 + t);
    std::vector<int64_t> ids(size_t(B * s.cols()));
    std::vector<float> rows(size_t(B * E));
    for (int64_t b = 0; b < B; b++) {
      int64_t offset = 0;
      for (int64_t c = 0; c < s.cols(); c++) {
        const int64_t id = (t * 7 + b * 3 + c * 5) % s.primes[size_t(c)];
        ids[size_t(b * s.cols() + c)] = id;
        std::copy_n(table + (offset + id) * s.row_width, s.row_width,
                    rows.begin() + b * E + c * s.row_width);
        offset += s.primes[size_t(c)];
      }
    }
    std::vector<float> a(size_t(B * HD)), r(size_t(B * HD));
    by_ids.decode_step(a.data(), h.data(), ids.data(), B);
    by_rows.decode_step_rows(r.data(), h.data(), rows.data(), B);
    ASSERT_TRUE(bit_equal(a, r)) << "step " << t;
  }
  EXPECT_THROW(by_rows.decode_step_rows(nullptr, nullptr, nullptr, 3), Error);  // batch 3 != 2
}

class DecodeStoreTest : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(DecodeStoreTest, EveryTierGivesTheResidentLogitsBitForBit) {
  TempDir dir;
  Model m = engram_model(GetParam());
  const std::vector<int32_t> ids = token_stream(30);
  const std::vector<float> resident = decode_all(m, ids);

  const std::string path = dir.file("tables.safetensors");
  m.export_engram_tables(path);
  std::shared_ptr<FileStore> file = FileStore::open(m.engram_table_sources(path));
  std::shared_ptr<FileStore> file_pread =
      FileStore::open(m.engram_table_sources(path), FileStoreOptions{false, false, 8});
  // 32 rows: the scattered half of the stream overflows it, the repeated half hits.
  const uint64_t row_bytes = file->table(0).row_bytes();
  auto cached = std::make_shared<CachedStore>(file, 32 * row_bytes);
  std::shared_ptr<RowStore> dram = DramStore::load(*file);

  struct Tier {
    std::string name;
    std::shared_ptr<RowStore> store;
    unsigned threads;  // 0: inline gathers
  };
  const std::vector<Tier> tiers = {{"file", file, 2},        {"file(pread)", file_pread, 1},
                                   {"cache", cached, 2},     {"dram", dram, 2},
                                   {"dram inline", dram, 0}, {"file inline", file, 0}};
  for (const auto& [name, store, threads] : tiers) {
    PrefetchOptions po;
    po.threads = threads;
    m.serve_engram_from(store, po);
    ASSERT_TRUE(m.engram_served());
    m.reset_decode_stats();
    const std::vector<float> served = decode_all(m, ids);
    EXPECT_TRUE(bit_equal(served, resident)) << name;
    const DecodeStats st = m.decode_stats();
    EXPECT_EQ(st.steps, int64_t(ids.size())) << name;
    // A prompt fetched in one go, then steps: the same logits from position k-1 on.
    const size_t k = 13;
    const std::vector<float> tail(resident.end() - (ids.size() - k + 1) * 97, resident.end());
    EXPECT_TRUE(bit_equal(decode_with_prompt(m, ids, k), tail)) << name;
    EXPECT_GE(st.step_ns, st.wait_ns) << name;
    m.reset_decode_stats();
    EXPECT_EQ(m.decode_stats().steps, 0);
  }
  const CacheStats cs = cached->cache_stats();
  EXPECT_GT(cs.hits, 0u);
  EXPECT_GT(cs.evictions, 0u);

  // Resident again: the model's own tables, same logits.
  m.serve_engram_resident();
  EXPECT_FALSE(m.engram_served());
  EXPECT_TRUE(bit_equal(decode_all(m, ids), resident));
  EXPECT_TRUE(bit_equal(decode_with_prompt(m, ids, 13),
                        std::vector<float>(resident.end() - 18 * 97, resident.end())));
}

INSTANTIATE_TEST_SUITE_P(Layers, DecodeStoreTest,
                         ::testing::Values(std::vector<int64_t>{1}, std::vector<int64_t>{0},
                                           std::vector<int64_t>{0, 2}));

TEST(DecodeStore, RowsComeFromTheStoreNotTheModel) {
  TempDir dir;
  Model m = engram_model({1});
  const std::vector<int32_t> ids = token_stream(12);
  const std::vector<float> before = decode_all(m, ids);
  const std::string path = dir.file("tables.safetensors");
  m.export_engram_tables(path);
  // Change the model's own table after the export: resident decoding changes, served does not.
  std::span<float> table = m.param("model.layers.1.engram.multi_head_embedding.embedding.weight");
  for (float& x : table) x = -3.0f * x + 0.25f;
  const std::vector<float> changed = decode_all(m, ids);
  ASSERT_FALSE(bit_equal(changed, before)) << "the Engram layer has no effect: the test is blind";
  m.serve_engram_from(FileStore::open(m.engram_table_sources(path)), PrefetchOptions{});
  EXPECT_TRUE(bit_equal(decode_all(m, ids), before));
}

TEST(DecodeStore, PromptChunksContinueTheLookbackState) {
  TempDir dir;
  Model m = engram_model({0, 2});
  const std::vector<int32_t> ids = token_stream(24);
  const std::vector<float> resident = decode_all(m, ids);
  const std::string path = dir.file("tables.safetensors");
  m.export_engram_tables(path);
  m.serve_engram_from(FileStore::open(m.engram_table_sources(path)), PrefetchOptions{});
  // steps 0..4 one by one, 5..11 as one prompt chunk, 12..15 as another, then steps again
  m.reset_cache();
  std::vector<float> got;
  auto keep = [&](std::span<const float> l) { got.insert(got.end(), l.begin(), l.end()); };
  for (size_t i = 0; i < 5; i++) keep(m.decode_step(ids[i]));
  keep(m.decode_prompt({ids.data() + 5, 7}));
  keep(m.decode_prompt({ids.data() + 12, 4}));
  for (size_t i = 16; i < ids.size(); i++) keep(m.decode_step(ids[i]));
  std::vector<float> want;
  for (size_t i = 0; i < ids.size(); i++) {
    if ((i >= 5 && i < 11) || (i >= 12 && i < 15)) continue;  // inside a chunk: not returned
    want.insert(want.end(), resident.begin() + i * 97, resident.begin() + (i + 1) * 97);
  }
  EXPECT_TRUE(bit_equal(got, want));
  // A chunk that does not fit, or holds a bad id, is refused before anything runs.
  Errc code{};
  const std::vector<int32_t> long_prompt(41, 3);
  m.reset_cache();
  std::string msg = error_of([&] { m.decode_prompt(long_prompt); }, &code);
  EXPECT_EQ(code, Errc::out_of_range) << msg;
  EXPECT_EQ(m.cache_length(), 0);
  const std::vector<int32_t> bad = {1, 2, 97};
  msg = error_of([&] { m.decode_prompt(bad); }, &code);
  EXPECT_EQ(code, Errc::out_of_range) << msg;
  EXPECT_NE(msg.find("97"), std::string::npos) << msg;
  EXPECT_EQ(m.cache_length(), 0);
  m.serve_engram_resident();  // the same checks without a store
  msg = error_of([&] { m.decode_prompt(long_prompt); }, &code);
  EXPECT_EQ(code, Errc::out_of_range) << msg;
  EXPECT_EQ(m.cache_length(), 0);
}

TEST(DecodeStore, StoreErrorsSurfaceAndLoseOnlyTheSequence) {
  TempDir dir;
  Model m = engram_model({1});
  const std::vector<int32_t> ids = token_stream(10);
  const std::vector<float> resident = decode_all(m, ids);
  const std::string path = dir.file("tables.safetensors");
  m.export_engram_tables(path);
  std::shared_ptr<FileStore> file = FileStore::open(m.engram_table_sources(path));
  bool fault = false;
  set_fault_hook(*file, [&fault](const ReadRequest&, uint64_t, uint32_t) -> int64_t {
    return fault ? -EIO : 0;
  });
  for (unsigned threads : {1u, 0u}) {  // a prefetch worker, then inline gathers
    PrefetchOptions po;
    po.threads = threads;
    m.serve_engram_from(file, po);
    m.reset_cache();
    for (int i = 0; i < 4; i++) m.decode_step(ids[i]);
    fault = true;
    Errc code{};
    const std::string msg = error_of([&] { m.decode_step(ids[4]); }, &code);
    EXPECT_EQ(code, Errc::io) << msg;
    EXPECT_NE(msg.find("tables.safetensors"), std::string::npos) << msg;
    EXPECT_EQ(m.cache_length(), 4);
    fault = false;
    // The failed step may have advanced earlier layers' state: the sequence cannot go on.
    const std::string refused = error_of([&] { m.decode_step(ids[4]); }, &code);
    EXPECT_EQ(code, Errc::invalid_argument) << refused;
    EXPECT_NE(refused.find("reset_cache"), std::string::npos) << refused;
    // A new sequence works and matches resident decoding.
    EXPECT_TRUE(bit_equal(decode_all(m, ids), resident)) << threads;
  }
}

TEST(DecodeStore, MismatchedTablesAreRefused) {
  TempDir dir;
  Model one = engram_model({1});
  Model zero = engram_model({0});
  const std::string path = dir.file("tables.safetensors");
  one.export_engram_tables(path);
  Errc code{};
  // The error of serving `m` from a FileStore over the tables written by `one`.
  const auto serve_error = [&](Model& m, const PrefetchOptions& po) {
    return error_of(
        [&] { m.serve_engram_from(FileStore::open(one.engram_table_sources(path)), po); }, &code);
  };
  // A file without the model's layer.
  std::string msg = error_of([&] { zero.engram_table_sources(path); }, &code);
  EXPECT_EQ(code, Errc::mismatch) << msg;
  EXPECT_NE(msg.find("layers.0.engram.table"), std::string::npos) << msg;
  // A store without the model's table.
  msg = serve_error(zero, PrefetchOptions{});
  EXPECT_EQ(code, Errc::out_of_range) << msg;
  EXPECT_FALSE(zero.engram_served());
  // A table of another shape under the right name.
  ModelConfig wide = engram_config({1});
  wide.engram.n_embed_per_ngram = 32;
  Model other(wide, 1);
  msg = error_of([&] { other.engram_table_sources(path); }, &code);
  EXPECT_EQ(code, Errc::mismatch) << msg;
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  msg = serve_error(other, PrefetchOptions{});
  EXPECT_EQ(code, Errc::mismatch) << msg;
  EXPECT_NE(msg.find("layers.1.engram.table"), std::string::npos) << msg;
  // No Engram layer at all.
  ModelConfig plain = engram_config({});
  Model dense(plain, 0);
  msg = error_of([&] { dense.export_engram_tables(dir.file("none.safetensors")); }, &code);
  EXPECT_EQ(code, Errc::invalid_argument) << msg;
  EXPECT_FALSE(std::filesystem::exists(dir.file("none.safetensors")));
  msg = error_of([&] { one.serve_engram_from(nullptr, PrefetchOptions{}); }, &code);
  EXPECT_EQ(code, Errc::invalid_argument) << msg;
  PrefetchOptions too_many;
  too_many.threads = 1000;
  msg = serve_error(one, too_many);
  EXPECT_EQ(code, Errc::invalid_argument) << msg;
  EXPECT_FALSE(one.engram_served());
}

}  // namespace
}  // namespace engram
