// Row formats: every scalar conversion against an independent definition (exhaustive where the
// domain is small), and every fast kernel against engram::reference, bit for bit.
#include "engram/row_format.h"
#include "engram/row_gather.h"
#include "table/row_format_ref.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engram/error.h"

namespace engram {
namespace {

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}
float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

// Equal bits, or both NaN (NaN payloads of a product depend on operand order, which the
// compiler may pick; every NaN input is still a NaN output).
bool same(float a, float b) {
  return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b));
}
bool same_bf16(uint16_t a, uint16_t b) {
  auto nan = [](uint16_t x) { return (x & 0x7F80) == 0x7F80 && (x & 0x7F) != 0; };
  return a == b || (nan(a) && nan(b));
}

// ---- bf16 -----------------------------------------------------------------------------------

TEST(Bf16, ToF32IsExhaustivelyTheHighHalf) {
  for (uint32_t b = 0; b < 65536; ++b) {
    ASSERT_EQ(bits(bf16_to_f32(static_cast<uint16_t>(b))), b << 16) << b;
  }
}

// Independent round-to-nearest-even: pick the nearer of the two bf16 neighbours in double.
uint16_t bf16_by_distance(float x) {
  if (std::isnan(x)) return 0xFFFF;
  const uint32_t u = bits(x);
  const uint32_t lo = u & 0xFFFF0000u;  // toward zero
  const uint32_t hi = lo + 0x10000u;    // away from zero (may be inf)
  auto val = [](uint32_t v) {
    if ((v & 0x7FFFFFFFu) == 0x7F800000u)
      return std::copysign(std::ldexp(1.0, 128), (double)from_bits(v));
    return static_cast<double>(from_bits(v));
  };
  if (std::isinf(x)) return static_cast<uint16_t>(u >> 16);
  const double dl = std::fabs((double)x - val(lo)), dh = std::fabs(val(hi) - (double)x);
  if (dl < dh) return static_cast<uint16_t>(lo >> 16);
  if (dh < dl) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

TEST(Bf16, FromF32RoundsToNearestEven) {
  std::vector<float> xs = {0.0f,
                           -0.0f,
                           1.0f,
                           -1.0f,
                           3.14159f,
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::max(),
                           std::numeric_limits<float>::min(),
                           std::numeric_limits<float>::denorm_min(),
                           from_bits(0x7F7F8000u),  // tie between max bf16 and inf: goes to inf
                           from_bits(0x7F7F7FFFu),  // just below that tie: max bf16
                           from_bits(0x3F808000u),  // tie, lower neighbour even: stays
                           from_bits(0x3F818000u),  // tie, lower neighbour odd: rounds up
                           from_bits(0x00008000u),
                           from_bits(0x00018000u),  // subnormal ties
                           from_bits(0x807FFFFFu)};
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) xs.push_back(from_bits(rng()));
  for (int i = 0; i < 1000; ++i) xs.push_back(from_bits((rng() & 0xFFFF0000u) | 0x8000u));  // ties
  for (float x : xs) ASSERT_EQ(f32_to_bf16(x), bf16_by_distance(x)) << std::hex << bits(x);
}

TEST(Bf16, NanGivesAllOnesAsPyTorchContiguousCast) {
  EXPECT_EQ(f32_to_bf16(from_bits(0x7FC00000u)), 0xFFFF);
  EXPECT_EQ(f32_to_bf16(from_bits(0xFF800001u)), 0xFFFF);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F800001u)), 0xFFFF);  // would round to inf without the check
}

TEST(Bf16, RoundTripOfEveryNonNanValue) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const bool nan = (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0;
    if (!nan) {
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(b))), b);
    }
  }
}

// ---- e4m3fn ---------------------------------------------------------------------------------

// The format definition, evaluated in double.
double e4m3_definition(uint8_t c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  double v = e == 0 ? std::ldexp(m, -9) : std::ldexp(1.0 + m / 8.0, e - 7);
  return s ? -v : v;
}

