"""engram.Model against a PyTorch implementation of the same transformer on the same weights.

TorchRef below is written from the math in include/engram/model.h (Llama-style block, rotate-half
RoPE, SwiGLU, MoE with top-k softmax gates, shared expert and the Switch / DeepSeekMoE balance
loss); bench/bench_train.py imports it as the PyTorch baseline. The reference runs in float64,
so the comparison measures engram's fp32 error alone.

Tolerances: loss |a - b| <= 1e-4 * |b|; each gradient tensor
max|g_engram - g_torch| <= 1e-4 * max|g_torch| (relative to the tensor's scale: elementwise
relative error is meaningless for entries that are ~0). Optimizer: AdamW parameters after three
steps within 1e-6 * (1 + |p|) of torch.optim.AdamW given identical gradients.
"""
import importlib.util
import json
import math
import os

import numpy as np
import pytest
import torch

import engram

from asset_helpers import missing

# The Engram layer's PyTorch module (deepseek-ai/Engram demo, line for line) lives with the layer's
# own tests; the whole-model reference reuses it.
_spec = importlib.util.spec_from_file_location(
    "engram_layer_ref", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_layer.py"))
layer_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layer_ref)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_cos_sin(T, D, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (T, D/2)
    ang = torch.cat([ang, ang], dim=-1)  # (T, D)
    return ang.to(torch.float64).cos().to(dtype), ang.to(torch.float64).sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class TorchRef(torch.nn.Module):
    """The model of include/engram/model.h in plain PyTorch, parameters named as in engram."""

    def __init__(self, cfg, params, dtype=torch.float64):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict()
        self.names = list(params.keys())
        for name, arr in params.items():
            if ".engram." not in name:
                self.p[name.replace(".", "__")] = torch.nn.Parameter(torch.tensor(arr, dtype=dtype))
        self.dtype = dtype
        self.eng = torch.nn.ModuleDict()
        ec = cfg.get("engram", {})
        if ec.get("layer_ids"):
            V = cfg["vocab_size"]
            self.hasher = engram.NgramHasher(engram.EngramConfig.from_json(json.dumps(ec)),
                                             np.arange(V), V)  # identity compression
            for l in ec["layer_ids"]:
                mod = layer_ref.TorchEngram(list(self.hasher.primes(l)),
                                            ec["n_embed_per_ngram"] // ec["n_head_per_ngram"],
                                            cfg["hidden_size"], 1, ec.get("kernel_size", 4),
                                            ec["max_ngram_size"]).to(dtype)
                for norm in list(mod.norm1) + list(mod.norm2):
                    norm.eps = float(np.finfo(np.float32).eps)  # what the fp32 module resolves
                with torch.no_grad():
                    for n, prm in mod.named_parameters():
                        prm.copy_(torch.tensor(params[f"model.layers.{l}.engram.{n}"], dtype=dtype))
                self.eng[str(l)] = mod

    def w(self, name):
        if ".engram." in name:
            layer = name.split(".")[2]
            return self.eng[layer].get_parameter(name.split(".engram.", 1)[1])
        return self.p[name.replace(".", "__")]

    def grads(self):
        """Gradients by name; a tensor the loss did not reach (an expert no token picked) is 0."""
        return {n: (self.w(n).grad.detach().cpu().numpy() if self.w(n).grad is not None
                    else np.zeros(tuple(self.w(n).shape))) for n in self.names}

    def ffn(self, pre, x):
        silu = torch.nn.functional.silu
        return (silu(x @ self.w(pre + "gate_proj.weight").T) * (x @ self.w(pre + "up_proj.weight").T)) @ \
            self.w(pre + "down_proj.weight").T

    def moe(self, pre, x):
        m = self.cfg["moe"]
        E, k = m["n_experts"], m.get("top_k", 2)
        N = x.shape[0]
        probs = torch.softmax(x @ self.w(pre + "mlp.gate.weight").T, dim=-1)  # (N, E)
        top_p, top_i = torch.topk(probs, k, dim=-1)
        if m.get("norm_topk_prob", False):
            top_p = top_p / top_p.sum(-1, keepdim=True)
        out = torch.zeros_like(x)
        if m.get("shared_ffn_hidden", 0) > 0:
            out = out + self.ffn(pre + "mlp.shared_expert.", x)
        for e in range(E):
            rows, slots = torch.nonzero(top_i == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            y = self.ffn(pre + f"mlp.experts.{e}.", x[rows])
            out = out.index_add(0, rows, y * top_p[rows, slots][:, None])
        counts = torch.bincount(top_i.flatten(), minlength=E).to(x.dtype)
        f = counts / (N * k)
        P = probs.mean(0)
        aux = m.get("aux_loss_coef", 0.01) * E * (f.detach() * P).sum()
        return out, aux

    def forward(self, ids, targets=None):
        cfg = self.cfg
        B, T = ids.shape
        C, H = cfg["hidden_size"], cfg["n_heads"]
        KV = cfg.get("n_kv_heads", 0) or H
        D = C // H
        eps = cfg.get("norm_eps", 1e-5)
        cos, sin = rope_cos_sin(T, D, cfg.get("rope_theta", 10000.0), self.dtype)
        x = self.w("model.embed_tokens.weight")[ids]  # (B, T, C)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        aux_total = torch.zeros((), dtype=self.dtype)
        hashes = self.hasher.hash(ids.numpy()) if len(self.eng) else {}
        for l in range(cfg["n_layers"]):
            pre = f"model.layers.{l}."
            if str(l) in self.eng:  # the demo's block: h = engram(h, ids) + h, before attention
                x = x + self.eng[str(l)](x.unsqueeze(2), torch.tensor(hashes[l])).squeeze(2)
            xn = rmsnorm(x, self.w(pre + "input_layernorm.weight"), eps)
            q = (xn @ self.w(pre + "self_attn.q_proj.weight").T).view(B, T, H, D).transpose(1, 2)
            k = (xn @ self.w(pre + "self_attn.k_proj.weight").T).view(B, T, KV, D).transpose(1, 2)
            v = (xn @ self.w(pre + "self_attn.v_proj.weight").T).view(B, T, KV, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            s = s.masked_fill(~mask, float("-inf"))
            y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
            x = x + y @ self.w(pre + "self_attn.o_proj.weight").T
            xn = rmsnorm(x, self.w(pre + "post_attention_layernorm.weight"), eps)
            if cfg.get("moe", {}).get("n_experts", 0) > 0:
                out, aux = self.moe(pre, xn.reshape(B * T, C))
                x = x + out.view(B, T, C)
                aux_total = aux_total + aux
            else:
                x = x + self.ffn(pre + "mlp.", xn)
        x = rmsnorm(x, self.w("model.norm.weight"), eps)
        lm = self.w("model.embed_tokens.weight") if cfg.get("tie_word_embeddings") else self.w("lm_head.weight")
        logits = x @ lm.T
        if targets is None:
            return logits
        ce = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1),
                                               ignore_index=-100)
        return ce + aux_total


DENSE = dict(vocab_size=61, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=40,
             max_seq_len=24, rope_theta=500.0, norm_eps=1e-5)
CONFIGS = {
    "dense_gqa": DENSE,
    "dense_tied_mha": dict(DENSE, n_kv_heads=4, tie_word_embeddings=True),
    "moe_shared": dict(DENSE, moe=dict(n_experts=4, top_k=2, expert_ffn_hidden=24,
                                       shared_ffn_hidden=16, aux_loss_coef=0.05)),
    "moe_norm_topk": dict(DENSE, moe=dict(n_experts=5, top_k=3, expert_ffn_hidden=12,
                                          norm_topk_prob=True, aux_loss_coef=0.1)),
    "engram": dict(DENSE, engram=dict(engram_vocab_size=[37, 41], max_ngram_size=3,
                                      n_embed_per_ngram=16, n_head_per_ngram=2, layer_ids=[1],
                                      pad_id=0, seed=0, kernel_size=4)),
    "engram_moe": dict(DENSE, n_layers=3,
                       moe=dict(n_experts=4, top_k=2, expert_ffn_hidden=24, shared_ffn_hidden=16),
                       engram=dict(engram_vocab_size=[29, 31, 43], max_ngram_size=4,
                                   n_embed_per_ngram=12, n_head_per_ngram=3, layer_ids=[0, 2],
                                   pad_id=3, seed=5, kernel_size=3)),
}


def make_model(cfg, seed=0, scale=0.15):
    """An engram.Model whose weights are redrawn from a wider normal (the default 0.02 init leaves
    the softmaxes nearly uniform and the gradients tiny, which would test little)."""
    model = engram.Model(json.dumps(cfg), seed)
    rng = np.random.default_rng(seed + 100)
    params = {}
    for name in model.param_names():
        shape = model.param_shape(name)
        if len(shape) == 1:
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            a = scale * rng.standard_normal(shape)
        a = a.astype(np.float32)
        model.set_param(name, a)
        params[name] = a
    return model, params


def batch(cfg, B, T, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg["vocab_size"], size=(B, T))
    targets = rng.integers(0, cfg["vocab_size"], size=(B, T))
    return ids, targets


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_and_every_gradient_match_pytorch(name):
    cfg = CONFIGS[name]
    model, params = make_model(cfg)
    ids, targets = batch(cfg, 3, 17, seed=1)
    targets[1, 4] = -100  # an ignored position
    loss = model.forward(ids, targets)
    model.zero_grad()
    model.backward()
    grads = model.grads()

    ref = TorchRef(cfg, params)
    ref_loss = ref(torch.tensor(ids), torch.tensor(targets))
    ref_loss.backward()
    ref_grads = ref.grads()

    assert abs(loss - ref_loss.item()) <= 1e-4 * abs(ref_loss.item()), (loss, ref_loss.item())
    assert set(grads) == set(ref_grads)
    for n in grads:
        scale = np.abs(ref_grads[n]).max()
        if scale == 0:  # unused expert: no gradient on either side
            assert not grads[n].any(), n
            continue
        err = np.abs(grads[n] - ref_grads[n]).max()
        assert err <= 1e-4 * scale, f"{name}: {n}: max err {err:.3g} vs scale {scale:.3g}"
    if "moe" in cfg:
        assert model.last_aux_loss > 0


def test_engram_hash_ids_match_the_hasher_and_tables_get_sparse_updates():
    cfg = CONFIGS["engram_moe"]
    model, params = make_model(cfg)
    ids, targets = batch(cfg, 2, 9, seed=5)
    ref = TorchRef(cfg, params)
    expected = ref.hasher.hash(ids)
    for l in (0, 2):
        np.testing.assert_array_equal(model.engram_hash_ids(l, ids), expected[l])
    with pytest.raises(IndexError):
        model.engram_hash_ids(1, ids)
    table = "model.layers.2.engram.multi_head_embedding.embedding.weight"
    before = model.get_param(table)
    opt, topt = engram.AdamW(model), engram.EngramTableAdam(model, lr_multiplier=5.0)
    model.forward(ids, targets)
    model.zero_grad()
    model.backward()
    grad = model.grads()[table]
    touched = np.abs(grad).sum(axis=1) > 0
    model.clip_grad_norm(1.0)
    opt.step(1e-3)
    topt.step(1e-3)
    after = model.get_param(table)
    changed = np.abs(after - before).sum(axis=1) > 0
    np.testing.assert_array_equal(changed, touched)
    # A first Adam step moves an entry by 5 x lr against its gradient's sign (eps aside).
    big = np.abs(grad) > 1e-4
    assert big.sum() > 10
    np.testing.assert_allclose((before - after)[big], 5e-3 * np.sign(grad[big]), rtol=1e-3)


@pytest.mark.parametrize("name", ["dense_gqa", "moe_shared", "engram_moe"])
def test_logits_match_pytorch_and_decode_matches_full_forward(name):
    cfg = CONFIGS[name]
    model, params = make_model(cfg, seed=3)
    ids, _ = batch(cfg, 1, 12, seed=2)
    logits = model.forward_logits(ids)
    ref = TorchRef(cfg, params)(torch.tensor(ids)).detach().numpy()
    assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max()
    model.reset_cache()
    for t in range(ids.shape[1]):
        step = model.decode_step(int(ids[0, t]))
        assert np.abs(step - logits[0, t]).max() <= 1e-4 * np.abs(logits[0, t]).max(), t
    assert model.cache_length == ids.shape[1]


def test_gradients_accumulate_across_backward_calls():
    cfg = CONFIGS["dense_gqa"]
    model, _ = make_model(cfg)
    ids, targets = batch(cfg, 2, 8, seed=4)
    model.forward(ids, targets)
    model.zero_grad()
    model.backward()
    once = model.grads()
    model.forward(ids, targets)
    model.backward()
    twice = model.grads()
    for n in once:
        np.testing.assert_allclose(twice[n], 2 * once[n], rtol=1e-5, atol=1e-9)


def test_adamw_step_matches_torch_adamw():
    cfg = CONFIGS["moe_shared"]
    model, params = make_model(cfg)
    decay = [n for n in params if model.weight_decay(n)]
    no_decay = [n for n in params if not model.weight_decay(n)]
    assert "model.embed_tokens.weight" in no_decay and "model.norm.weight" in no_decay
    assert "model.layers.0.self_attn.q_proj.weight" in decay
    tp = {n: torch.nn.Parameter(torch.tensor(a)) for n, a in params.items()}
    topt = torch.optim.AdamW([{"params": [tp[n] for n in decay], "weight_decay": 0.1},
                              {"params": [tp[n] for n in no_decay], "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    opt = engram.AdamW(model, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    rng = np.random.default_rng(7)
    for step, lr in enumerate([1e-2, 3e-3, 5e-4]):
        for n in params:
            g = (rng.standard_normal(params[n].shape) * 10.0 ** rng.integers(-4, 1)).astype(np.float32)
            model.set_grad(n, g)
            tp[n].grad = torch.tensor(g)
        for group in topt.param_groups:
            group["lr"] = lr
        topt.step()
        opt.step(lr)
        for n in params:
            ours, theirs = model.get_param(n), tp[n].detach().numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6, err_msg=f"step {step} {n}")
    assert opt.steps == 3


def test_clip_grad_norm_matches_torch():
    cfg = CONFIGS["dense_gqa"]
    model, params = make_model(cfg)
    rng = np.random.default_rng(8)
    tp = []
    for n in params:
        g = rng.standard_normal(params[n].shape).astype(np.float32)
        model.set_grad(n, g)
        t = torch.nn.Parameter(torch.tensor(params[n]))
        t.grad = torch.tensor(g)
        tp.append(t)
    norm = engram.clip_grad_norm(model, 1.0)
    tnorm = torch.nn.utils.clip_grad_norm_(tp, 1.0).item()
    assert abs(norm - tnorm) <= 1e-5 * tnorm
    for n, t in zip(params, tp):
        np.testing.assert_allclose(model.get_grad(n), t.grad.numpy(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", ["engram", "engram_moe"])
def test_clipped_gradients_tables_included_match_torch_clip_grad_norm(name):
    cfg = CONFIGS[name]
    model, params = make_model(cfg)
    ids, targets = batch(cfg, 3, 17, seed=6)
    model.forward(ids, targets)
    model.zero_grad()
    model.backward()
    ref = TorchRef(cfg, params)
    ref(torch.tensor(ids), torch.tensor(targets)).backward()
    trained = [ref.w(n) for n in ref.names if ref.w(n).grad is not None]
    full = torch.sqrt(sum((p.grad ** 2).sum() for p in trained)).item()
    max_norm = 0.3 * full  # well inside the clipping range

    norm = model.clip_grad_norm(max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(trained, max_norm).item()
    assert abs(norm - tnorm) <= 1e-4 * tnorm, (norm, tnorm)
    grads, ref_grads = model.grads(), ref.grads()
    assert set(grads) == set(ref_grads)
    tables = [n for n in grads if n.endswith("multi_head_embedding.embedding.weight")]
    assert tables and all(np.abs(ref_grads[n]).max() > 0 for n in tables)
    for n in grads:
        scale = np.abs(ref_grads[n]).max()
        if scale == 0:
            assert not grads[n].any(), n
            continue
        err = np.abs(grads[n] - ref_grads[n]).max()
        assert err <= 1e-4 * scale, f"{name}: {n}: max err {err:.3g} vs scale {scale:.3g}"


def test_same_seed_gives_the_same_losses():
    cfg = CONFIGS["moe_shared"]

    def run():
        model = engram.Model(json.dumps(cfg), 42)
        opt = engram.AdamW(model)
        sched = engram.LrSchedule(max_lr=3e-3, min_lr=3e-4, warmup=2, total=6)
        losses = []
        for step in range(4):
            ids, targets = batch(cfg, 2, 12, seed=10 + step)
            losses.append(model.forward(ids, targets))
            model.zero_grad()
            model.backward()
            engram.clip_grad_norm(model, 1.0)
            opt.step(sched.at(step))
        return losses

    a, b = run(), run()
    assert a == b
    assert a[-1] != a[0]


def test_bad_inputs_raise():
    cfg = CONFIGS["dense_gqa"]
    model, _ = make_model(cfg)
    ids, targets = batch(cfg, 1, 4, seed=0)
    bad = ids.copy()
    bad[0, 2] = cfg["vocab_size"]
    with pytest.raises(IndexError, match=r"ids\[0, 2\]"):
        model.forward(bad, targets)
    with pytest.raises(ValueError, match="max_seq_len"):
        model.forward(np.zeros((1, 25), dtype=np.int64), np.zeros((1, 25), dtype=np.int64))
    with pytest.raises(ValueError, match="backward"):
        model.backward()
    with pytest.raises(IndexError, match="no parameter"):
        model.get_param("model.layers.9.mlp.up_proj.weight")
    with pytest.raises(ValueError, match="q_proj"):
        model.set_param("model.layers.0.self_attn.q_proj.weight", np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="unknown key"):
        engram.Model(json.dumps(dict(cfg, hiden_size=3)))
    with pytest.raises(ValueError, match="n_kv_heads"):
        engram.Model(json.dumps(dict(cfg, n_kv_heads=3)))
    with pytest.raises(ValueError, match="top_k"):
        engram.Model(json.dumps(dict(cfg, moe=dict(n_experts=2, top_k=3, expert_ffn_hidden=4))))
    with pytest.raises(ValueError, match="invalid JSON"):
        engram.Model("{not json")


def test_save_and_load_round_trip(tmp_path):
    cfg = CONFIGS["engram_moe"]
    model, params = make_model(cfg, seed=9)
    model.save(str(tmp_path / "ckpt"))
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["config.json", "model.safetensors"]
    back = engram.Model.load(str(tmp_path / "ckpt"))
    for n, a in params.items():
        np.testing.assert_array_equal(back.get_param(n), a)
    ids, targets = batch(cfg, 2, 7, seed=11)
    assert back.forward(ids, targets) == model.forward(ids, targets)
    with pytest.raises(OSError):
        engram.Model.load(str(tmp_path / "missing"))


def test_tokenizer_compress_lookup_covers_a_rounded_up_vocab():
    path = os.path.join(os.environ.get("ENGRAM_SOURCE_DIR", "."), "assets", "deepseek_v3",
                        "tokenizer.json")
    if not os.path.exists(path):
        missing("assets/deepseek_v3/tokenizer.json not fetched")
    tok = engram.Tokenizer(path)
    tc = engram.TokenCompressor.from_tokenizer(path)
    lookup = engram.tokenizer_compress_lookup(tok, tok.vocab_size + 3)
    assert len(lookup) == tok.vocab_size + 3
    assert list(lookup[:tok.vocab_size]) == list(tc.lookup)
    m = tc.compressed_vocab_size
    assert list(lookup[tok.vocab_size:]) == [m, m + 1, m + 2]
    with pytest.raises(ValueError, match="more than vocab_size"):
        engram.tokenizer_compress_lookup(tok, tok.vocab_size - 1)

