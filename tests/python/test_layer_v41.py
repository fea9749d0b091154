"""Parity of engram's DeepSeek-V4.1-form Engram layer with a PyTorch version of the reference
forward (kv = wkv(rows); key/value split; gate from the RMS-normalized dot of the stream and the
key weighted by q_weight * k_weight; copysign signed sqrt; token mask closes the gate;
out = h + gate * value). fp8 tensors are random bytes, dequantized here in NumPy by the
formats' definitions: e4m3fn = (-1)^s * 2^(e-7) * (1 + m/8), subnormal 2^-6 * m/8;
e8m0 = 2^(byte - 127).

Error measure: rel_err(a, b) = max|a - b| / max|b|, required <= 1e-4 (float32).
"""
import numpy as np
import pytest
import torch

import engram

from asset_helpers import missing

TOL = 1e-4


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def e4m3_to_f32(b):
    b = b.astype(np.int64)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp = (b >> 3) & 0xF
    man = b & 0x7
    val = np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1.0 + man / 8.0) * 2.0 ** (exp - 7))
    val = np.where((b & 0x7F) == 0x7F, np.nan, val)
    return (sign * val).astype(np.float32)


def e8m0_to_f32(b):
    return (2.0 ** (b.astype(np.float64) - 127.0)).astype(np.float32)


def random_e4m3(rng, shape):
    b = rng.integers(0, 256, size=shape, dtype=np.uint8)
    b[(b & 0x7F) == 0x7F] = 0x38  # no NaN codes: 0x38 is 1.0
    return b


def torch_v41_forward(h, rows, wkv, q_weight, k_weight, eps, token_mask=None):
    """The reference Engram forward of the V4.1 inference code, float32."""
    hc, dim = q_weight.shape
    kv = rows @ wkv.t()
    key, value = kv.split([hc * dim, dim], dim=-1)
    key = key.reshape(*key.shape[:-1], hc, dim)
    weight = q_weight * k_weight
    rstd = torch.rsqrt(h.square().mean(-1) + eps) * torch.rsqrt(key.square().mean(-1) + eps)
    dot = (h * weight * key).sum(-1) * rstd * dim ** -0.5
    gate = torch.sigmoid(torch.copysign(dot.abs().clamp_min(1e-6).sqrt(), dot))
    if token_mask is not None:
        gate = gate.masked_fill(~token_mask.unsqueeze(-1), 0)
    return h + gate.unsqueeze(-1) * value.unsqueeze(-2)


