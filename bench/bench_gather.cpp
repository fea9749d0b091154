// bench_gather: random-row gathers from a table larger than the last-level cache, per row
// format, beside the peer every gather must at least match: a plain memcpy loop that copies
// the same rows' bytes (values + scales) into a packed buffer.
//
//   bench_gather [--table-mb 1024] [--width 256] [--batch 512] [--ids 262144]
//                [--zipf 0 (uniform) | s > 0] [--threads N] [--reps 15] [--no-huge-pages]
//                [--format f32|bf16|f8_e4m3 (default: all three)] [--no-reference]
//                [--write-bound]
//
// Each format gets its own table of about --table-mb MiB (f32: 1 KiB rows; bf16: 512 B;
// f8_e4m3: 256 B + 8 scale bytes at width 256). Every timed run gathers --ids rows in batches of
// --batch into one reused, 64-byte aligned output buffer, as a layer would. Each run draws fresh
// ids (uniform, or Zipf(s) over rows with the ranks scattered over the table), so no run finds
// the rows an earlier run left in the caches: with a table much larger than the last-level
// cache, every row is a DRAM miss, as in a table of hundreds of GB.
//
// Statistics: --reps rounds, in each of which every kernel runs once, in a random order. A
// kernel's ratio to memcpy is taken within each round (the two runs are milliseconds apart, so a
// noisy neighbour on a shared machine slows both alike) and the median over rounds is printed
// with its quartiles; rows/s and GB/s come from the median run time.
// --write-bound adds a loop that only writes each row's fp32 output (4 * width bytes of zeros),
// reading nothing: a bound on any gather into fp32. With the rows in cache it shows where fp8
// gathers stand: their output is 3.9x the bytes a memcpy moves.
//
// Tables are anonymous mappings with MADV_HUGEPAGE, as the DRAM tier allocates them
// (DramStoreOptions::huge_pages); --no-huge-pages gives 4 KiB pages, where every random row also
// costs a page walk.
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engram/row_format.h"
#include "engram/row_gather.h"
#include "table/row_format_ref.h"
#include "util/clock.h"
#include "util/cpu_info.h"

namespace {

struct Args {
  int64_t table_mb = 1024;
  int64_t width = 256;
  int64_t batch = 512;
  int64_t ids = 1 << 18;
  double zipf = 0.0;
  int threads = 0;  // 0: omp_get_max_threads()
  int reps = 15;
  bool huge_pages = true;
  bool reference = true;  // also time the scalar reference kernel (one thread)
  bool write_bound = false;
  std::string format;  // empty: every format
};

// An anonymous mapping of `bytes`, with MADV_HUGEPAGE when asked (else MADV_NOHUGEPAGE).
struct Mapping {
  uint8_t* p = nullptr;
  size_t n = 0;
  Mapping(size_t bytes, bool huge) : n(bytes ? bytes : 1) {
    void* m = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("bench_gather: mmap");
      std::exit(1);
    }
    ::madvise(m, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    p = static_cast<uint8_t*>(m);
  }
  ~Mapping() { ::munmap(p, n); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* data() { return p; }
  uint8_t* begin() { return p; }
  uint8_t* end() { return p + n; }
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--table-mb")
      a.table_mb = std::atoll(next());
    else if (k == "--width")
      a.width = std::atoll(next());
    else if (k == "--batch")
      a.batch = std::atoll(next());
    else if (k == "--ids")
      a.ids = std::atoll(next());
    else if (k == "--zipf")
      a.zipf = std::atof(next());
    else if (k == "--threads")
      a.threads = std::atoi(next());
    else if (k == "--reps")
      a.reps = std::atoi(next());
    else if (k == "--no-huge-pages")
      a.huge_pages = false;
    else if (k == "--no-reference")
      a.reference = false;
    else if (k == "--write-bound")
      a.write_bound = true;
    else if (k == "--format") {
      a.format = next();
      if (a.format != "f32" && a.format != "bf16" && a.format != "f8_e4m3") {
        std::fprintf(stderr, "--format must be f32, bf16 or f8_e4m3 (got %s)\n", a.format.c_str());
        std::exit(2);
      }
    } else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of bench_gather.cpp)\n",
                   k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Zipf(s) ranks by inverting the continuous approximation of the CDF, then scattered over the
// table by an odd multiplier so hot rows are not neighbours.
// Fills ids (reusing its memory, so that every run reads ids from the same pages).
void make_ids(std::vector<int64_t>& ids, int64_t rows, double s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& id : ids) {
    if (s <= 0) {
      id = static_cast<int64_t>(rng() % static_cast<uint64_t>(rows));
      continue;
    }
    double rank;
    const double x = u(rng);
    if (std::fabs(s - 1.0) < 1e-9) {
      rank = std::pow(static_cast<double>(rows), x);
    } else {
      const double a = 1.0 - s;
      rank = std::pow(x * (std::pow(static_cast<double>(rows), a) - 1.0) + 1.0, 1.0 / a);
    }
    const uint64_t r = std::min<uint64_t>(static_cast<uint64_t>(rank) - 1, rows - 1);
    id = static_cast<int64_t>((r * 0x9E3779B97F4A7C15ull) % static_cast<uint64_t>(rows));
  }
}

// Runs every kernel once per round, `reps` rounds, in a new random order each round. (A fixed
// or rotating order makes each kernel always follow the same one; measured here, the kernel that
// always ran right after the memcpy loop lost 15-20% against the same kernel elsewhere in the
// order.) Before each timed run, prepare(run) draws that run's ids (untimed). Returns the run
// times, [kernel][round].
std::vector<std::vector<double>> time_rounds(int reps, const std::vector<std::function<void()>>& fs,
                                             const std::function<void(int)>& prepare) {
  const size_t n = fs.size();
  std::vector<std::vector<double>> t(n, std::vector<double>(static_cast<size_t>(reps)));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(7);
  int run = 0;
  for (const auto& f : fs) {  // warm-up: page in the output, spin up the threads
    prepare(run++);
    f();
  }
  for (int r = 0; r < reps; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k : order) {
      prepare(run++);
      const auto t0 = std::chrono::steady_clock::now();
      fs[k]();
      t[k][static_cast<size_t>(r)] = engram::seconds_since(t0);
    }
  }
  return t;
}

