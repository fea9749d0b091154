// The measured fp32 ceiling of one core, next to which bench/bench_train.py's GFLOP/s are read:
//   1. FMA throughput: 10 independent chains of vector multiply-adds (enough to cover the FMA
//      latency on every current x86 core), so the loop runs at the FMA pipes' issue rate at
//      whatever clock the core actually runs (nominal 'cpu MHz' does not count boost).
//   2. OpenBLAS sgemm on the shapes of one training step of the bench_train model (d=256,
//      F=768, vocab 8192, B*T=2048 rows), single-threaded: the rate the GEMMs of a step can reach.
// Times are thread CPU time (best of several runs), so a shared machine's load shows less.
// Usage: bench_cpu_peak   (run it with OPENBLAS_NUM_THREADS=1)
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "nn/vec.h"
#include "util/cpu_info.h"

namespace {

double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

using engram::nn::kLanes;
using engram::nn::vfloat;

double fma_gflops() {
  const vfloat one = vfloat{} + 1.0f, m = vfloat{} + 0.999999f, b = vfloat{} + 1e-6f;
  vfloat a0 = one, a1 = one, a2 = one, a3 = one, a4 = one, a5 = one, a6 = one, a7 = one, a8 = one,
         a9 = one;
  const long iters = 50'000'000;
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    const double t0 = thread_seconds();
    for (long i = 0; i < iters; i++) {
      a0 = a0 * m + b;
      a1 = a1 * m + b;
      a2 = a2 * m + b;
      a3 = a3 * m + b;
      a4 = a4 * m + b;
      a5 = a5 * m + b;
      a6 = a6 * m + b;
      a7 = a7 * m + b;
      a8 = a8 * m + b;
      a9 = a9 * m + b;
      // Keeps the chains in registers and the loop from being folded.
      asm volatile(""
                   : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                     "+v"(a8), "+v"(a9));
    }
    best = std::min(best, thread_seconds() - t0);
  }
  return double(iters) * 10 * kLanes * 2 / best / 1e9;
}

// C (M, N) = op(A) op(B), row-major, as the model calls it; returns GFLOP/s (best of 5).
double gemm_gflops(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K) {
  std::vector<float> A(size_t(M) * K, 0.01f), B(size_t(K) * N, 0.02f), C(size_t(M) * N, 0.0f);
  const int lda = ta == CblasNoTrans ? K : M, ldb = tb == CblasNoTrans ? N : K;
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    const double t0 = thread_seconds();
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(),
                N);
    best = std::min(best, thread_seconds() - t0);
  }
  return 2.0 * M * N * K / best / 1e9;
}

}  // namespace

int main() {
  std::printf("%s\n", engram::cpu_info_line().c_str());  // figures are per CPU and ISA
  const double fma = fma_gflops();
  std::printf("fp32 FMA throughput, one core: %.1f GFLOP/s (at Zen 4's 32 FLOP/cycle: %.2f GHz)\n",
              fma, fma / 32.0);
  const CBLAS_TRANSPOSE n = CblasNoTrans, t = CblasTrans;
  const int rows = 2048;
  struct Shape {
    const char* name;
    int in, out;
  } shapes[] = {{"qkv / gate+up (256 -> 768)", 256, 768},
                {"gate+up (256 -> 1536)", 256, 1536},
                {"down (768 -> 256)", 768, 256},
                {"lm_head (256 -> 8192)", 256, 8192}};
  std::printf("OpenBLAS sgemm, one thread, %d rows: forward x W^T | dx = dy W | dW = dy^T x\n",
              rows);
  for (const Shape& s : shapes) {
    std::printf("  %-28s %6.1f | %6.1f | %6.1f GFLOP/s\n", s.name,
                gemm_gflops(n, t, rows, s.out, s.in), gemm_gflops(n, n, rows, s.in, s.out),
                gemm_gflops(t, n, s.out, s.in, rows));
  }
  return 0;
}
