// cmd_bench_store.cpp: `engram bench store`: the row store's numbers, side by side in one run.
//   engram bench store [--checkpoint DIR | --vocab N] [--corpus assets/brown] [--tokens N] ...
// Streams of row ids: "real" (Brown corpus text -> DeepSeek-V3 tokenizer -> compressor -> V4.1
// n-gram hashes, so the skew is real), "zipf" (Zipf(s) over the table's rows) and "uniform".
// Per tier (plain memcpy gather, DRAM with and without huge pages, file via io_uring O_DIRECT,
// file via pread, file behind an S3-FIFO / LRU cache): rows/s, p50/p99 latency of one step's
// gather, CPU time per row, cache hit rate. Then fio on the same shard at the same block size and
// queue depth; an overlap run (prefetch a step, compute for a set time, wait) reporting the share
// of fetch time hidden; and the cache hit-rate curve over cache size (real and Zipf traffic,
// V4.1's full table geometry) with the smallest size giving 90% hits.
// Without --checkpoint a synthetic V4.1 checkpoint is written to --work first.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engram/cache.h"
#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/corpus.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/prefetch.h"
#include "engram/store.h"
#include "engram/tokenizer.h"
#include "engram/v41_checkpoint.h"
#include "util/clock.h"
#include "util/cpu_info.h"

namespace engram::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string checkpoint, work = "/tmp/engram-bench-store";
  int64_t vocab = 50000;  // synthetic: prime-search start, ~24x that many rows a layer
  std::string corpus = "assets/brown", tokenizer = "assets/deepseek_v3/tokenizer.json";
  int64_t tokens = 300000;  // tokens of real text to hash
  double zipf = 1.0;
  int64_t batch = 64;  // tokens per step: rows per layer and step = batch * columns
  int64_t steps = 200;
  unsigned qd = 64;
  double fio_seconds = 10;
  bool no_fio = false;
  double compute_us = 0;  // 0: the slowest of 20 steps fetched with nothing to overlap
  std::string json_out;
};

double cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[i];
}

// V4.1's config.json keys with the given geometry, for hashing without a checkpoint.
EngramConfig v41_config(int64_t vocab, int64_t compressed, const std::vector<int64_t>& rows) {
  json c = {{"hidden_size", 64},
            {"hc_mult", 4},
            {"rms_norm_eps", 1e-20},
            {"engram_layer_ids", {1, 14}},
            {"engram_max_ngram_size", 4},
            {"engram_vocab_size", vocab},
            {"engram_n_heads", 8},
            {"engram_head_dim", 256},
            {"engram_pad_token_id", 2},
            {"engram_compressed_vocab_size", compressed},
            {"engram_num_embeddings", rows.empty() ? std::vector<int64_t>{1, 1} : rows}};
  EngramConfig cfg = EngramConfig::from_json(c.dump(), "<bench v4.1 geometry>");
  if (rows.empty()) cfg.num_embeddings.clear();
  return cfg;
}

