"""The DeepSeek-V4.1 Engram layer run from a synthetic V4.1 checkpoint with its table rows served by
a TableStore tier, end to end: token ids -> NgramHasher (the checkpoint's config) -> TableStore
lookup (file tier, DRAM tier, cached) -> EngramLayerV41.forward_rows_residual.

Checked against two independent paths: the same layer gathering rows from the embed tensors held in
memory (EngramLayerV41 built from the raw safetensors arrays), which must agree bit for bit, and a
NumPy implementation of the V4.1 formula on rows decoded straight from the checkpoint's bytes."""
import json
import os
import struct

import numpy as np
import pytest

import engram
from test_store import expected_rows, read_tensor

CFG = dict(vocab_size=300, max_ngram=3, n_heads=2, head_dim=64, hidden_size=32, hc_mult=2)
LAYER = 1


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("v41layer"))
    engram.write_synthetic_v41(d, layer_ids=[1, 14], **CFG)
    return d


def read_f32(ckdir, name):
    """An F32 tensor straight from its shard (json + struct + NumPy only)."""
    with open(os.path.join(ckdir, "model.safetensors.index.json")) as f:
        shard = json.load(f)["weight_map"][name]
    with open(os.path.join(ckdir, shard), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        info = json.loads(f.read(n))[name]
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        f.seek(8 + n + begin)
        return np.frombuffer(f.read(end - begin), dtype="<f4").reshape(info["shape"])


def hasher_for(ckdir):
    lookup = np.arange(99092, dtype=np.int64)  # identity compression, the synthetic config's V'
    return engram.NgramHasher(os.path.join(ckdir, "config.json"), lookup, 99092)


def numpy_v41(hidden, rows, wkv, q, k, eps, mask):
    """V4.1 gate in float64 NumPy: hidden [N,hc,d], rows [N,E] -> hidden + gate*value."""
    hc, d = q.shape
    kv = rows.astype(np.float64) @ wkv.astype(np.float64).T  # [N, (hc+1)*d]
    value = kv[:, hc * d:]
    out = hidden.astype(np.float64).copy()
    for b in range(hc):
        h, key = hidden[:, b].astype(np.float64), kv[:, b * d:(b + 1) * d]
        dot = (h * (q[b] * k[b]) * key).sum(-1)
        dot *= 1 / np.sqrt((h * h).mean(-1) + eps) / np.sqrt((key * key).mean(-1) + eps)
        dot /= np.sqrt(d)
        g = 1 / (1 + np.exp(-np.copysign(np.sqrt(np.maximum(np.abs(dot), 1e-6)), dot)))
        g = np.where(mask, g, 0.0)
        out[:, b] += g[:, None] * value
    return out


@pytest.mark.parametrize("tier,cache_bytes", [("file", 0), ("file", 1 << 16), ("dram", 0)])
def test_layer_from_store_rows(ckpt, tier, cache_bytes):
    rng = np.random.default_rng(7)
    B, T = 2, 9
    ids = rng.integers(0, 300, size=(B, T), dtype=np.int64)
    mask = rng.random((B, T)) > 0.2
    hashes = hasher_for(ckpt).hash(ids, dead_mask=~mask)[LAYER]

    store = engram.TableStore.open(ckpt, tier=tier, cache_bytes=cache_bytes)
    rows = store.lookup(LAYER, hashes)  # [B, T, cols, head_dim]
    layer = engram.EngramLayerV41.from_checkpoint(ckpt, LAYER)
    hc, d = CFG["hc_mult"], CFG["hidden_size"]
    hidden = rng.standard_normal((B, T, hc, d)).astype(np.float32)
    out = layer.forward_rows_residual(hidden, rows, mask)

    # Same math, rows gathered by the layer itself from the embed tensors in memory.
    p = f"layers.{LAYER}.engram."
    tensors = {n: read_tensor(ckpt, p + n) for n in
               ("embed.weight", "embed.scale", "wkv.weight", "wkv.scale")}
    q, k = read_f32(ckpt, p + "q_weight"), read_f32(ckpt, p + "k_weight")
    mem = engram.EngramLayerV41(tensors["embed.weight"], tensors["embed.scale"],
                                tensors["wkv.weight"], tensors["wkv.scale"], q, k)
    offsets = np.array(hasher_for(ckpt).offsets(LAYER))
    out_mem = mem.forward_residual(hidden, hashes + offsets, mask)
    np.testing.assert_array_equal(out, out_mem)

    # Independent NumPy reference on rows decoded from the checkpoint bytes.
    ref_rows = expected_rows(ckpt, LAYER, hashes + offsets).reshape(B * T, -1)
    np.testing.assert_array_equal(rows.reshape(B * T, -1), ref_rows)
    ref = numpy_v41(hidden.reshape(B * T, hc, d), ref_rows, layer.wkv(), q, k, 1e-20,
                    mask.reshape(-1))
    np.testing.assert_allclose(out.reshape(B * T, hc, d), ref, rtol=1e-4, atol=1e-4)
    assert not np.array_equal(out, hidden)  # the gate opened somewhere
    np.testing.assert_array_equal(out[~mask], hidden[~mask])  # masked tokens pass through


def test_from_checkpoint_errors(ckpt, tmp_path):
    with pytest.raises(IndexError, match="layer 5"):
        engram.EngramLayerV41.from_checkpoint(ckpt, 5)
    with pytest.raises(OSError):
        engram.EngramLayerV41.from_checkpoint(str(tmp_path / "missing"), LAYER)
    layer = engram.EngramLayerV41.from_checkpoint(ckpt, LAYER)
    hidden = np.zeros((1, 2, CFG["hc_mult"], CFG["hidden_size"]), np.float32)
    with pytest.raises(ValueError, match="rows"):
        layer.forward_rows_residual(hidden, np.zeros((1, 2, 3, 64), np.float32))
