"""engram.NgramHasher against a pure-NumPy transcription of the demo's NgramHashMapping
(tests/hash/numpy_reference.py), bit for bit: primes, offsets, multipliers and hash ids over many
seeds, layer ids, vocabulary sizes, n-gram orders 2..5, heads 1..8, pad/negative ids and
DeepSeek-V4.1 dead masks; streaming in random chunks equals hashing whole sequences."""

import copy
import json
import os
import sys

import numpy as np
import pytest

import engram

sys.path.insert(0, os.path.join(os.environ.get("ENGRAM_SOURCE_DIR", "."), "tests", "hash"))
from numpy_reference import NumpyNgramHash  # noqa: E402


def random_lookup(rng, vocab, compressed):
    """A dense compressed lookup: ids handed out in order of first appearance."""
    raw = rng.integers(0, compressed, size=vocab)
    raw[:compressed] = rng.permutation(compressed)  # every compressed id is used
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(first)
    remap = np.empty(compressed, dtype=np.int64)
    remap[np.unique(raw)[order]] = np.arange(compressed)
    return remap[raw].astype(np.int64)


def demo_config(vocab_sizes, max_ngram, heads, layer_ids, pad_id, seed):
    return engram.EngramConfig.from_json(json.dumps({
        "engram_vocab_size": vocab_sizes, "max_ngram_size": max_ngram,
        "n_embed_per_ngram": 8 * heads, "n_head_per_ngram": heads, "layer_ids": layer_ids,
        "pad_id": pad_id, "seed": seed, "kernel_size": 4}))


def make_pair(rng, max_ngram, heads, vocab=300, compressed=211, big=False, seed=None):
    lookup = random_lookup(rng, vocab, compressed)
    layers = sorted(rng.choice(40, size=int(rng.integers(1, 4)), replace=False).tolist())
    low, high = (70_000, 2_000_000) if big else (2, 5_000)
    sizes = [int(v) for v in rng.integers(low, high, size=max_ngram - 1)]
    seed = int(rng.integers(0, 2**40)) if seed is None else seed
    pad_id = int(rng.integers(0, vocab))
    cfg = demo_config(sizes, max_ngram, heads, layers, pad_id, seed)
    ours = engram.NgramHasher(cfg, lookup, compressed)
    ref = NumpyNgramHash(sizes, max_ngram, heads, layers, lookup, compressed, pad_id, seed)
    return ours, ref


def assert_same_layout(ours, ref):
    assert ours.layer_ids == ref.layer_ids
    for layer in ref.layer_ids:
        np.testing.assert_array_equal(ours.primes(layer), ref.primes(layer))
        np.testing.assert_array_equal(ours.offsets(layer), ref.offsets(layer))
        np.testing.assert_array_equal(ours.multipliers(layer), ref.layer_multipliers[layer])
        assert ours.total_rows(layer) == int(ref.primes(layer).sum())


def assert_same_hash(ours, ref, ids, dead=None):
    got = ours.hash(ids, dead)
    want = ref.hash(ids, dead)
    assert sorted(got) == sorted(want)
    for layer in want:
        assert got[layer].dtype == np.int64
        np.testing.assert_array_equal(got[layer], want[layer], err_msg=f"layer {layer}")
    rows = ours.hash_rows(ids, dead)
    for layer in want:
        np.testing.assert_array_equal(rows[layer], want[layer] + ref.offsets(layer))


@pytest.mark.parametrize("max_ngram", [2, 3, 4, 5])
@pytest.mark.parametrize("heads", [1, 2, 3, 8])
@pytest.mark.parametrize("big", [False, True])
def test_hash_matches_numpy_demo(max_ngram, heads, big):
    rng = np.random.default_rng(1000 * max_ngram + 10 * heads + big)
    for _ in range(3):
        ours, ref = make_pair(rng, max_ngram, heads, big=big)
        assert_same_layout(ours, ref)
        B, T = int(rng.integers(1, 5)), int(rng.integers(1, 40))
        ids = rng.integers(0, ours.vocab_size, size=(B, T))
        assert_same_hash(ours, ref, ids)