TEST(E4m3, ToF32AllCodes) {
  for (int c = 0; c < 256; ++c) {
    const float f = e4m3_to_f32(static_cast<uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      ASSERT_EQ(bits(f), (c & 0x80 ? 0xFFF00000u : 0x7FF00000u)) << c;
    } else {
      ASSERT_EQ(bits(f), bits(static_cast<float>(e4m3_definition(static_cast<uint8_t>(c))))) << c;
    }
  }
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(bits(e4m3_to_f32(0x80)), 0x80000000u);
}

// Brute force: the nearest finite code, ties to the even code; saturating at +-448.
uint8_t e4m3_by_distance(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  if (std::isinf(x)) return x > 0 ? 0x7E : 0xFE;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const double a = std::fabs((double)x);
  int best = 0;
  double bd = INFINITY;
  for (int c = 0; c < 0x7F; ++c) {
    const double d = std::fabs(e4m3_definition(static_cast<uint8_t>(c)) - a);
    if (d < bd || (d == bd && (c & 1) == 0)) {
      bd = d;
      best = c;
    }
  }
  return sign | static_cast<uint8_t>(best);
}

TEST(E4m3, FromF32RoundTripsEveryCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    ASSERT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(c))), c) << c;
  }
}

TEST(E4m3, FromF32RoundsNearestEvenAndSaturates) {
  std::vector<float> xs = {0.0f,
                           -0.0f,
                           448.0f,
                           449.0f,
                           464.0f,
                           465.0f,
                           480.0f,
                           1e30f,
                           -1e30f,
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(),
                           -std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::denorm_min(),
                           -1e-30f,
                           std::ldexp(0.5f, -9),    // half the smallest subnormal: tie -> 0
                           std::ldexp(0.75f, -9),   // -> 1 * 2^-9
                           std::ldexp(1.5f, -9),    // tie between 1 and 2: -> 2 (even)
                           std::ldexp(2.5f, -9),    // tie between 2 and 3: -> 2
                           std::ldexp(7.5f, -9),    // tie between 7*2^-9 and 2^-6: -> 2^-6
                           std::ldexp(1.0625f, 0),  // tie between 1 and 1.125: -> 1
                           std::ldexp(1.1875f, 0),  // tie between 1.125 and 1.25: -> 1.25
                           std::ldexp(1.0f, -6),
                           240.0f,
                           232.0f,
                           248.0f};
  // Every midpoint between neighbouring codes, and one f32 ulp either side of it.
  for (int c = 0; c < 0x7E; ++c) {
    const float mid = static_cast<float>(
        (e4m3_definition(static_cast<uint8_t>(c)) + e4m3_definition(static_cast<uint8_t>(c + 1))) /
        2);
    xs.insert(xs.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid});
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-500.0f, 500.0f);
  for (int i = 0; i < 20000; ++i) xs.push_back(u(rng));
  for (int i = 0; i < 20000; ++i) xs.push_back(std::ldexp(u(rng), -12));  // subnormal range
  for (int i = 0; i < 20000; ++i) xs.push_back(from_bits(rng()));
  for (float x : xs)
    ASSERT_EQ(f32_to_e4m3(x), e4m3_by_distance(x)) << x << " " << std::hex << bits(x);
}

// ---- e8m0 -----------------------------------------------------------------------------------

TEST(E8m0, ToF32AllCodes) {
  for (int c = 0; c < 255; ++c) {
    ASSERT_EQ(e8m0_to_f32(static_cast<uint8_t>(c)), std::ldexp(1.0f, c - 127)) << c;
  }
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
  EXPECT_EQ(bits(e8m0_to_f32(0)), 0x00400000u);
}

