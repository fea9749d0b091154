// Times the transformer kernels of src/nn (attention.h, kernels.h) that are not OpenBLAS calls,
// at the shapes of bench/bench_train.py's model (B=8, T=256, 4 heads of D=64, vocab 8192):
// causal attention forward / backward and cross-entropy forward / backward, per call, with
// GFLOP/s for attention (its causal FLOPs: 2 products of 2*D per (query, key <= query) pair
// forward, 4 backward).
// Best of --reps calls, thread CPU time; run with OMP_NUM_THREADS=1 for the one-core figures.
// Usage: bench_model_kernels [reps]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "nn/attention.h"
#include "nn/kernels.h"
#include "util/cpu_info.h"

namespace {

double process_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

template <class F>
double best_ms(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    const double t0 = process_seconds();
    f();
    best = std::min(best, process_seconds() - t0);
  }
  return best * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("%s\n", engram::cpu_info_line().c_str());  // figures are per CPU and ISA
  using namespace engram::nn;
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t B = 8, T = 256, H = 4, KV = 4, D = 64, V = 8192, N = B * T;
  const int64_t QKV = (H + 2 * KV) * D;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> qkv(N * QKV), out(N * H * D), att(B * H * T * T), dout(N * H * D),
      dqkv(N * QKV);
  for (float& x : qkv) x = normal(rng);
  for (float& x : dout) x = normal(rng);
  const double attn_flops = 2.0 * 2.0 * double(B * H * D) * (double(T) * (T + 1) / 2.0);
  const double fwd =
      best_ms(reps, [&] { attention_forward(out.data(), att.data(), qkv.data(), B, T, H, KV, D); });
  const double bwd = best_ms(reps, [&] {
    attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, H, KV, D);
  });
  std::printf(
      "attention B=%ld T=%ld H=%ld D=%ld: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms "
      "(%.1f GFLOP/s)\n",
      long(B), long(T), long(H), long(D), fwd, attn_flops / fwd / 1e6, bwd,
      2 * attn_flops / bwd / 1e6);

  std::vector<float> logits(N * V), work(N * V), losses(N), lse(N);
  std::vector<int32_t> targets(N);
  for (float& x : logits) x = normal(rng);
  for (int32_t& t : targets) t = int32_t(rng() % V);
  double ce_fwd = 1e30, ce_bwd = 1e30;
  for (int r = 0; r < reps; r++) {
    work = logits;
    ce_fwd = std::min(ce_fwd, best_ms(1, [&] {
                        crossentropy_forward(losses.data(), lse.data(), work.data(), targets.data(),
                                             N, V);
                      }));
    ce_bwd = std::min(ce_bwd, best_ms(1, [&] {
                        crossentropy_backward_inplace(work.data(), lse.data(), targets.data(), N, V,
                                                      1.0f / N);
                      }));
  }
  std::printf("cross-entropy N=%ld V=%ld: forward %.2f ms, backward %.2f ms\n", long(N), long(V),
              ce_fwd, ce_bwd);
  return 0;
}