@pytest.mark.parametrize("big", [False, True])
def test_negative_ids_pass_through_like_the_demo(big):
    rng = np.random.default_rng(7 + big)
    for max_ngram, heads in [(2, 1), (3, 8), (5, 5)]:
        ours, ref = make_pair(rng, max_ngram, heads, big=big)
        ids = rng.integers(0, ours.vocab_size, size=(3, 50))
        ids[rng.random(ids.shape) < 0.2] = -1
        ids[0, :3] = [-100, -(2**40), -(2**62)]  # products wrap in NumPy's int64: so do ours
        ids[1, -1] = -(2**63)
        assert_same_hash(ours, ref, ids)


@pytest.mark.parametrize("big", [False, True])
def test_dead_mask_matches_numpy(big):
    rng = np.random.default_rng(11 + big)
    for max_ngram in (2, 3, 4, 5):
        ours, ref = make_pair(rng, max_ngram, int(rng.integers(1, 9)), big=big)
        for density in (0.0, 0.05, 0.3, 1.0):
            ids = rng.integers(0, ours.vocab_size, size=(4, 33))
            dead = rng.random(ids.shape) < density
            ids[dead] = ours.vocab_size + 12345  # never read: dead ids are replaced by pad
            assert_same_hash(ours, ref, ids, dead)


def test_large_input_uses_threads_and_matches():
    rng = np.random.default_rng(5)
    ours, ref = make_pair(rng, 3, 8, vocab=129280, compressed=99092, big=True, seed=0)
    ids = rng.integers(0, ours.vocab_size, size=(4, 5000))
    dead = rng.random(ids.shape) < 0.01
    for threads in (1, 2, 0):
        ours.num_threads = threads
        assert_same_hash(ours, ref, ids, dead)


def test_out_of_range_id_names_batch_and_position():
    rng = np.random.default_rng(3)
    ours, _ = make_pair(rng, 3, 2)
    ids = rng.integers(0, ours.vocab_size, size=(2, 9))
    ids[1, 4] = ours.vocab_size
    with pytest.raises(IndexError, match=r"batch 1, position 4"):
        ours.hash(ids)
    with pytest.raises(ValueError):
        ours.hash(ids.astype(np.float64))
    with pytest.raises(ValueError):
        ours.hash(ids[0])
    with pytest.raises(ValueError):
        ours.hash(ids, np.zeros((2, 8), dtype=bool))