// Token ids of the first `n` tokens of the corpus (Brown, detagged), documents concatenated.
std::vector<int64_t> corpus_tokens(const BenchOptions& o, const Tokenizer& tok) {
  CorpusOptions co;
  co.inputs = {o.corpus};
  co.format = CorpusFormat::brown;
  std::vector<int64_t> ids;
  for (const std::string& f : list_corpus_files(co)) {
    std::ifstream in(f, std::ios::binary);
    std::string tagged((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (int32_t t : tok.encode(brown_detag(tagged, f), false)) ids.push_back(t);
    if (int64_t(ids.size()) >= o.tokens) break;
  }
  if (int64_t(ids.size()) > o.tokens) ids.resize(o.tokens);
  return ids;
}

// Per layer: row ids [T, C] of the hashed tokens, converted as every front end converts them.
std::vector<std::vector<int64_t>> hash_rows(const NgramHasher& h, const std::vector<int64_t>& ids) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> values(ids.size() * h.num_columns());
  for (int64_t layer : h.layer_ids()) {
    h.hash(layer, ids, 1, int64_t(ids.size()), values);
    out.push_back(hash_values_to_rows(h.layout(layer), values));
  }
  return out;
}

// One tier variant, opened through the one store builder.
OpenedStore open_variant(const V41Checkpoint& ck, StoreTier tier, const FileStoreOptions& file,
                         bool huge_pages = true, uint64_t cache_bytes = 0,
                         CachePolicy policy = CachePolicy::s3fifo) {
  StoreOptions so;
  so.tier = tier;
  so.file = file;
  so.huge_pages = huge_pages;
  so.cache_bytes = cache_bytes;
  so.cache_policy = policy;
  return open_store(ck.table_sources(), so);
}

std::vector<int64_t> zipf_ids(int64_t rows, double s, size_t n, uint64_t seed) {
  // Inverse CDF over ranks; ranks map to rows through a fixed random permutation-like scramble.
  const int64_t ranks = std::min<int64_t>(rows, 1 << 22);
  std::vector<double> cdf(ranks);
  double sum = 0;
  for (int64_t i = 0; i < ranks; ++i) cdf[i] = (sum += std::pow(double(i + 1), -s));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<int64_t> out(n);
  for (auto& x : out) {
    uint64_t r = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    x = int64_t((r * 0x9E3779B97F4A7C15ull) % uint64_t(rows));
  }
  return out;
}

std::vector<int64_t> uniform_ids(int64_t rows, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out(n);
  for (auto& x : out) x = int64_t(rng() % uint64_t(rows));
  return out;
}

struct TierResult {
  std::string tier, stream;
  double rows_per_s = 0, p50_us = 0, p99_us = 0, cpu_ns_per_row = 0, hit_rate = -1;
  double reads_per_s = 0;
};

// Gathers `stream` (table 0) in steps of `step_rows` through `gather`, timing each step.
template <typename F>
TierResult time_gather(const std::string& tier, const std::string& stream_name,
                       const std::vector<int64_t>& stream, size_t step_rows, int64_t steps,
                       uint32_t row_bytes, F&& gather) {
  std::vector<std::byte> out(step_rows * row_bytes);
  std::vector<double> lat;
  size_t pos = 0;
  const double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  size_t rows = 0;
  for (int64_t s = 0; s < steps; ++s) {
    if (pos + step_rows > stream.size()) pos = 0;
    std::span<const int64_t> ids(stream.data() + pos, step_rows);
    auto t = Clock::now();
    gather(ids, out.data());
    lat.push_back(seconds_since(t) * 1e6);
    pos += step_rows;
    rows += step_rows;
  }
  const double wall = seconds_since(t0), cpu = cpu_seconds() - cpu0;
  TierResult r;
  r.tier = tier;
  r.stream = stream_name;
  r.rows_per_s = double(rows) / wall;
  r.p50_us = percentile(lat, 0.5);
  r.p99_us = percentile(lat, 0.99);
  r.cpu_ns_per_row = cpu * 1e9 / double(rows);
  return r;
}

void print_tier(const TierResult& r) {
  std::printf("  %-28s %-8s %12.0f rows/s  p50 %9.1f us  p99 %9.1f us  cpu %7.1f ns/row",
              r.tier.c_str(), r.stream.c_str(), r.rows_per_s, r.p50_us, r.p99_us, r.cpu_ns_per_row);
  if (r.reads_per_s > 0) std::printf("  %10.0f reads/s", r.reads_per_s);
  if (r.hit_rate >= 0) std::printf("  hit %5.1f%%", 100 * r.hit_rate);
  std::printf("\n");
}

json tier_json(const TierResult& r) {
  return {
      {"tier", r.tier},         {"stream", r.stream},          {"rows_per_s", r.rows_per_s},
      {"p50_us", r.p50_us},     {"p99_us", r.p99_us},          {"cpu_ns_per_row", r.cpu_ns_per_row},
      {"hit_rate", r.hit_rate}, {"reads_per_s", r.reads_per_s}};
}

// fio's random-read IOPS on `file`, or a negative value when fio is missing or fails.
double run_fio(const std::string& file, unsigned bs, unsigned qd, double seconds) {
  std::string cmd =
      str_cat("fio --name=r --filename='", file, "' --rw=randread --bs=", bs, " --iodepth=", qd,
              " --ioengine=io_uring --direct=1 --runtime=", int(seconds),
              " --time_based --output-format=json 2>/dev/null");
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) return -1;
  try {
    return json::parse(out)["jobs"][0]["read"]["iops"].get<double>();
  } catch (const std::exception&) {
    return -1;
  }
}