TEST(E8m0, FromF32RoundsUpToPowerOfTwo) {
  for (int c = 0; c < 255; ++c) ASSERT_EQ(f32_to_e8m0(e8m0_to_f32(static_cast<uint8_t>(c))), c);
  EXPECT_EQ(f32_to_e8m0(1.5f), 128);
  EXPECT_EQ(f32_to_e8m0(std::nextafter(1.0f, 2.0f)), 128);
  EXPECT_EQ(f32_to_e8m0(std::nextafter(1.0f, 0.0f)), 127);
  EXPECT_EQ(f32_to_e8m0(-4.0f), 129);
  EXPECT_EQ(f32_to_e8m0(0.0f), 0);
  EXPECT_EQ(f32_to_e8m0(std::numeric_limits<float>::denorm_min()), 0);
  EXPECT_EQ(f32_to_e8m0(from_bits(0x00400001u)), 1);
  EXPECT_EQ(f32_to_e8m0(std::numeric_limits<float>::max()), 254);
  EXPECT_EQ(f32_to_e8m0(std::numeric_limits<float>::infinity()), 255);
  EXPECT_EQ(f32_to_e8m0(std::numeric_limits<float>::quiet_NaN()), 255);
}

// ---- RowFormat ------------------------------------------------------------------------------

TEST(RowFormat, SizesAndRefusals) {
  const RowFormat v41 = RowFormat::make(RowDtype::f8_e4m3, 256);
  EXPECT_EQ(v41.data_bytes, 256);
  EXPECT_EQ(v41.scale_bytes, 8);
  EXPECT_EQ(v41.row_bytes(), 264);
  EXPECT_EQ(RowFormat::make(RowDtype::bf16, 7).data_bytes, 14);
  EXPECT_EQ(RowFormat::make(RowDtype::f32, 3).row_bytes(), 12);
  EXPECT_THROW(RowFormat::make(RowDtype::f8_e4m3, 48), Error);
  EXPECT_THROW(RowFormat::make(RowDtype::f32, 0), Error);
}

// ---- Kernels vs reference -------------------------------------------------------------------

struct Table {
  RowFormat fmt;
  int64_t rows;
  std::vector<uint8_t> data, scale;
};

// Random bytes for every format: all codes (NaNs, subnormals) and every scale byte, including
// 0 (2^-127, subnormal products), 254 (overflow to inf) and 255 (NaN).
Table random_table(RowDtype dt, int64_t width, int64_t rows, uint32_t seed) {
  Table t{RowFormat::make(dt, width), rows, {}, {}};
  std::mt19937 rng(seed);
  t.data.resize(static_cast<size_t>(rows * t.fmt.data_bytes));
  for (auto& b : t.data) b = static_cast<uint8_t>(rng());
  t.scale.resize(static_cast<size_t>(rows * t.fmt.scale_bytes));
  for (auto& b : t.scale) {
    const uint32_t r = rng() % 8;
    b = r == 0 ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(120 + rng() % 16);
  }
  return t;
}

std::vector<int64_t> random_ids(int64_t n, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = static_cast<int64_t>(rng() % rows);
  return ids;
}

struct Case {
  RowDtype dt;
  int64_t width;
  int64_t n;  // n * width >= 65536 runs the OpenMP path
};

class GatherVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(GatherVsReference, F32AndBf16OutputsMatchBitForBit) {
  const Case c = GetParam();
  const Table t = random_table(c.dt, c.width, 1000, 3);
  const std::vector<int64_t> ids = random_ids(c.n, t.rows, 5);
  const size_t out_n = static_cast<size_t>(c.n * c.width);
  const uint8_t* sc = t.scale.empty() ? nullptr : t.scale.data();

  std::vector<float> ref(out_n), fast(out_n, -1.0f);
  reference::gather_rows(t.fmt, t.data.data(), sc, t.rows, ids, ref.data());
  gather_rows(t.fmt, t.data.data(), sc, t.rows, ids, fast.data());
  for (size_t i = 0; i < out_n; ++i) ASSERT_TRUE(same(ref[i], fast[i])) << i;

  std::vector<uint16_t> ref16(out_n), fast16(out_n);
  reference::gather_rows_bf16(t.fmt, t.data.data(), sc, t.rows, ids, ref16.data());
  gather_rows_bf16(t.fmt, t.data.data(), sc, t.rows, ids, fast16.data());
  for (size_t i = 0; i < out_n; ++i) ASSERT_TRUE(same_bf16(ref16[i], fast16[i])) << i;