def stream(ours, ids, dead, cuts, add_offsets=False):
    """Hashes one sequence chunk by chunk through HashState."""
    state = ours.new_state()
    parts = {layer: [] for layer in ours.layer_ids}
    bounds = [0] + sorted(cuts) + [len(ids)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        d = None if dead is None else dead[a:b]
        for layer in ours.layer_ids:
            parts[layer].append(ours.hash_chunk(state, layer, ids[a:b], d, add_offsets))
        ours.advance(state, ids[a:b], d)
    assert state.seen == len(ids)
    return {layer: np.concatenate(p) for layer, p in parts.items()}


@pytest.mark.parametrize("max_ngram", [2, 3, 5])
def test_streaming_random_chunks_equals_whole(max_ngram):
    rng = np.random.default_rng(100 + max_ngram)
    for big in (False, True):
        ours, _ = make_pair(rng, max_ngram, 4, big=big)
        for trial in range(10):
            T = int(rng.integers(1, 60))
            ids = rng.integers(-1, ours.vocab_size, size=T)
            dead = (rng.random(T) < 0.15) if trial % 2 else None
            whole = ours.hash(ids[None, :], None if dead is None else dead[None, :])
            rows = ours.hash_rows(ids[None, :], None if dead is None else dead[None, :])
            cuts = rng.choice(np.arange(1, T), size=min(T - 1, int(rng.integers(0, 8))),
                              replace=False).tolist() if T > 1 else []
            got = stream(ours, ids, dead, cuts)
            got_rows = stream(ours, ids, dead, cuts, add_offsets=True)
            for layer in ours.layer_ids:
                np.testing.assert_array_equal(got[layer], whole[layer][0])
                np.testing.assert_array_equal(got_rows[layer], rows[layer][0])
            # One token at a time (decode).
            one = stream(ours, ids, dead, list(range(1, T)))
            for layer in ours.layer_ids:
                np.testing.assert_array_equal(one[layer], whole[layer][0])


def test_streaming_rollback_by_state_copy():
    rng = np.random.default_rng(9)
    ours, _ = make_pair(rng, 4, 3, big=True)
    layer = ours.layer_ids[0]
    prefix = rng.integers(0, ours.vocab_size, size=10)
    accepted = rng.integers(0, ours.vocab_size, size=2)
    state = ours.new_state()
    ours.advance(state, prefix)
    snapshot = copy.copy(state)
    ours.advance(state, rng.integers(0, ours.vocab_size, size=5))  # rejected draft
    state = snapshot
    out = ours.hash_chunk(state, layer, accepted)
    whole = ours.hash(np.concatenate([prefix, accepted])[None, :])[layer][0, -2:]
    np.testing.assert_array_equal(out, whole)


def test_streaming_error_names_sequence_position():
    rng = np.random.default_rng(4)
    ours, _ = make_pair(rng, 3, 2)
    state = ours.new_state()
    ours.advance(state, np.arange(7) % ours.vocab_size)
    with pytest.raises(IndexError, match=r"sequence position 9"):
        ours.hash_chunk(state, ours.layer_ids[0], np.array([1, 2, ours.vocab_size]))


def test_v41_config_layout_and_dead_semantics(tmp_path):
    # The V4.1 form shares one prime-search start across orders and seeds with 10007 * layer.
    rng = np.random.default_rng(21)
    vocab, compressed = 500, 321
    lookup = random_lookup(rng, vocab, compressed)
    start, heads, max_ngram, layers = 70_000, 8, 4, [1, 14]
    ref = NumpyNgramHash([start] * (max_ngram - 1), max_ngram, heads, layers, lookup, compressed,
                         2, 0)
    cfg = {"text_config": {
        "engram_layer_ids": layers, "engram_max_ngram_size": max_ngram,
        "engram_vocab_size": start, "engram_n_heads": heads, "engram_head_dim": 256,
        "engram_num_embeddings": [int(ref.primes(layer).sum()) for layer in layers],
        "engram_pad_token_id": 2, "engram_compressed_vocab_size": compressed,
        "hidden_size": 64, "hc_mult": 4, "rms_norm_eps": 1e-20, "num_hidden_layers": 43,
        "dspark_block_size": 5}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    ours = engram.NgramHasher(str(path), lookup, compressed)
    assert ours.config.form == "deepseek_v41"
    assert_same_layout(ours, ref)
    ids = rng.integers(0, vocab, size=(3, 40))
    dead = np.zeros(ids.shape, dtype=bool)
    dead[0, 5:9] = True
    dead[1, 0] = True
    dead[2, 39] = True
    assert_same_hash(ours, ref, ids, dead)

    cfg["text_config"]["engram_compressed_vocab_size"] = compressed + 1
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=rf"{compressed + 1}.*{compressed}"):
        engram.NgramHasher(str(path), lookup, compressed)
    cfg["text_config"]["engram_compressed_vocab_size"] = compressed
    cfg["text_config"]["engram_num_embeddings"][1] += 1
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="engram_num_embeddings"):
        engram.NgramHasher(str(path), lookup, compressed)


def test_hash_into_caller_arrays():
    rng = np.random.default_rng(31)
    ours, ref = make_pair(rng, 4, 8, big=True)
    ids = rng.integers(0, ours.vocab_size, size=(2, 45))
    out = {layer: np.full((2, 45, ours.num_columns), -1, dtype=np.int64)
           for layer in ours.layer_ids}
    result = ours.hash(ids, out=out)
    want = ref.hash(ids)
    for layer in ours.layer_ids:
        assert result[layer] is out[layer]
        np.testing.assert_array_equal(out[layer], want[layer])
    ours.hash_rows(ids, out=out)
    for layer in ours.layer_ids:
        np.testing.assert_array_equal(out[layer], want[layer] + ref.offsets(layer))
    layer = ours.layer_ids[0]
    for bad in (np.zeros((2, 45, ours.num_columns), dtype=np.int32),
                np.zeros((2, 44, ours.num_columns), dtype=np.int64),
                np.zeros((2, ours.num_columns, 45), dtype=np.int64).transpose(0, 2, 1)):
        with pytest.raises(ValueError, match=r"out\["):
            ours.hash(ids, out={**out, layer: bad})
    with pytest.raises(ValueError, match="no array for layer"):
        ours.hash(ids, out={})