// Every numeric option in range, before anything is written or measured: a zero count would
// divide by zero or index an empty stream further on.
void check_options(const BenchOptions& o) {
  auto in_range = [](const char* flag, auto v, decltype(v) lo, decltype(v) hi) {
    if (!(v >= lo && v <= hi))
      fail(Errc::invalid_argument, flag, " must be in ", lo, "..", hi, ", got ", v);
  };
  in_range("--vocab", o.vocab, int64_t(1), int64_t(1) << 32);
  in_range("--tokens", o.tokens, int64_t(1), int64_t(1) << 32);
  in_range("--batch", o.batch, int64_t(1), int64_t(1) << 20);
  in_range("--steps", o.steps, int64_t(1), int64_t(1) << 24);
  in_range("--qd", o.qd, 1u, 4096u);
  in_range("--zipf", o.zipf, 0.0, 100.0);
  in_range("--compute-us", o.compute_us, 0.0, 1e9);
  if (!o.no_fio) in_range("--fio-seconds", o.fio_seconds, 0.1, 3600.0);
  if (o.tokens < o.batch)
    fail(Errc::invalid_argument, "--tokens (", o.tokens, ") must be at least --batch (", o.batch,
         "): one step hashes --batch tokens of the text");
  if (o.batch * o.steps > (int64_t(1) << 28))
    fail(Errc::invalid_argument, "--batch x --steps (", o.batch, " x ", o.steps,
         ") is more than 2^28 tokens");
}