  // The same rows handed over as pointers and as packed buffers.
  std::vector<const uint8_t*> dp, sp;
  std::vector<uint8_t> packed_d, packed_s;
  for (int64_t id : ids) {
    dp.push_back(t.data.data() + id * t.fmt.data_bytes);
    packed_d.insert(packed_d.end(), dp.back(), dp.back() + t.fmt.data_bytes);
    if (sc) {
      sp.push_back(sc + id * t.fmt.scale_bytes);
      packed_s.insert(packed_s.end(), sp.back(), sp.back() + t.fmt.scale_bytes);
    }
  }
  std::vector<float> viaptr(out_n), packed(out_n);
  dequantize_row_ptrs(t.fmt, dp, sp, viaptr.data());
  dequantize_rows(t.fmt, packed_d.data(), sc ? packed_s.data() : nullptr, c.n, packed.data());
  std::vector<uint16_t> packed16(out_n);
  dequantize_rows_bf16(t.fmt, packed_d.data(), sc ? packed_s.data() : nullptr, c.n,
                       packed16.data());
  for (size_t i = 0; i < out_n; ++i) {
    ASSERT_TRUE(same(ref[i], viaptr[i])) << i;
    ASSERT_TRUE(same(ref[i], packed[i])) << i;
    ASSERT_TRUE(same_bf16(ref16[i], packed16[i])) << i;
  }
  // One row, one call.
  std::vector<float> one(static_cast<size_t>(c.width));
  dequantize_row(t.fmt, dp[0], sc ? sp[0] : nullptr, one.data());
  for (int64_t i = 0; i < c.width; ++i) ASSERT_TRUE(same(ref[i], one[i]));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, GatherVsReference,
    ::testing::Values(Case{RowDtype::f32, 7, 33}, Case{RowDtype::f32, 256, 400},
                      Case{RowDtype::bf16, 33, 50}, Case{RowDtype::bf16, 256, 400},
                      Case{RowDtype::f8_e4m3, 32, 17}, Case{RowDtype::f8_e4m3, 96, 40},
                      Case{RowDtype::f8_e4m3, 256, 600}, Case{RowDtype::f8_e4m3, 544, 21}));

TEST(Gather, F8ValueIsTheFp32ProductOfDecodedFactors) {
  // V4.1 row: 256 values, 8 scales. value = e4m3_to_f32(q) * e8m0_to_f32(s), computed here
  // without any engram kernel in the way.
  const Table t = random_table(RowDtype::f8_e4m3, 256, 4, 9);
  std::vector<float> out(256);
  dequantize_row(t.fmt, t.data.data() + 256, t.scale.data() + 8, out.data());
  for (int i = 0; i < 256; ++i) {
    volatile float q = e4m3_to_f32(t.data[256 + i]);
    volatile float s = e8m0_to_f32(t.scale[8 + i / 32]);
    ASSERT_TRUE(same(out[i], q * s)) << i;
  }
}

// Gathers rows `ids` of f8 table t with the fast kernels and with engram::reference, to f32 and
// to bf16, and asserts the outputs equal bit for bit. A failure names the output index, the id
// of its row and its column.
void gathers_match_reference(const Table& t, const std::vector<int64_t>& ids) {
  const size_t w = static_cast<size_t>(t.fmt.width), out_n = ids.size() * w;
  std::vector<float> ref(out_n), fast(out_n);
  std::vector<uint16_t> ref16(out_n), fast16(out_n);
  reference::gather_rows(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, ref.data());
  gather_rows(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, fast.data());
  reference::gather_rows_bf16(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, ref16.data());
  gather_rows_bf16(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, fast16.data());
  for (size_t i = 0; i < out_n; ++i) {
    ASSERT_TRUE(same(ref[i], fast[i])) << i << " (id " << ids[i / w] << ", column " << i % w << ")";
    ASSERT_TRUE(same_bf16(ref16[i], fast16[i]))
        << i << " (id " << ids[i / w] << ", column " << i % w << ")";
  }
}

