// Golden values for the NumPy-compatible RNG, recorded from NumPy 1.24 (/usr/bin/python3):
// the exhaustive comparison with a live NumPy is tests/python/test_hash_rng.py.
#include "hash/numpy_rng.h"

#include <gtest/gtest.h>

#include "engram/error.h"

namespace engram {
namespace {

TEST(SeedSequence, GenerateStateMatchesNumpy) {
  // np.random.SeedSequence(0).generate_state(4, np.uint32)
  const SeedSequence seq(uint64_t{0});
  EXPECT_EQ(seq.generate_state_u32(4),
            (std::vector<uint32_t>{2968811710u, 3677149159u, 745650761u, 2884920346u}));
  // The uint64 state is pairs of uint32 words, little-endian.
  const std::vector<uint64_t> wide = seq.generate_state_u64(2);
  EXPECT_EQ(wide[0], (uint64_t{3677149159u} << 32) | 2968811710u);
  EXPECT_EQ(wide[1], (uint64_t{2884920346u} << 32) | 745650761u);
}

TEST(SeedSequence, SeedWordsSplitLittleEndian) {
  EXPECT_EQ(seed_words(0), (std::vector<uint32_t>{0}));
  EXPECT_EQ(seed_words(0xFFFFFFFFu), (std::vector<uint32_t>{0xFFFFFFFFu}));
  EXPECT_EQ(seed_words(uint64_t{1} << 32), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(seed_words(static_cast<unsigned __int128>(1) << 64), (std::vector<uint32_t>{0, 0, 1}));
}

TEST(Pcg64, RawOutputMatchesNumpy) {
  // np.random.default_rng(0).bit_generator.random_raw(3)
  Pcg64 rng = Pcg64::from_seed(0);
  EXPECT_EQ(rng.next_u64(), 11749869230777074271ull);
  EXPECT_EQ(rng.next_u64(), 4976686463289251617ull);
  EXPECT_EQ(rng.next_u64(), 755828109848996024ull);
}

TEST(Pcg64, ThirtyTwoBitDrawsUseBothHalves) {
  Pcg64 a = Pcg64::from_seed(0);
  Pcg64 b = Pcg64::from_seed(0);
  const uint64_t whole = a.next_u64();
  EXPECT_EQ(b.next_u32(), static_cast<uint32_t>(whole));
  EXPECT_EQ(b.next_u32(), static_cast<uint32_t>(whole >> 32));
  EXPECT_EQ(b.next_u64(), a.next_u64());
}

TEST(Integers, EngramMultipliersOfDeepSeekV41) {
  // default_rng(10007 * L).integers(0, ((2^63-1) // 99092) // 2, size=4) * 2 + 1
  const int64_t bound = (INT64_MAX / 99092) / 2;
  Pcg64 l1 = Pcg64::from_seed(10007 * 1);
  std::vector<int64_t> m1;
  for (int64_t r : integers_i64(l1, 0, bound, 4)) m1.push_back(2 * r + 1);
  EXPECT_EQ(m1,
            (std::vector<int64_t>{76632096046245, 4839876093313, 35959672319349, 73987337458391}));
  Pcg64 l14 = Pcg64::from_seed(10007 * 14);
  std::vector<int64_t> m14;
  for (int64_t r : integers_i64(l14, 0, bound, 4)) m14.push_back(2 * r + 1);
  EXPECT_EQ(m14,
            (std::vector<int64_t>{67716810739261, 51510806800915, 30921347202721, 82619226485591}));
}

TEST(Integers, ThirtyTwoBitPathsMatchNumpy) {
  // Range just above 2^32 (64-bit Lemire), exactly 2^32 - 1 values (32-bit Lemire), and a
  // seed above 2^63 (two entropy words).
  Pcg64 a = Pcg64::from_seed(0);
  EXPECT_EQ(integers_i64(a, 0, (int64_t{1} << 32) + 1, 4),
            (std::vector<int64_t>{2735729616, 1158725112, 175979945, 70985654}));
  Pcg64 b = Pcg64::from_seed(20014);
  EXPECT_EQ(integers_i64(b, 0, (int64_t{1} << 32) - 1, 5),
            (std::vector<int64_t>{2755590489, 3530307760, 3887164988, 1711815463, 1036980184}));
  Pcg64 c = Pcg64::from_seed((static_cast<unsigned __int128>(1) << 63) + 5);
  EXPECT_EQ(integers_i64(c, 0, 1000, 6), (std::vector<int64_t>{820, 480, 187, 904, 329, 641}));
}

TEST(Integers, SingleValueRangeDrawsNothing) {
  Pcg64 a = Pcg64::from_seed(3);
  Pcg64 b = Pcg64::from_seed(3);
  EXPECT_EQ(integers_i64(a, 7, 8, 5), (std::vector<int64_t>(5, 7)));
  EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(Integers, RefusesEmptyRangeAndNegativeSize) {
  Pcg64 a = Pcg64::from_seed(0);
  EXPECT_THROW(integers_i64(a, 5, 5, 1), Error);
  EXPECT_THROW(integers_i64(a, 0, 5, -1), Error);
}

}  // namespace
}  // namespace engram