void run_bench_store(const BenchOptions& o) {
  check_options(o);
  json report;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
  // ---- Checkpoint and streams -----------------------------------------------------------------
  std::printf("engram bench store\n");
  std::printf("%s\n", cpu_info_line().c_str());
  const Tokenizer tok = Tokenizer::from_file(o.tokenizer);
  const TokenCompressor comp = TokenCompressor::from_tokenizer(tok);
  std::string ckdir = o.checkpoint;
  if (ckdir.empty()) {
    ckdir = o.work + "/v41-synthetic-" + std::to_string(o.vocab);
    if (!fs::exists(ckdir + "/config.json")) {
      SyntheticV41Options so;
      so.vocab_size = o.vocab;
      so.compressed_vocab_size = comp.compressed_vocab_size();
      auto t0 = Clock::now();
      write_synthetic_v41(ckdir, so);
      std::printf("wrote synthetic V4.1 checkpoint %s in %.1f s\n", ckdir.c_str(),
                  seconds_since(t0));
    }
  }
  auto ck = V41Checkpoint::open(ckdir);
  ck->config().check_compressed_vocab_size(comp.compressed_vocab_size(), o.tokenizer);
  const int64_t rows0 = ck->layers()[0].rows;
  const uint32_t rb = ck->table_sources()[0].desc.row_bytes();
  std::printf("checkpoint %s: %zu Engram layers, layer %lld: %lld rows x %u bytes (%.1f MB)\n",
              ckdir.c_str(), ck->layers().size(), (long long)ck->layers()[0].layer_id,
              (long long)rows0, rb, rows0 * double(rb) / 1e6);
  report["checkpoint"] = ckdir;
  report["rows"] = rows0;

  const std::vector<int64_t> tokens = corpus_tokens(o, tok);
  if (int64_t(tokens.size()) < o.batch)
    fail(Errc::invalid_argument, o.corpus, " gave ", tokens.size(),
         " tokens, fewer than one step of --batch ", o.batch);
  NgramHasher table_hasher(ck->config(), comp.lookup(), comp.compressed_vocab_size());
  const auto real_rows = hash_rows(table_hasher, tokens);
  const int64_t C = table_hasher.num_columns();
  const size_t step_rows = size_t(o.batch * C);
  std::printf(
      "streams: real = %zu Brown tokens hashed (%lld columns), zipf s=%.2f, uniform; "
      "one step = %lld tokens = %zu rows per layer\n",
      tokens.size(), (long long)C, o.zipf, (long long)o.batch, step_rows);
  const size_t n_synth = step_rows * size_t(o.steps);
  std::map<std::string, std::vector<int64_t>> streams = {
      {"real", real_rows[0]},
      {"zipf", zipf_ids(rows0, o.zipf, n_synth, 1)},
      {"uniform", uniform_ids(rows0, n_synth, 2)}};

  // ---- Tiers ----------------------------------------------------------------------------------
  std::printf("\ntiers (table of layer %lld, %lld steps each):\n",
              (long long)ck->layers()[0].layer_id, (long long)o.steps);
  std::vector<TierResult> results;
  const FileStoreOptions uring{true, true, o.qd}, pread{false, false, o.qd};
  const std::shared_ptr<FileStore> file = open_variant(*ck, StoreTier::file, uring).file;
  const std::shared_ptr<FileStore> file_pread = open_variant(*ck, StoreTier::file, pread).file;
  const std::shared_ptr<DramStore> dram_thp = open_variant(*ck, StoreTier::dram, pread, true).dram;
  const std::shared_ptr<DramStore> dram_4k = open_variant(*ck, StoreTier::dram, pread, false).dram;
  // The plain baseline: one contiguous vector and a memcpy per row, no checks.
  std::vector<std::byte> plain(dram_4k->table_bytes(0), dram_4k->table_bytes(0) + rows0 * rb);
  for (const char* sname : {"real", "zipf", "uniform"}) {
    const auto& st = streams[sname];
    auto add = [&](TierResult r) {
      print_tier(r);
      results.push_back(r);
    };
    add(time_gather("memcpy gather (baseline)", sname, st, step_rows, o.steps, rb,
                    [&](std::span<const int64_t> ids, std::byte* out) {
                      for (size_t i = 0; i < ids.size(); ++i)
                        std::memcpy(out + i * rb, plain.data() + ids[i] * rb, rb);
                    }));
    add(time_gather(dram_thp->huge_pages() ? "dram (huge pages)" : "dram (THP refused)", sname, st,
                    step_rows, o.steps, rb, [&](std::span<const int64_t> ids, std::byte* out) {
                      dram_thp->gather_packed(0, ids, out);
                    }));
    add(time_gather("dram (4 KiB pages)", sname, st, step_rows, o.steps, rb,
                    [&](std::span<const int64_t> ids, std::byte* out) {
                      dram_4k->gather_packed(0, ids, out);
                    }));
    {
      const IoStats before = file->io_stats();
      auto t0 = Clock::now();
      TierResult r = time_gather(
          file->describe(), sname, st, step_rows, o.steps / 4 + 1, rb,
          [&](std::span<const int64_t> ids, std::byte* out) { file->gather_packed(0, ids, out); });
      r.reads_per_s = double(file->io_stats().reads - before.reads) / seconds_since(t0);
      add(r);
    }
    add(time_gather("file (pread, buffered)", sname, st, step_rows, o.steps / 4 + 1, rb,
                    [&](std::span<const int64_t> ids, std::byte* out) {
                      file_pread->gather_packed(0, ids, out);
                    }));
    for (CachePolicy p : {CachePolicy::s3fifo, CachePolicy::lru}) {
      const uint64_t cache_bytes = uint64_t(rows0) * rb / 10;  // a tenth of the table
      const std::shared_ptr<CachedStore> cached =
          open_variant(*ck, StoreTier::file, uring, true, cache_bytes, p).cache;
      TierResult r =
          time_gather(str_cat("cache ", cache_policy_name(p), " 10% -> file"), sname, st, step_rows,
                      o.steps, rb, [&](std::span<const int64_t> ids, std::byte* out) {
                        cached->gather_packed(0, ids, out);
                      });
      r.hit_rate = cached->cache_stats().hit_rate();
      add(r);
    }
  }
  json tiers = json::array();
  for (auto& r : results) tiers.push_back(tier_json(r));
  report["tiers"] = tiers;
  auto find = [&](const std::string& tier_prefix, const std::string& stream) {
    for (auto& r : results)
      if (r.stream == stream && r.tier.rfind(tier_prefix, 0) == 0) return r;
    return TierResult{};
  };
  const TierResult base = find("memcpy", "uniform"), thp = find("dram (huge", "uniform"),
                   small = find("dram (4", "uniform");
  std::printf(
      "\nDRAM gather vs plain memcpy gather (uniform): %.2fx; huge pages vs 4 KiB pages: "
      "%.2fx\n",
      thp.rows_per_s / base.rows_per_s, thp.rows_per_s / small.rows_per_s);
  report["dram_vs_memcpy"] = thp.rows_per_s / base.rows_per_s;
  report["huge_page_gain"] = thp.rows_per_s / small.rows_per_s;

  // ---- fio on the same file, block size and queue depth -----------------------------------------
  const TierResult fu = find("file(", "uniform");
  if (!o.no_fio) {
    const std::string shard = ck->table_sources()[0].data_path;
    double iops = run_fio(shard, 4096, o.qd, o.fio_seconds);
    if (iops > 0) {
      std::printf(
          "fio randread bs=4k iodepth=%u io_uring direct on %s: %.0f IOPS; file tier "
          "(uniform, uncached): %.0f reads/s = %.1f%% of fio\n",
          o.qd, shard.c_str(), iops, fu.reads_per_s, 100 * fu.reads_per_s / iops);
      report["fio_iops"] = iops;
      report["file_tier_reads_per_s"] = fu.reads_per_s;
      report["file_vs_fio"] = fu.reads_per_s / iops;
    } else {
      std::printf("fio: not available or failed; skipped\n");
    }
  }

  // ---- Overlap: prefetch a step, compute, wait -------------------------------------------------
  {
    Prefetcher pf(file, {unsigned(ck->layers().size()), 1ull << 30, RowOutput::f32});
    auto step_reqs = [&](int64_t s) {
      std::vector<LayerRequest> reqs;
      for (size_t l = 0; l < real_rows.size(); ++l) {
        size_t begin = (size_t(s) * step_rows) % (real_rows[l].size() - step_rows + 1);
        reqs.push_back({l, std::vector<int64_t>(real_rows[l].begin() + begin,
                                                real_rows[l].begin() + begin + step_rows)});
      }
      return reqs;
    };
    // Measure a step's fetch time with nothing to hide it behind.
    std::vector<double> fetch_us;
    for (int64_t s = 0; s < 20; ++s) {
      auto t0 = Clock::now();
      Ticket t = pf.prefetch(s, step_reqs(s));
      for (size_t l = 0; l < real_rows.size(); ++l) t.wait(l);
      fetch_us.push_back(seconds_since(t0) * 1e6);
    }
    const double median_fetch = percentile(fetch_us, 0.5);
    // "A compute phase at least as long as the I/O needs": the slowest of the lone fetches.
    const double compute = o.compute_us > 0 ? o.compute_us : percentile(fetch_us, 1.0);
    double fetch_total = 0, wait_total = 0;
    for (int64_t s = 0; s < o.steps; ++s) {
      Ticket t = pf.prefetch(s, step_reqs(s + 20));
      auto t0 = Clock::now();  // the compute of earlier layers, a busy loop of set length
      while (seconds_since(t0) * 1e6 < compute) {
      }
      for (size_t l = 0; l < real_rows.size(); ++l) {
        t.wait(l);
        LayerTiming lt = t.timing(l);
        fetch_total += double(lt.fetch_ns);
        wait_total += double(lt.wait_ns);
      }
    }
    const double hidden = 1.0 - wait_total / fetch_total;
    std::printf(
        "overlap (file tier, uncached, real stream, both layers): fetch alone %.0f us/step "
        "median, %.0f max; compute %.0f us/step; %.2f%% of fetch time hidden\n",
        median_fetch, percentile(fetch_us, 1.0), compute, 100 * hidden);
    report["overlap"] = {
        {"fetch_us_median", median_fetch}, {"compute_us", compute}, {"hidden_share", hidden}};
  }

  // ---- Cache hit-rate curve on V4.1's full table geometry ---------------------------------------
  {
    EngramConfig full = v41_config(16'000'000, comp.compressed_vocab_size(), {});
    NgramHasher h(full, comp.lookup(), comp.compressed_vocab_size());
    auto full_rows = hash_rows(h, tokens);
    std::vector<uint64_t> real_keys;  // both layers' rows of each position, in step order
    for (size_t p = 0; p < tokens.size(); ++p)
      for (size_t l = 0; l < full_rows.size(); ++l)
        for (int64_t c = 0; c < C; ++c)
          real_keys.push_back((uint64_t(l) << 48) | uint64_t(full_rows[l][p * C + c]));
    auto zipf = zipf_ids(h.total_rows(1), o.zipf, real_keys.size(), 3);
    std::vector<uint64_t> zipf_keys(zipf.begin(), zipf.end());
    std::printf(
        "\ncache hit rate vs size (V4.1 geometry: %lld + %lld rows; %zu accesses; "
        "264 bytes a row):\n",
        (long long)h.total_rows(1), (long long)h.total_rows(14), real_keys.size());
    json curve = json::array();
    std::map<std::string, int64_t> first90;
    for (int k = 10; k <= 24; k += 2) {
      const uint64_t cap = uint64_t(1) << k;
      std::printf("  %9llu rows %9.1f MB", (unsigned long long)cap, cap * 264.0 / 1e6);
      json point = {{"rows", cap}, {"bytes", cap * 264}};
      for (auto& [sname, keys] : std::vector<std::pair<std::string, const std::vector<uint64_t>*>>{
               {"real", &real_keys}, {"zipf", &zipf_keys}}) {
        for (CachePolicy p : {CachePolicy::lru, CachePolicy::s3fifo}) {
          CacheIndex idx(cap, p);
          uint64_t hits = 0;
          for (uint64_t key : *keys) hits += idx.access(key);
          const double rate = double(hits) / double(keys->size());
          const std::string name = sname + "/" + cache_policy_name(p);
          std::printf("  %s %5.1f%%", name.c_str(), 100 * rate);
          point[name] = rate;
          if (rate >= 0.9 && !first90.count(name)) first90[name] = int64_t(cap);
        }
      }
      std::printf("\n");
      curve.push_back(point);
    }
    // The ceiling: every first access of a row misses whatever the size.
    std::vector<uint64_t> uniq = real_keys;
    std::sort(uniq.begin(), uniq.end());
    const double ceiling =
        1.0 - double(std::unique(uniq.begin(), uniq.end()) - uniq.begin()) / double(uniq.size());
    std::printf("  real stream ceiling (infinite cache; first uses always miss): %.1f%%\n",
                100 * ceiling);
    for (auto& [name, cap] : first90)
      std::printf("  90%% hits: %s at %lld rows (%.1f MB)\n", name.c_str(), (long long)cap,
                  cap * 264.0 / 1e6);
    for (const char* name : {"real/lru", "real/s3fifo", "zipf/lru", "zipf/s3fifo"})
      if (!first90.count(name)) std::printf("  90%% hits: %s not reached up to 2^24 rows\n", name);
    report["hit_rate_curve"] = curve;
    report["real_ceiling"] = ceiling;
    report["rows_for_90pct"] = first90;
  }
  if (!o.json_out.empty()) std::ofstream(o.json_out) << report.dump(2) << "\n";
}

}  // namespace

