// bench_hash: n-gram hashing throughput of the plain reference kernel and the fast kernel
// (one thread and all threads), on the demo config or any Engram config.
//   bench_hash [--config configs/engram_demo.json] [--batch 8] [--time 4096] [--repeat 10]
// Prints positions/s per layer pass and for all layers (hash_layers), with a synthetic
// DeepSeek-V3-sized compression lookup (129280 raw ids -> 98627, or the config's size).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "hash/hash_kernels.h"
#include "util/cpu_info.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

template <typename F>
double best_seconds(int repeat, F&& fn) {
  fn();  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("%s\n", engram::cpu_info_line().c_str());  // figures are per CPU and ISA
  std::string config_path = "configs/engram_demo.json";
  int64_t B = 8, T = 4096;
  int repeat = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config"))
      config_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--batch"))
      B = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--time"))
      T = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeat"))
      repeat = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_hash [--config F] [--batch B] [--time T] [--repeat R]\n");
      return 2;
    }
  }
  try {
    const engram::EngramConfig cfg = engram::EngramConfig::from_file(config_path);
    const int64_t compressed = cfg.compressed_vocab_size.value_or(98627);
    std::mt19937_64 rng(0);
    std::vector<int64_t> lookup(129280);
    for (size_t i = 0; i < lookup.size(); ++i) {
      lookup[i] = static_cast<int64_t>(i) < compressed ? static_cast<int64_t>(i)
                                                       : static_cast<int64_t>(rng() % compressed);
    }
    engram::NgramHasher h(cfg, lookup, compressed);
    const int64_t C = h.num_columns(), positions = B * T;
    std::vector<int64_t> ids(static_cast<size_t>(positions));
    for (auto& v : ids) v = static_cast<int64_t>(rng() % lookup.size());
    std::vector<int64_t> comp(ids.size());
    h.compress(ids, B, T, comp);
    const int64_t layer = h.layer_ids()[0];
    std::vector<int64_t> out(static_cast<size_t>(positions * C));
    std::printf("%s (%s): %zu layers, max_ngram %d, %lld heads, %lld columns; B=%lld T=%lld\n",
                config_path.c_str(), engram::form_name(cfg.form), h.layer_ids().size(),
                h.max_ngram(), static_cast<long long>(h.n_head()), static_cast<long long>(C),
                static_cast<long long>(B), static_cast<long long>(T));

    const double t_ref = best_seconds(repeat, [&] {
      for (int64_t b = 0; b < B; ++b) {
        engram::hash_detail::hash_row_reference(h.layout(layer), h.max_ngram(), h.n_head(),
                                                h.pad_compressed(), comp.data() + b * T, nullptr, T,
                                                {}, out.data() + b * T * C, false);
      }
    });
    std::printf("one layer, reference kernel        %8.2f M positions/s\n",
                positions / t_ref / 1e6);
    int max_threads = 1;
#ifdef _OPENMP
    max_threads = omp_get_max_threads();
#endif
    for (int threads : {1, max_threads}) {
      h.set_num_threads(threads);
      const double t_fast =
          best_seconds(repeat, [&] { h.hash_compressed(layer, comp, B, T, out, {}, false); });
      std::printf("one layer, fast kernel, %2d thread(s) %8.2f M positions/s  (%.1fx reference)\n",
                  threads, positions / t_fast / 1e6, t_ref / t_fast);
      std::vector<std::vector<int64_t>> all(h.layer_ids().size(), out);
      std::vector<std::span<int64_t>> outs(all.begin(), all.end());
      const double t_all = best_seconds(repeat, [&] { h.hash_layers(ids, B, T, outs, {}, false); });
      std::printf("all layers from raw ids, %2d thread(s) %7.2f M positions/s\n", threads,
                  positions / t_all / 1e6);
      if (max_threads == 1) break;
    }
  } catch (const engram::Error& e) {
    std::fprintf(stderr, "bench_hash: %s\n", e.what());
    return 1;
  }
  return 0;
}