// The q-quantile (0..1) of v, nearest rank.
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

struct Row {
  std::string format, kernel;
  int threads;
  double out_bytes, read_bytes, rows;
};

// One line: rates from the kernel's median run time; the ratio to memcpy per round, as median
// and quartiles.
void print(const Row& r, const std::vector<double>& secs, const std::vector<double>& memcpy_secs) {
  std::vector<double> ratio(secs.size());
  for (size_t i = 0; i < secs.size(); ++i) ratio[i] = memcpy_secs[i] / secs[i];
  const double t = quantile(secs, 0.5);
  std::printf("%-8s %-18s %7d %10.2f %10.2f %10.2f %8.2f  %.2f-%.2f\n", r.format.c_str(),
              r.kernel.c_str(), r.threads, r.rows / t / 1e6, r.out_bytes / t / 1e9,
              r.read_bytes / t / 1e9, quantile(ratio, 0.5), quantile(ratio, 0.25),
              quantile(ratio, 0.75));
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("%s\n", engram::cpu_info_line().c_str());  // figures are per CPU and ISA
  using namespace engram;
  const Args a = parse(argc, argv);
  const int max_threads = a.threads > 0 ? a.threads : omp_get_max_threads();
  std::vector<int> thread_counts = {1};
  if (max_threads > 1) thread_counts.push_back(max_threads);

  std::printf(
      "bench_gather: table %lld MiB per format, width %lld, %lld ids in batches of %lld, "
      "%s, %s pages, %d rounds\n",
      static_cast<long long>(a.table_mb), static_cast<long long>(a.width),
      static_cast<long long>(a.ids), static_cast<long long>(a.batch),
      a.zipf > 0 ? ("zipf s=" + std::to_string(a.zipf)).c_str() : "uniform ids",
      a.huge_pages ? "huge" : "4 KiB", a.reps);
  std::printf("%-8s %-18s %7s %10s %10s %10s %8s  %s\n", "format", "kernel", "threads", "Mrows/s",
              "GB/s out", "GB/s read", "x memcpy", "quartiles");

  for (RowDtype dt : {RowDtype::f32, RowDtype::bf16, RowDtype::f8_e4m3}) {
    if (!a.format.empty() && a.format != row_dtype_name(dt)) continue;
    const RowFormat fmt = RowFormat::make(dt, a.width);
    const int64_t rows = a.table_mb * (1 << 20) / fmt.row_bytes();
    Mapping data(static_cast<size_t>(rows * fmt.data_bytes), a.huge_pages);
    Mapping scale(static_cast<size_t>(rows * fmt.scale_bytes), a.huge_pages);
    {
      // Finite, normal values: random e4m3 codes without NaN, scales near 1, bf16/f32 from
      // random normals (values do not change the speed of these kernels; NaN/denormals could).
      std::mt19937 rng(1);
      if (dt == RowDtype::f8_e4m3) {
        for (auto& b : data)
          b = static_cast<uint8_t>(rng() % 0x7F) | static_cast<uint8_t>(rng() & 0x80);
        for (auto& b : scale) b = static_cast<uint8_t>(120 + rng() % 16);
      } else {
        std::normal_distribution<float> nd;
        std::vector<float> row(static_cast<size_t>(a.width));
        for (int64_t r = 0; r < rows; ++r) {
          if (r < 4096)
            for (auto& v : row) v = nd(rng);
          quantize_row(fmt, row.data(), data.data() + r * fmt.data_bytes, nullptr);
        }
      }
    }
    std::vector<int64_t> ids(static_cast<size_t>(a.ids));
    const int64_t batches = a.ids / a.batch;
    const double nrows = static_cast<double>(batches * a.batch);
    const double read_bytes = nrows * static_cast<double>(fmt.row_bytes());
    // Output buffers as a layer's activations would be: 64-byte aligned (page aligned here).
    Mapping out_map(static_cast<size_t>(a.batch * a.width) * sizeof(float), false);
    Mapping packed_map(static_cast<size_t>(a.batch * fmt.row_bytes()), false);
    float* out = reinterpret_cast<float*>(out_map.data());
    uint16_t* out16 = reinterpret_cast<uint16_t*>(out_map.data());
    uint8_t* packed = packed_map.data();
    const uint8_t* sc = fmt.scale_bytes ? scale.data() : nullptr;
    const auto batch_ids = [&](int64_t b) {
      return std::span<const int64_t>(ids.data() + b * a.batch, static_cast<size_t>(a.batch));
    };

    for (int t : thread_counts) {
      omp_set_num_threads(t);
      std::vector<std::function<void()>> fs;
      fs.push_back([&] {  // the peer: copy the same rows' bytes into a packed buffer
        for (int64_t b = 0; b < batches; ++b) {
          const int64_t* bid = ids.data() + b * a.batch;
#pragma omp parallel for schedule(static) num_threads(t)
          for (int64_t i = 0; i < a.batch; ++i) {
            uint8_t* dst = packed + i * fmt.row_bytes();
            std::memcpy(dst, data.data() + bid[i] * fmt.data_bytes,
                        static_cast<size_t>(fmt.data_bytes));
            if (sc) {
              std::memcpy(dst + fmt.data_bytes, sc + bid[i] * fmt.scale_bytes,
                          static_cast<size_t>(fmt.scale_bytes));
            }
          }
        }
      });
      fs.push_back([&] {
        for (int64_t b = 0; b < batches; ++b) {
          gather_rows(fmt, data.data(), sc, rows, batch_ids(b), out);
        }
      });
      fs.push_back([&] {
        for (int64_t b = 0; b < batches; ++b) {
          gather_rows_bf16(fmt, data.data(), sc, rows, batch_ids(b), out16);
        }
      });
      if (t == 1 && a.reference) {
        fs.push_back([&] {
          for (int64_t b = 0; b < batches; ++b) {
            reference::gather_rows(fmt, data.data(), sc, rows, batch_ids(b), out);
          }
        });
      }
      const size_t bound_at = fs.size();
      if (a.write_bound) {
        fs.push_back([&] {
          for (int64_t b = 0; b < batches; ++b) {
#pragma omp parallel for schedule(static) num_threads(t)
            for (int64_t i = 0; i < a.batch; ++i) {
              std::memset(out + i * a.width, 0, static_cast<size_t>(a.width) * sizeof(float));
            }
          }
        });
      }
      const auto secs = time_rounds(a.reps, fs, [&](int run) {
        make_ids(ids, rows, a.zipf, 1000003ull * static_cast<uint64_t>(t) + run);
      });
      const std::string name = row_dtype_name(dt);
      const double w = static_cast<double>(a.width);
      print({name, "memcpy (peer)", t, read_bytes, read_bytes, nrows}, secs[0], secs[0]);
      print({name, "gather_rows ->f32", t, nrows * w * 4, read_bytes, nrows}, secs[1], secs[0]);
      print({name, "gather_rows ->bf16", t, nrows * w * 2, read_bytes, nrows}, secs[2], secs[0]);
      if (t == 1 && a.reference) {
        print({name, "reference ->f32", t, nrows * w * 4, read_bytes, nrows}, secs[3], secs[0]);
      }
      if (a.write_bound) {
        print({name, "f32 writes only", t, nrows * w * 4, 0, nrows}, secs[bound_at], secs[0]);
      }
    }
  }
  return 0;
}
