"""Parity of engram's paper-form Engram layer with a PyTorch module of the same math.

`TorchEngram` below follows deepseek-ai/Engram engram_demo_v1.py (class Engram, ShortConv,
MultiHeadEmbedding) line for line, with two changes forced by the environment: PyTorch 1.13 has
no nn.RMSNorm, so `RMSNorm` spells out what torch.nn.RMSNorm computes (eps=None -> the dtype's
machine epsilon), and the hash ids are passed in instead of computed from token ids.

Error measure everywhere: rel_err(a, b) = max|a - b| / max|b|, required <= 1e-4 (float32).
"""
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

import engram

from asset_helpers import requires

TOL = 1e-4


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm (PyTorch >= 2.4) for PyTorch 1.13: eps=None means finfo(dtype).eps."""

    def __init__(self, dim, eps=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        eps = self.eps if self.eps is not None else torch.finfo(x.dtype).eps
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight


class ShortConv(nn.Module):
    def __init__(self, hidden_size, kernel_size, dilation, hc_mult, norm_eps=1e-5):
        super().__init__()
        self.hc_mult = hc_mult
        channels = hidden_size * hc_mult
        self.conv = nn.Conv1d(channels, channels, kernel_size=kernel_size, groups=channels,
                              bias=False, padding=(kernel_size - 1) * dilation, dilation=dilation)
        self.norms = nn.ModuleList([RMSNorm(hidden_size, eps=norm_eps) for _ in range(hc_mult)])
        self.act_fn = nn.SiLU()

    def forward(self, x):
        B, T, G, C = x.shape
        x_norm = torch.cat([self.norms[i](x[:, :, i, :]) for i in range(G)], dim=-1)
        y = self.conv(x_norm.transpose(1, 2))[..., :T]
        return self.act_fn(y).transpose(1, 2).view(B, T, G, C).contiguous()


class MultiHeadEmbedding(nn.Module):
    def __init__(self, list_of_N, D):
        super().__init__()
        offsets = [0]
        for n in list_of_N[:-1]:
            offsets.append(offsets[-1] + n)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long))
        self.embedding = nn.Embedding(num_embeddings=sum(list_of_N), embedding_dim=D)

    def forward(self, input_ids):
        return self.embedding(input_ids + self.offsets)


class TorchEngram(nn.Module):
    def __init__(self, primes, row_width, hidden_size, hc_mult, kernel_size, max_ngram):
        super().__init__()
        self.hidden_size, self.hc_mult = hidden_size, hc_mult
        self.multi_head_embedding = MultiHeadEmbedding(primes, row_width)
        self.short_conv = ShortConv(hidden_size, kernel_size, max_ngram, hc_mult)
        e = len(primes) * row_width
        self.value_proj = nn.Linear(e, hidden_size)
        self.key_projs = nn.ModuleList([nn.Linear(e, hidden_size) for _ in range(hc_mult)])
        self.norm1 = nn.ModuleList([RMSNorm(hidden_size) for _ in range(hc_mult)])
        self.norm2 = nn.ModuleList([RMSNorm(hidden_size) for _ in range(hc_mult)])

    def forward(self, hidden_states, hash_input_ids):
        embeddings = self.multi_head_embedding(hash_input_ids).flatten(start_dim=-2)
        gates = []
        for hc_idx in range(self.hc_mult):
            key = self.key_projs[hc_idx](embeddings)
            normed_key = self.norm1[hc_idx](key)
            normed_query = self.norm2[hc_idx](hidden_states[:, :, hc_idx, :])
            gate = (normed_key * normed_query).sum(dim=-1) / math.sqrt(self.hidden_size)
            gate = gate.abs().clamp_min(1e-6).sqrt() * gate.sign()
            gates.append(gate.sigmoid().unsqueeze(-1))
        gates = torch.stack(gates, dim=2)
        value = gates * self.value_proj(embeddings).unsqueeze(2)
        return value + self.short_conv(value)


def make_pair(primes, row_width, hidden, hc, kernel=4, max_ngram=3, seed=0):
    """A torch module with every parameter random (conv and norms off their init) and an engram
    layer loaded with the same weights."""
    torch.manual_seed(seed)
    ref = TorchEngram(primes, row_width, hidden, hc, kernel, max_ngram)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "conv" in name:
                p.copy_(0.3 * torch.randn_like(p))
            elif "bias" in name:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.5 * torch.randn_like(p) / math.sqrt(max(p.shape[-1], 1)) * 4)
    layer = engram.EngramLayerCore(primes, row_width, hidden, hc, kernel_size=kernel,
                                   dilation=max_ngram, seed=seed)
    layer.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return ref, layer


def random_hash_ids(primes, B, T, rng):
    return np.stack([rng.integers(0, p, size=(B, T)) for p in primes], axis=2).astype(np.int64)


@pytest.mark.parametrize("hc,B,T,hidden", [(1, 2, 11, 32), (4, 3, 9, 24), (4, 1, 1, 16)])
def test_forward_backward_match_torch(hc, B, T, hidden):
    primes = [7, 11, 13, 17, 19, 23]  # tiny tables: repeated rows within a batch are certain
    row_width = 8
    ref, layer = make_pair(primes, row_width, hidden, hc, seed=hc * 100 + T)
    rng = np.random.default_rng(hc + T)
    ids = random_hash_ids(primes, B, T, rng)
    ids[0, 0, :] = 0  # and some rows read by several positions explicitly
    if T > 2:
        ids[-1, 2, :] = 0
    hidden_np = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)
    grad_np = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)

    h = torch.tensor(hidden_np, requires_grad=True)
    out_ref = ref(h, torch.from_numpy(ids))
    out_ref.backward(torch.from_numpy(grad_np))

    out = layer.forward(hidden_np, ids)
    assert out.shape == (B, T, hc, hidden) and out.dtype == np.float32
    assert rel_err(out, out_ref.detach().numpy()) <= TOL
    dh = layer.backward(grad_np)
    assert rel_err(dh, h.grad.numpy()) <= TOL

    grads = layer.grads()
    ref_grads = {k: p.grad.numpy() for k, p in ref.named_parameters()}
    assert set(grads) == set(ref_grads)
    for name, g in ref_grads.items():
        assert grads[name].shape == g.shape, name
        assert rel_err(grads[name], g) <= TOL, (name, rel_err(grads[name], g))


def test_table_gradient_is_sparse_and_sums_repeats():
    primes, row_width, hidden, hc = [5, 7], 4, 16, 2
    ref, layer = make_pair(primes, row_width, hidden, hc, seed=3)
    ids = np.zeros((2, 6, 2), dtype=np.int64)  # every position reads row 0 of each column
    ids[1, 3] = [4, 6]
    rng = np.random.default_rng(1)
    hidden_np = rng.standard_normal((2, 6, hc, hidden)).astype(np.float32)
    grad_np = rng.standard_normal((2, 6, hc, hidden)).astype(np.float32)
    layer.forward(hidden_np, ids)
    layer.backward(grad_np)
    rows, g = layer.table_grad()
    assert rows.tolist() == [0, 4, 5, 11]  # column 1 starts at offset 5
    h = torch.tensor(hidden_np, requires_grad=True)
    ref(h, torch.from_numpy(ids)).backward(torch.from_numpy(grad_np))
    dense = ref.multi_head_embedding.embedding.weight.grad.numpy()
    assert rel_err(g, dense[rows]) <= TOL
    # Accumulates until zero_grad, like torch's .grad.
    layer.backward(grad_np)
    assert rel_err(layer.table_grad()[1], 2 * dense[rows]) <= TOL
    layer.zero_grad()
    assert layer.table_grad()[0].size == 0
    assert not np.any(layer.grads()["value_proj.weight"])


def test_state_dict_names_match_the_demo_module():
    primes = [7, 11, 13, 17]
    ref, layer = make_pair(primes, 4, 16, 4)
    sd = layer.state_dict()
    ref_sd = ref.state_dict()
    assert list(sd) == list(ref_sd)  # same names, same order (offsets buffer included)
    for k, v in ref_sd.items():
        assert sd[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(sd[k], v.numpy())


def test_bad_inputs_raise():
    primes = [7, 11]
    _, layer = make_pair(primes, 4, 8, 1)
    sd = layer.state_dict()
    with pytest.raises(ValueError, match="missing value_proj.bias"):
        layer.load_state_dict({k: v for k, v in sd.items() if k != "value_proj.bias"})
    with pytest.raises(ValueError, match="value_proj.weight has shape"):
        layer.load_state_dict({**sd, "value_proj.weight": np.zeros((8, 7), np.float32)})
    with pytest.raises(ValueError, match="unexpected key"):
        layer.load_state_dict({**sd, "gate.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="offsets"):
        layer.load_state_dict({**sd, "multi_head_embedding.offsets": np.array([0, 8])})
    hidden = np.zeros((1, 2, 1, 8), np.float32)
    with pytest.raises(IndexError, match="column 1"):
        layer.forward(hidden, np.array([[[0, 0], [6, 11]]], dtype=np.int64))
    with pytest.raises(ValueError, match="hash_ids has shape"):
        layer.forward(hidden, np.zeros((1, 2, 3), np.int64))
    with pytest.raises(ValueError, match="hidden has shape"):
        layer.forward(np.zeros((1, 2, 2, 8), np.float32), np.zeros((1, 2, 2), np.int64))
    fresh = engram.EngramLayerCore(primes, 4, 8, 1)
    with pytest.raises(ValueError):
        fresh.backward(np.zeros((1, 2, 1, 8), np.float32))


def test_default_init_follows_the_recipe():
    layer = engram.EngramLayerCore([101, 103], 8, 32, 2, seed=5)
    sd = layer.state_dict()
    assert np.all(sd["short_conv.conv.weight"] == 0)
    assert np.all(sd["norm1.1.weight"] == 1) and np.all(sd["short_conv.norms.0.weight"] == 1)
    assert np.all(sd["value_proj.bias"] == 0)
    std = sd["multi_head_embedding.embedding.weight"].std()
    assert 0.015 < std < 0.025
    again = engram.EngramLayerCore([101, 103], 8, 32, 2, seed=5).state_dict()
    np.testing.assert_array_equal(again["key_projs.1.weight"], sd["key_projs.1.weight"])


def test_decode_matches_full_forward():
    primes, hc, hidden = [7, 11, 13, 17], 2, 16
    _, layer = make_pair(primes, 4, hidden, hc, seed=9)
    rng = np.random.default_rng(2)
    B, T, P = 2, 10, 4
    ids = random_hash_ids(primes, B, T, rng)
    h = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)
    full = layer.forward(h, ids)
    layer.forward(h[:, :P], ids[:, :P])  # prefill
    for t in range(P, T):
        step = layer.decode_step(h[:, t], ids[:, t])
        assert rel_err(step, full[:, t]) <= TOL


def _tokenizer_path():
    return os.path.join(os.environ.get("ENGRAM_SOURCE_DIR", "."), "assets", "deepseek_v3",
                        "tokenizer.json")


@requires(os.path.exists(_tokenizer_path()), "tokenizer asset not fetched")
def test_layer_from_config_hashes_token_ids(tmp_path):
    cfg = {"engram_vocab_size": [2000, 2000], "max_ngram_size": 3, "n_embed_per_ngram": 32,
           "n_head_per_ngram": 2, "layer_ids": [1, 15], "pad_id": 2, "seed": 0, "kernel_size": 4}
    path = tmp_path / "engram.json"
    path.write_text(json.dumps(cfg))
    hidden, hc = 16, 2
    layer = engram.EngramLayer(str(path), 1, hidden, hc, _tokenizer_path())
    assert isinstance(layer, engram.EngramLayerCore)
    sd = layer.state_dict()
    primes = layer.primes
    assert len(primes) == 4 and all(p > 2000 for p in primes)
    assert sd["multi_head_embedding.embedding.weight"].shape == (sum(primes), 16)
    ids = np.array([[0, 100, 2000, 7, 7, 7], [5, 6, 7, 8, 9, 10]], dtype=np.int64)
    hash_ids = layer.hash(ids)
    assert hash_ids.shape == (2, 6, 4)
    assert np.all(hash_ids >= 0) and np.all(hash_ids < np.array(primes))
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2, 6, hc, hidden)).astype(np.float32)
    out = layer.forward(h, ids)
    core = engram.EngramLayerCore(primes, 16, hidden, hc)
    core.load_state_dict(sd)
    np.testing.assert_array_equal(out, core.forward(h, hash_ids))
    other = engram.EngramLayer(str(path), 15, hidden, hc, _tokenizer_path())
    assert not np.array_equal(other.hash(ids), hash_ids)  # other layer, other multipliers
    with pytest.raises(IndexError):
        engram.EngramLayer(str(path), 2, hidden, hc, _tokenizer_path())


@requires(os.path.exists(_tokenizer_path()), "tokenizer asset not fetched")
def test_layer_from_config_decodes_token_by_token(tmp_path):
    cfg = {"engram_vocab_size": [500, 500, 500], "max_ngram_size": 4, "n_embed_per_ngram": 16,
           "n_head_per_ngram": 2, "layer_ids": [3], "pad_id": 2, "seed": 1, "kernel_size": 4}
    path = tmp_path / "engram.json"
    path.write_text(json.dumps(cfg))
    hc, hidden = 2, 16
    layer = engram.EngramLayer(str(path), 3, hidden, hc, _tokenizer_path(), seed=4)
    sd = layer.state_dict()
    rng = np.random.default_rng(3)
    sd["short_conv.conv.weight"] = (0.3 * rng.standard_normal(
        sd["short_conv.conv.weight"].shape)).astype(np.float32)
    layer.load_state_dict(sd)
    B, T, P = 2, 9, 3
    ids = rng.integers(0, 120000, size=(B, T)).astype(np.int64)
    h = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)
    full = layer.forward(h, ids)
    layer.forward(h[:, :P], ids[:, :P])  # prompt
    for t in range(P, T):
        assert rel_err(layer.decode_step(h[:, t], ids[:, t]), full[:, t]) <= TOL
    layer.reset_decode(B)  # from an empty history: the same as a forward from position 0
    for t in range(T):
        assert rel_err(layer.decode_step(h[:, t], ids[:, t]), full[:, t]) <= TOL