// Every e4m3 code under every scale byte, one scale per row, through every kernel that has the
// exact integer route (scale bytes 10..246) and the general one (the others), against
// engram::reference. Row s holds the 256 codes with all 8 scales equal to s.
TEST(Gather, F8EveryCodeUnderEveryScaleByte) {
  const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, 256);
  Table t{fmt, 256, std::vector<uint8_t>(256 * 256), std::vector<uint8_t>(256 * 8)};
  for (int r = 0; r < 256; ++r) {
    for (int c = 0; c < 256; ++c)
      t.data[static_cast<size_t>(r * 256 + c)] = static_cast<uint8_t>(c);
    for (int b = 0; b < 8; ++b) t.scale[static_cast<size_t>(r * 8 + b)] = static_cast<uint8_t>(r);
  }
  std::vector<int64_t> ids(512);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 97) % 256);
  // The id of a row is its scale byte, the column its code.
  ASSERT_NO_FATAL_FAILURE(gathers_match_reference(t, ids));
  std::vector<float> rows(256 * 256), ref_rows(256 * 256);
  std::vector<int64_t> all(256);
  for (int r = 0; r < 256; ++r) all[static_cast<size_t>(r)] = r;
  reference::gather_rows(fmt, t.data.data(), t.scale.data(), 256, all, ref_rows.data());
  dequantize_rows(fmt, t.data.data(), t.scale.data(), 256, rows.data());
  for (size_t i = 0; i < rows.size(); ++i) ASSERT_TRUE(same(ref_rows[i], rows[i])) << i;
}

// A row with one scale byte outside the exact route's range among rows inside it: the gathers
// hand that row to the general route after their loop, into the right output row.
TEST(Gather, F8RowsOffTheExactRouteLandInPlace) {
  Table t = random_table(RowDtype::f8_e4m3, 64, 64, 11);
  for (auto& b : t.scale) b = static_cast<uint8_t>(120 + (&b - t.scale.data()) % 7);
  t.scale[2 * 7 + 1] = 250;  // row 7, block 1: 2^123, beyond the exact route
  t.scale[2 * 30] = 3;       // row 30, block 0: 2^-124, subnormal products
  std::vector<int64_t> ids;
  for (int k = 0; k < 300; ++k) ids.push_back((k * 7 + (k % 3 == 0 ? 0 : 23)) % 64);
  ids[5] = 7;
  ids[250] = 30;
  gathers_match_reference(t, ids);
}

// Tables far larger than the caches (here 80 MiB) are gathered through a staging buffer (fp8
// rows only): rows are copied in chunks, then converted. Random rows, with scale bytes off the
// exact route among them, on one thread and on the OpenMP path, with batch sizes that end
// chunks early, against engram::reference.
TEST(Gather, F8FromALargeTableMatchesReference) {
  const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, 256);
  const int64_t rows = (int64_t{80} << 20) / fmt.row_bytes();
  Table t{fmt, rows, std::vector<uint8_t>(static_cast<size_t>(rows * fmt.data_bytes)),
          std::vector<uint8_t>(static_cast<size_t>(rows * fmt.scale_bytes))};
  const Table src = random_table(RowDtype::f8_e4m3, 256, 1000, 21);
  for (int64_t n : {1, 61, 62, 63, 700}) {
    std::vector<int64_t> ids = random_ids(n, rows, static_cast<uint32_t>(n));
    if (n > 3) ids[2] = ids[1];  // a row twice
    for (size_t k = 0; k < ids.size(); ++k) {
      const int64_t from = static_cast<int64_t>(k) % src.rows, to = ids[k];
      std::memcpy(t.data.data() + to * 256, src.data.data() + from * 256, 256);
      std::memcpy(t.scale.data() + to * 8, src.scale.data() + from * 8, 8);
    }
    ASSERT_NO_FATAL_FAILURE(gathers_match_reference(t, ids)) << n << " ids";
  }
}

