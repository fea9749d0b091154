"""engram's NumPy-compatible RNG (SeedSequence, PCG64, Generator.integers with dtype=int64)
against /usr/bin/python3's NumPy, bit for bit, over many seeds, ranges and sizes."""

import numpy as np
import pytest

import engram

SEEDS = [0, 1, 2, 7, 42, 10007, 20014, 10007 * 15, 10007 * 14, 123456789, 2**31 - 1, 2**32 - 1,
         2**32, 2**32 + 1, 2**40 + 12345, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1]
SEEDS += [s + 10007 * layer for s in (0, 3, 99991) for layer in (1, 2, 5, 14, 15, 29, 1000)]

# Ranges [low, high): tiny, powers of two and their neighbours around the 32-bit switch,
# and the half bounds B = ((2^63-1) // V') // 2 that Engram actually uses.
HIGHS = [1, 2, 3, 7, 100, 1000, 2**16, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1,
         2**32 + 2, 3 * 2**32, 2**33 - 1, 2**48 + 7, 2**62, 2**62 + 1, 2**63 - 1]
HIGHS += [max(1, ((2**63 - 1) // v) // 2) for v in (1, 2, 3, 8, 1000, 99092, 100353, 129280,
                                                    2**31, 2**40 + 3)]
SIZES = [0, 1, 2, 3, 4, 5, 8, 17, 100]


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_sequence_matches_numpy(seed):
    ss = np.random.SeedSequence(seed)
    for n in (1, 4, 5, 8, 13):
        np.testing.assert_array_equal(engram.seed_sequence_state(seed, n, "uint32"),
                                      ss.generate_state(n, np.uint32))
        np.testing.assert_array_equal(engram.seed_sequence_state(seed, n, "uint64"),
                                      ss.generate_state(n, np.uint64))


@pytest.mark.parametrize("seed", SEEDS)
def test_pcg64_raw_matches_numpy(seed):
    want = np.random.default_rng(seed).bit_generator.random_raw(64)
    np.testing.assert_array_equal(engram.pcg64_raw(seed, 64), want)


@pytest.mark.parametrize("seed", SEEDS)
def test_integers_matches_numpy(seed):
    for high in HIGHS:
        for size in SIZES:
            want = np.random.default_rng(seed).integers(0, high, size=size, dtype=np.int64)
            got = engram.numpy_integers(seed, 0, high, size)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, want, err_msg=f"seed={seed} high={high} n={size}")


def test_integers_with_negative_low_and_full_int64_span():
    cases = [(-5, 5), (-(2**31), 2**31), (-(2**32), 1), (-(2**63), 2**63 - 1), (-(2**63), 0),
             (2**62, 2**63 - 1), (-1, 0), (123, 124)]
    for seed in (0, 1, 99, 2**40):
        for low, high in cases:
            want = np.random.default_rng(seed).integers(low, high, size=37, dtype=np.int64)
            np.testing.assert_array_equal(engram.numpy_integers(seed, low, high, 37), want,
                                          err_msg=f"seed={seed} [{low}, {high})")


def test_integers_random_ranges():
    # Many random ranges, both sides of the 32-bit path switch, with rejection-heavy spans
    # (just above a power of two) included by construction.
    picker = np.random.default_rng(2024)
    for _ in range(300):
        bits = int(picker.integers(1, 63))
        high = int(picker.integers(1, 2**bits)) + (2**bits if picker.integers(0, 2) else 0)
        high = min(high, 2**63 - 1)
        seed = int(picker.integers(0, 2**63))
        size = int(picker.integers(0, 40))
        want = np.random.default_rng(seed).integers(0, high, size=size, dtype=np.int64)
        np.testing.assert_array_equal(engram.numpy_integers(seed, 0, high, size), want,
                                      err_msg=f"seed={seed} high={high} n={size}")


def test_integers_refuses_empty_range():
    with pytest.raises(ValueError):
        engram.numpy_integers(0, 5, 5, 1)
    with pytest.raises(ValueError):
        engram.numpy_integers(0, 0, 10, -1)
