"""Row-format parity: engram's conversions and dequantization against PyTorch and NumPy.

bf16 is checked bit for bit against PyTorch 1.13's casts (`.to(torch.bfloat16)` on contiguous
tensors, `.float()`). PyTorch 1.13 has no float8 dtype, so e4m3fn and e8m0 are checked against
NumPy references built here from the format definitions, exhaustively over all 256 codes.
The f8 row value is checked against the fp32 product PyTorch computes for `w.float() * s.float()`.
"""
import numpy as np
import pytest
import torch

import engram


def f32_bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_same_f32(a, b):
    """Equal bits, or NaN in both."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert a.shape == b.shape
    both_nan = np.isnan(a) & np.isnan(b)
    bad = (f32_bits(a) != f32_bits(b)) & ~both_nan
    assert not bad.any(), f"{bad.sum()} differ, first at {np.argwhere(bad)[0]}"


# ---- NumPy references from the format definitions --------------------------------------------

def e4m3_reference():
    """float32 value of every e4m3fn code: s.eeee.mmm, bias 7, subnormals m*2^-9, S.1111.111 NaN."""
    codes = np.arange(256)
    s = np.where(codes & 0x80, -1.0, 1.0)
    e = (codes >> 3) & 15
    m = codes & 7
    mag = np.where(e == 0, np.ldexp(m.astype(np.float64), -9),
                   np.ldexp(1.0 + m / 8.0, e - 7))
    v = (s * mag).astype(np.float32)
    v[(codes & 0x7F) == 0x7F] = np.nan
    return v


def e8m0_reference():
    v = np.ldexp(1.0, np.arange(256) - 127)
    v[255] = np.nan  # 2^128 is not an fp32; the code is NaN
    return v.astype(np.float32)


def e4m3_encode_reference(x):
    """Nearest finite e4m3fn code (ties to the even code), saturating at +-448, NaN -> 0x7F|sign."""
    x = np.asarray(x, np.float32)
    finite = e4m3_reference()[:0x7F].astype(np.float64)  # codes 0..126, non-negative
    a = np.abs(x.astype(np.float64))
    a = np.minimum(a, 448.0)  # saturation (also maps inf); NaN handled below
    d = np.abs(a[:, None] - finite[None, :])
    best = d.min(axis=1, keepdims=True)
    cand = d == best
    even = cand & ((np.arange(0x7F) & 1) == 0)[None, :]
    code = np.where(even.any(axis=1), even.argmax(axis=1), cand.argmax(axis=1)).astype(np.uint8)
    code = np.where(np.isnan(x), 0x7F, code).astype(np.uint8)
    return code | np.where(np.signbit(x), 0x80, 0).astype(np.uint8)


# ---- bf16 ------------------------------------------------------------------------------------

def test_bf16_to_f32_all_codes_match_torch():
    codes = np.arange(65536, dtype=np.uint16)
    ours = engram.bf16_to_f32(codes)
    theirs = torch.from_numpy(codes.view(np.int16)).view(torch.bfloat16).float().numpy()
    assert np.array_equal(f32_bits(ours), f32_bits(theirs))


def test_f32_to_bf16_matches_torch_bit_for_bit():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=1 << 20, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, size=1 << 14, dtype=np.uint32) << 16) | 0x8000
    edges = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF,
                      0x00000001, 0x00008000, 0x00018000, 0x3F808000, 0x3F818000, 0x7FC00000,
                      0xFFC00001, 0x7F800001], dtype=np.uint32)
    x = np.concatenate([bits, ties, edges]).view(np.float32)
    ours = engram.f32_to_bf16(x)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, theirs)
    assert (ours[np.isnan(x)] == 0xFFFF).all()


def test_bf16_round_trip_of_normal_floats():
    x = np.random.default_rng(1).standard_normal(10000).astype(np.float32)
    back = engram.bf16_to_f32(engram.f32_to_bf16(x))
    theirs = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    assert np.array_equal(f32_bits(back), f32_bits(theirs))


# ---- e4m3fn / e8m0 ---------------------------------------------------------------------------

def test_e4m3_to_f32_all_256_codes():
    ours = engram.e4m3_to_f32(np.arange(256, dtype=np.uint8))
    assert_same_f32(ours, e4m3_reference())
    assert ours[0x7E] == 448.0 and ours[0x01] == 2.0**-9
    assert np.isnan(ours[[0x7F, 0xFF]]).all()


def test_f32_to_e4m3_round_trips_every_code_and_matches_reference():
    vals = e4m3_reference()
    finite = ~np.isnan(vals)
    assert np.array_equal(engram.f32_to_e4m3(vals[finite]), np.arange(256)[finite])
    rng = np.random.default_rng(2)
    mids = ((vals[:0x7E].astype(np.float64) + vals[1:0x7F]) / 2).astype(np.float32)
    x = np.concatenate([
        rng.uniform(-500, 500, 20000), rng.uniform(-2**-6, 2**-6, 20000), mids, -mids,
        np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(1e9)),
        [0.0, -0.0, 448.0, 464.0, 465.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 2**-10, 2**-149],
    ]).astype(np.float32)
    assert np.array_equal(engram.f32_to_e4m3(x), e4m3_encode_reference(x))


def test_e8m0_all_codes_and_round_up():
    assert_same_f32(engram.e8m0_to_f32(np.arange(256, dtype=np.uint8)), e8m0_reference())
    x = np.array([1.0, 1.5, 3.0, 0.0, 2.0**-130, np.inf, np.nan, 448.0], np.float32)
    assert engram.f32_to_e8m0(x).tolist() == [127, 128, 129, 0, 0, 255, 255, 136]


def test_wrong_dtype_is_a_type_error():
    with pytest.raises(TypeError):
        engram.f32_to_bf16(np.zeros(3, np.float64))
    with pytest.raises(TypeError):
        engram.e4m3_to_f32(np.zeros(3, np.int32))


# ---- rows and blocks -------------------------------------------------------------------------

def random_f8_table(rows, width, seed):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, size=(rows, width), dtype=np.uint8)
    s = rng.integers(110, 140, size=(rows, width // 32), dtype=np.uint8)
    s.flat[::7] = rng.integers(0, 256, size=s.flat[::7].shape, dtype=np.uint8)  # 0, 254, 255 too
    return q, s


def test_dequantize_rows_is_torch_fp32_product():
    q, s = random_f8_table(64, 256, 3)
    ours = engram.dequantize_rows(q, s)
    w = torch.from_numpy(e4m3_reference()[q])                        # w.float()
    sc = torch.from_numpy(np.repeat(e8m0_reference()[s], 32, axis=1))  # s.float(), per value
    assert_same_f32(ours, (w * sc).numpy())


def test_gather_rows_all_formats():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 100, size=300, dtype=np.int64)
    q, s = random_f8_table(100, 64, 5)
    with np.errstate(over="ignore"):  # scale 2^127 times 448 is inf, as in fp32
        expect = e4m3_reference()[q][ids] * np.repeat(e8m0_reference()[s], 32, axis=1)[ids]
    assert_same_f32(engram.gather_rows(q, ids, scale=s), expect)
    bf = engram.gather_rows(q, ids, scale=s, out_dtype="bfloat16")
    assert np.array_equal(bf, torch.from_numpy(expect).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    t32 = rng.standard_normal((100, 24)).astype(np.float32)
    assert_same_f32(engram.gather_rows(t32, ids), t32[ids])
    t16 = rng.integers(0, 65536, size=(100, 24), dtype=np.uint16)
    assert_same_f32(engram.gather_rows(t16, ids), engram.bf16_to_f32(t16)[ids])
    with pytest.raises(IndexError):
        engram.gather_rows(t32, np.array([0, 100], np.int64))
    with pytest.raises(ValueError):
        engram.gather_rows(q, ids)  # f8 without scales


def test_dequantize_blocks_matches_numpy():
    rng = np.random.default_rng(6)
    for rows, cols in [(96, 64), (70, 45)]:
        w = rng.integers(0, 256, size=(rows, cols), dtype=np.uint8)
        s = rng.integers(100, 150, size=((rows + 31) // 32, (cols + 31) // 32), dtype=np.uint8)
        scale = np.kron(e8m0_reference()[s], np.ones((32, 32), np.float32))[:rows, :cols]
        assert_same_f32(engram.dequantize_blocks(w, s), e4m3_reference()[w] * scale)
    with pytest.raises(ValueError):
        engram.dequantize_blocks(w, s[:1])


def test_quantize_rows_round_trip():
    x = np.random.default_rng(7).standard_normal((8, 256)).astype(np.float32)
    q, s = engram.quantize_rows(x)
    assert q.shape == (8, 256) and s.shape == (8, 8)
    y = engram.dequantize_rows(q, s)
    scale = np.repeat(e8m0_reference()[s], 32, axis=1)
    assert (np.abs(x - y) <= np.maximum(np.abs(x) / 16, scale * 2.0**-10)).all()
    w, sb = engram.quantize_blocks(x)
    assert sb.shape == (1, 8)
    assert np.allclose(engram.dequantize_blocks(w, sb), x, rtol=1 / 16, atol=1e-3)