TEST(Gather, BadIdThrowsAndWritesNothing) {
  const Table t = random_table(RowDtype::f8_e4m3, 32, 10, 1);
  std::vector<int64_t> ids = {1, 2, 10, 3};
  std::vector<float> out(4 * 32, 7.0f);
  try {
    gather_rows(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, out.data());
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::out_of_range);
    EXPECT_NE(std::string(e.what()).find("position 2"), std::string::npos) << e.what();
  }
  for (float v : out) ASSERT_EQ(v, 7.0f);
  ids = {-1};
  EXPECT_THROW(gather_rows(t.fmt, t.data.data(), t.scale.data(), t.rows, ids, out.data()), Error);
  EXPECT_THROW(
      gather_rows(t.fmt, t.data.data(), nullptr, t.rows, std::vector<int64_t>{0}, out.data()),
      Error);
}

TEST(Blocks, DequantizeMatchesReference) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{64, 96}, {33, 70}, {5, 31}, {160, 768}}) {
    std::mt19937 rng(static_cast<uint32_t>(rows * 1000 + cols));
    std::vector<uint8_t> w(static_cast<size_t>(rows * cols));
    for (auto& b : w) b = static_cast<uint8_t>(rng());
    const int64_t sr = (rows + 31) / 32, scn = (cols + 31) / 32;
    std::vector<uint8_t> s(static_cast<size_t>(sr * scn));
    for (auto& b : s) b = static_cast<uint8_t>(rng());
    std::vector<float> ref(w.size()), fast(w.size());
    reference::dequantize_blocks(w.data(), s.data(), rows, cols, ref.data());
    dequantize_blocks(w.data(), s.data(), rows, cols, fast.data());
    for (size_t i = 0; i < w.size(); ++i)
      ASSERT_TRUE(same(ref[i], fast[i])) << rows << "x" << cols << " " << i;
    // Block (r/32, c/32) scales element (r, c).
    const int64_t r = rows - 1, c = cols - 1;
    EXPECT_TRUE(same(ref[r * cols + c],
                     e4m3_to_f32(w[r * cols + c]) * e8m0_to_f32(s[(r / 32) * scn + c / 32])));
  }
}

// ---- Quantize writers -----------------------------------------------------------------------

TEST(Quantize, RowRoundTripIsWithinHalfAnE4m3Step) {
  const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, 256);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(256), y(256);
  for (int i = 0; i < 256; ++i) x[i] = nd(rng) * (i < 32 ? 1e-3f : 10.0f);
  x[40] = 0.0f;
  std::vector<uint8_t> q(256), s(8);
  quantize_row(fmt, x.data(), q.data(), s.data());
  dequantize_row(fmt, q.data(), s.data(), y.data());
  for (int b = 0; b < 8; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const float scale = e8m0_to_f32(s[b]);
    EXPECT_LE(amax / scale, 448.0f);
    EXPECT_GT(amax / scale, 224.0f);  // the smallest power of two that fits
    for (int i = 0; i < 32; ++i) {
      const float xi = x[b * 32 + i], yi = y[b * 32 + i];
      EXPECT_LE(std::fabs(xi - yi), std::max(std::fabs(xi) / 16.0f, scale * std::ldexp(1.0f, -10)))
          << b << " " << i;
    }
  }
  EXPECT_EQ(y[40], 0.0f);
}

TEST(Quantize, BlocksRoundTrip) {
  const int64_t rows = 70, cols = 40;
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> x(rows * cols), y(rows * cols);
  for (auto& v : x) v = u(rng);
  std::vector<uint8_t> w(rows * cols), s(3 * 2);
  quantize_blocks(x.data(), rows, cols, w.data(), s.data());
  dequantize_blocks(w.data(), s.data(), rows, cols, y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(x[i] - y[i]), std::max(std::fabs(x[i]) / 16.0f, std::ldexp(1.0f, -10)));
  }
}

}  // namespace
}  // namespace engram