def make_case(rng, rows, head_dim, cols, hc, dim):
    embed_w = random_e4m3(rng, (rows, head_dim))
    embed_s = rng.integers(118, 126, size=(rows, head_dim // 32), dtype=np.uint8)
    out_f, in_f = (hc + 1) * dim, cols * head_dim
    wkv_w = random_e4m3(rng, (out_f, in_f))
    wkv_s = rng.integers(112, 120, size=((out_f + 31) // 32, (in_f + 31) // 32), dtype=np.uint8)
    q_w = (1.0 + 0.3 * rng.standard_normal((hc, dim))).astype(np.float32)
    k_w = (1.0 + 0.3 * rng.standard_normal((hc, dim))).astype(np.float32)
    return embed_w, embed_s, wkv_w, wkv_s, q_w, k_w


def dequant_rows(embed_w, embed_s):
    rows, hd = embed_w.shape
    return (e4m3_to_f32(embed_w).reshape(rows, hd // 32, 32)
            * e8m0_to_f32(embed_s)[:, :, None]).reshape(rows, hd)


def dequant_blocks(w, s):
    r, c = w.shape
    scale = np.repeat(np.repeat(e8m0_to_f32(s), 32, axis=0), 32, axis=1)[:r, :c]
    return e4m3_to_f32(w) * scale


@pytest.mark.parametrize("hc,dim,B,T", [(4, 64, 2, 7), (1, 48, 3, 5), (4, 40, 1, 1)])
def test_forward_matches_torch(hc, dim, B, T):
    rng = np.random.default_rng(hc * 1000 + dim)
    rows, head_dim, cols = 97, 64, 6
    embed_w, embed_s, wkv_w, wkv_s, q_w, k_w = make_case(rng, rows, head_dim, cols, hc, dim)
    layer = engram.EngramLayerV41(embed_w, embed_s, wkv_w, wkv_s, q_w, k_w, norm_eps=1e-20)

    wkv = dequant_blocks(wkv_w, wkv_s)
    np.testing.assert_array_equal(layer.wkv(), wkv)  # dequantized once at load, exactly

    row_ids = rng.integers(0, rows, size=(B, T, cols)).astype(np.int64)
    row_ids[0, 0, :] = 5  # repeated rows
    h = rng.standard_normal((B, T, hc, dim)).astype(np.float32)
    h[-1, -1, 0, :] = 0.0  # dot == +0: copysign takes the positive branch, gate sigmoid(1e-3)
    mask = rng.random((B, T)) > 0.3
    mask[0, 0] = False
    mask[-1, -1] = True

    table = dequant_rows(embed_w, embed_s)
    e = torch.from_numpy(table[row_ids].reshape(B, T, cols * head_dim))
    args = (torch.from_numpy(h), e, torch.from_numpy(wkv), torch.from_numpy(q_w),
            torch.from_numpy(k_w), 1e-20)

    out = layer.forward_residual(h, row_ids)
    assert rel_err(out, torch_v41_forward(*args).numpy()) <= TOL
    out_m = layer.forward_residual(h, row_ids, torch.from_numpy(mask).numpy())
    ref_m = torch_v41_forward(*args, token_mask=torch.from_numpy(mask)).numpy()
    assert rel_err(out_m, ref_m) <= TOL
    np.testing.assert_array_equal(out_m[~mask], h[~mask])  # masked tokens: the stream unchanged
    # The layer returns the new stream h + gate*value, not the delta.
    assert rel_err(out_m[mask] - h[mask], ref_m[mask] - h[mask]) <= 1e-3


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    embed_w, embed_s, wkv_w, wkv_s, q_w, k_w = make_case(rng, 10, 32, 2, 2, 32)
    with pytest.raises(ValueError, match="wkv.weight has shape"):
        engram.EngramLayerV41(embed_w, embed_s, wkv_w[:-1], wkv_s, q_w, k_w)
    with pytest.raises(ValueError, match="embed.scale has shape"):
        engram.EngramLayerV41(embed_w, embed_s[:, :0], wkv_w, wkv_s, q_w, k_w)
    layer = engram.EngramLayerV41(embed_w, embed_s, wkv_w, wkv_s, q_w, k_w)
    h = np.zeros((1, 2, 2, 32), np.float32)
    with pytest.raises(IndexError):
        layer.forward_residual(h, np.array([[[0, 1], [2, 10]]], dtype=np.int64))
    with pytest.raises(ValueError, match="token_mask has shape"):
        layer.forward_residual(h, np.zeros((1, 2, 2), np.int64), np.ones((2, 2), dtype=bool))


def _tokenizer_path():
    import os
    return os.path.join(os.environ.get("ENGRAM_SOURCE_DIR", "."), "assets", "deepseek_v3",
                        "tokenizer.json")


def _row_totals(n_layers, max_ngram, n_heads, vocab):
    """Rows per layer by DESIGN 2.2's prime rule (small numbers only)."""
    def isprime(n):
        return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))
    used, totals = set(), []
    for _ in range(n_layers):
        total = 0
        for _ in range(2, max_ngram + 1):
            start = vocab - 1
            for _ in range(n_heads):
                c = start + 1
                while not isprime(c) or c in used:
                    c += 1
                used.add(c)
                total += c
                start = c
        totals.append(total)
    return totals


def test_forward_on_token_ids_hashes_with_the_config(tmp_path):
    import json
    import os
    if not os.path.exists(_tokenizer_path()) or not hasattr(engram, "TokenCompressor"):
        missing("needs the tokenizer asset and engram.TokenCompressor")
    compressed = engram.TokenCompressor.from_tokenizer(_tokenizer_path()).compressed_vocab_size
    hc, dim, head_dim, n_heads, max_ngram = 2, 32, 32, 2, 4
    totals = _row_totals(2, max_ngram, n_heads, 50)
    cfg = {"engram_layer_ids": [1, 14], "engram_num_embeddings": totals,
           "engram_max_ngram_size": max_ngram, "engram_vocab_size": 50,
           "engram_n_heads": n_heads, "engram_head_dim": head_dim, "engram_pad_token_id": 2,
           "engram_compressed_vocab_size": compressed, "hc_mult": hc, "hidden_size": dim,
           "rms_norm_eps": 1e-20}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    rng = np.random.default_rng(7)
    cols = (max_ngram - 1) * n_heads
    case = make_case(rng, totals[1], head_dim, cols, hc, dim)
    layer = engram.EngramLayerV41(*case)
    with pytest.raises(ValueError, match="no hasher"):
        layer.forward_residual(np.zeros((1, 3, hc, dim), np.float32), np.zeros((1, 3), np.int64))
    with pytest.raises(ValueError, match="rows of layer 1"):
        layer.attach_hasher(str(path), 1, _tokenizer_path())  # layer 1 has other tables
    layer.attach_hasher(str(path), 14, _tokenizer_path())
    B, T = 2, 8
    ids = rng.integers(0, 120000, size=(B, T)).astype(np.int64)
    mask = np.ones((B, T), dtype=bool)
    mask[1, 3:5] = False  # an image span
    rows = layer.hash_rows(ids, mask)
    assert rows.shape == (B, T, cols) and rows.min() >= 0 and rows.max() < totals[1]
    # The dead span cuts the look-back: position 5 sees no further back than itself + pad.
    assert not np.array_equal(rows[1, 5], layer.hash_rows(ids)[1, 5])
    h = rng.standard_normal((B, T, hc, dim)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward_residual(h, ids, mask),
                                  layer.forward_residual(h, rows, mask))