void add_bench_store_command(CLI::App& bench) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = bench.add_subcommand("store", "row store tiers, cache, prefetch overlap, fio");
  cmd->add_option("--checkpoint", o->checkpoint, "DeepSeek-V4.1 checkpoint directory");
  cmd->add_option("--work", o->work, "where a synthetic checkpoint is written")
      ->capture_default_str();
  cmd->add_option("--vocab", o->vocab, "synthetic: engram_vocab_size (rows ~ 24x)")
      ->capture_default_str();
  cmd->add_option("--corpus", o->corpus, "Brown corpus folder")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json")->capture_default_str();
  cmd->add_option("--tokens", o->tokens, "tokens of real text to hash")->capture_default_str();
  cmd->add_option("--zipf", o->zipf, "Zipf exponent of the synthetic stream")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "tokens per step")->capture_default_str();
  cmd->add_option("--steps", o->steps, "steps per measurement")->capture_default_str();
  cmd->add_option("--qd", o->qd, "io_uring queue depth (and fio iodepth)")->capture_default_str();
  cmd->add_option("--fio-seconds", o->fio_seconds, "fio runtime")->capture_default_str();
  cmd->add_flag("--no-fio", o->no_fio, "skip the fio comparison");
  cmd->add_option("--compute-us", o->compute_us,
                  "simulated compute per step (0: slowest lone fetch)");
  cmd->add_option("--json", o->json_out, "also write the numbers as JSON here");
  cmd->callback([o] { run_bench_store(*o); });
}

}  // namespace engram::cli
