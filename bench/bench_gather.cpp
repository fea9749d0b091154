// bench_gather: random-row gathers from a table larger than the last-level cache, per row
// format, beside the peer every gather must at least match: a plain memcpy loop that copies
// the same rows' bytes (values + scales) into a packed buffer.
//
//   bench_gather [--table-mb 1024] [--width 256] [--batch 4096] [--ids 1048576]
//                [--zipf 0 (uniform) | s > 0] [--threads N] [--reps 3] [--no-huge-pages]
//                [--format f32|bf16|f8_e4m3 (default: all three)]
//
// Each format gets its own table of about --table-mb MiB (f32: 1 KiB rows; bf16: 512 B;
// f8_e4m3: 256 B + 8 scale bytes at width 256). Ids are drawn once (uniform or Zipf(s) over
// rows, ranks scattered over the table) and gathered in batches of --batch rows into one reused
// output buffer, as a layer would. Reported: rows/s, GB/s of output written and of table bytes
// read, and the ratio of rows/s to the memcpy loop on the same ids and threads (best of --reps
// rounds in which all kernels take turns). Tables are anonymous mappings with MADV_HUGEPAGE, as
// the DRAM tier allocates them (DramStoreOptions::huge_pages); --no-huge-pages gives 4 KiB pages,
// where every random row also costs a page walk.
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engram/row_format.h"

namespace {

struct Args {
  int64_t table_mb = 1024;
  int64_t width = 256;
  int64_t batch = 4096;
  int64_t ids = 1 << 20;
  double zipf = 0.0;
  int threads = 0;  // 0: omp_get_max_threads()
  int reps = 3;
  bool huge_pages = true;
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
    else if (k == "--format") {
      a.format = next();
      if (a.format != "f32" && a.format != "bf16" && a.format != "f8_e4m3") {
        std::fprintf(stderr, "--format must be f32, bf16 or f8_e4m3 (got %s)\n", a.format.c_str());
        std::exit(2);
      }
    }
    else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of bench_gather.cpp)\n",
                   k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Zipf(s) ranks by inverting the continuous approximation of the CDF, then scattered over the
// table by an odd multiplier so hot rows are not neighbours.
std::vector<int64_t> make_ids(int64_t n, int64_t rows, double s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int64_t> ids(static_cast<size_t>(n));
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
  return ids;
}

// Best time of each function over `reps` rounds; the functions take turns within a round, so
// a noisy neighbour on a shared machine slows all of them alike instead of one of them.
std::vector<double> best_seconds_interleaved(int reps,
                                             const std::vector<std::function<void()>>& fs) {
  for (const auto& f : fs) f();  // warm-up: page in, spin up threads
  std::vector<double> best(fs.size(), 1e300);
  for (int r = 0; r < reps; ++r) {
    for (size_t k = 0; k < fs.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      fs[k]();
      const auto t1 = std::chrono::steady_clock::now();
      best[k] = std::min(best[k], std::chrono::duration<double>(t1 - t0).count());
    }
  }
  return best;
}

struct Row {
  std::string format, kernel;
  int threads;
  double seconds, out_bytes, read_bytes, rows;
};

void print(const Row& r, double memcpy_seconds) {
  std::printf("%-8s %-18s %7d %10.2f %10.2f %10.2f %8.2f\n", r.format.c_str(), r.kernel.c_str(),
              r.threads, r.rows / r.seconds / 1e6, r.out_bytes / r.seconds / 1e9,
              r.read_bytes / r.seconds / 1e9, memcpy_seconds / r.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace engram;
  const Args a = parse(argc, argv);
  const int max_threads = a.threads > 0 ? a.threads : omp_get_max_threads();
  std::vector<int> thread_counts = {1};
  if (max_threads > 1) thread_counts.push_back(max_threads);

  std::printf(
      "bench_gather: table %lld MiB per format, width %lld, %lld ids in batches of %lld, "
      "%s, %s pages, best of %d\n",
      static_cast<long long>(a.table_mb), static_cast<long long>(a.width),
      static_cast<long long>(a.ids), static_cast<long long>(a.batch),
      a.zipf > 0 ? ("zipf s=" + std::to_string(a.zipf)).c_str() : "uniform ids",
      a.huge_pages ? "huge" : "4 KiB", a.reps);
  std::printf("%-8s %-18s %7s %10s %10s %10s %8s\n", "format", "kernel", "threads", "Mrows/s",
              "GB/s out", "GB/s read", "x memcpy");

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
    const std::vector<int64_t> ids = make_ids(a.ids, rows, a.zipf, 42);
    const int64_t batches = a.ids / a.batch;
    const double nrows = static_cast<double>(batches * a.batch);
    const double read_bytes = nrows * static_cast<double>(fmt.row_bytes());
    std::vector<float> out(static_cast<size_t>(a.batch * a.width));
    std::vector<uint16_t> out16(static_cast<size_t>(a.batch * a.width));
    std::vector<uint8_t> packed(static_cast<size_t>(a.batch * fmt.row_bytes()));
    const uint8_t* sc = fmt.scale_bytes ? scale.data() : nullptr;

    for (int t : thread_counts) {
      omp_set_num_threads(t);
      std::vector<std::function<void()>> fs;
      fs.push_back([&] {  // the peer: copy the same rows' bytes into a packed buffer
        for (int64_t b = 0; b < batches; ++b) {
          const int64_t* bid = ids.data() + b * a.batch;
#pragma omp parallel for schedule(static) num_threads(t)
          for (int64_t i = 0; i < a.batch; ++i) {
            uint8_t* dst = packed.data() + i * fmt.row_bytes();
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
          gather_rows(fmt, data.data(), sc, rows,
                      std::span<const int64_t>(ids.data() + b * a.batch, a.batch), out.data());
        }
      });
      fs.push_back([&] {
        for (int64_t b = 0; b < batches; ++b) {
          gather_rows_bf16(fmt, data.data(), sc, rows,
                           std::span<const int64_t>(ids.data() + b * a.batch, a.batch),
                           out16.data());
        }
      });
      if (t == 1) {
        fs.push_back([&] {
          for (int64_t b = 0; b < batches; ++b) {
            reference::gather_rows(fmt, data.data(), sc, rows,
                                   std::span<const int64_t>(ids.data() + b * a.batch, a.batch),
                                   out.data());
          }
        });
      }
      const std::vector<double> secs = best_seconds_interleaved(a.reps, fs);
      const std::string name = row_dtype_name(dt);
      const double w = static_cast<double>(a.width);
      print({name, "memcpy (peer)", t, secs[0], read_bytes, read_bytes, nrows}, secs[0]);
      print({name, "gather_rows ->f32", t, secs[1], nrows * w * 4, read_bytes, nrows}, secs[0]);
      print({name, "gather_rows ->bf16", t, secs[2], nrows * w * 2, read_bytes, nrows}, secs[0]);
      if (t == 1) {
        print({name, "reference ->f32", t, secs[3], nrows * w * 4, read_bytes, nrows}, secs[0]);
      }
    }
  }
  return 0;
}
