"""The tokenizer-facing entry points of the hasher: engram.NgramHasher(config, tokenizer.json) and
`engram hash`, against the NumPy transcription of the demo fed with engram's compression
lookup of DeepSeek-V3's tokenizer; and the refusal of a V4.1 config whose
engram_compressed_vocab_size does not match the tokenizer."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import engram

SOURCE = os.environ.get("ENGRAM_SOURCE_DIR", ".")
BINARY = os.environ.get("ENGRAM_BINARY_DIR", os.path.join(SOURCE, "build"))
TOKENIZER = os.path.join(SOURCE, "assets", "deepseek_v3", "tokenizer.json")
DEMO = os.path.join(SOURCE, "configs", "engram_demo.json")
V41 = os.path.join(SOURCE, "configs", "deepseek_v41_config.json")
CLI = os.path.join(BINARY, "engram")

sys.path.insert(0, os.path.join(SOURCE, "tests", "hash"))
from numpy_reference import NumpyNgramHash  # noqa: E402

from asset_helpers import requires

pytestmark = requires(os.path.exists(TOKENIZER), "assets/deepseek_v3/tokenizer.json not fetched")


@pytest.fixture(scope="module")
def compressor():
    return engram.TokenCompressor.from_tokenizer(TOKENIZER)


@pytest.fixture(scope="module")
def reference(compressor):
    cfg = json.load(open(DEMO))
    return NumpyNgramHash(cfg["engram_vocab_size"], cfg["max_ngram_size"],
                          cfg["n_head_per_ngram"], cfg["layer_ids"], compressor.lookup,
                          compressor.compressed_vocab_size, cfg["pad_id"], cfg["seed"])


def sample_ids(vocab):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=(3, 57))
    ids[1, 10:14] = -1  # padding passes through uncompressed
    return ids


def test_hasher_from_tokenizer_matches_numpy(compressor, reference):
    hasher = engram.NgramHasher(DEMO, TOKENIZER)
    assert hasher.compressed_vocab_size == compressor.compressed_vocab_size
    assert hasher.vocab_size == compressor.vocab_size
    ids = sample_ids(compressor.vocab_size)
    got = hasher.hash(ids)
    want = reference.hash(ids)
    for layer in reference.layer_ids:
        np.testing.assert_array_equal(hasher.primes(layer), reference.primes(layer))
        np.testing.assert_array_equal(hasher.multipliers(layer), reference.layer_multipliers[layer])
        np.testing.assert_array_equal(got[layer], want[layer])


def run_cli(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)


@requires(os.path.exists(CLI), "engram CLI not built")
def test_cli_hash_matches_numpy(tmp_path, compressor, reference):
    ids = sample_ids(compressor.vocab_size)
    dead = np.zeros(ids.shape, dtype=bool)
    dead[2, 20:25] = True
    src = tmp_path / "ids.json"
    src.write_text(json.dumps({"input_ids": ids.tolist(), "dead_mask": dead.astype(int).tolist()}))
    out = tmp_path / "hash.json"
    r = run_cli("hash", "--config", DEMO, "--tokenizer", TOKENIZER, "--input", str(src),
                "--output", str(out))
    assert r.returncode == 0, r.stderr
    got = json.load(open(out))["hash_ids"]
    want = reference.hash(ids, dead)
    assert sorted(got) == sorted(str(layer) for layer in want)
    for layer in want:
        np.testing.assert_array_equal(np.array(got[str(layer)], dtype=np.int64), want[layer])


@requires(os.path.exists(CLI), "engram CLI not built")
def test_cli_refuses_compressed_vocab_mismatch_and_bad_ids(tmp_path, compressor):
    src = tmp_path / "ids.json"
    src.write_text(json.dumps({"input_ids": [[0, 1, 2]]}))
    r = run_cli("hash", "--config", V41, "--tokenizer", TOKENIZER, "--input", str(src),
                "--output", str(tmp_path / "o.json"))
    assert r.returncode == 1
    assert "99092" in r.stderr and str(compressor.compressed_vocab_size) in r.stderr
    src.write_text(json.dumps({"input_ids": [[0, 1, compressor.vocab_size]]}))
    r = run_cli("hash", "--config", DEMO, "--tokenizer", TOKENIZER, "--input", str(src),
                "--output", str(tmp_path / "o.json"))
    assert r.returncode == 1
    assert "batch 0, position 2" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_python_refuses_compressed_vocab_mismatch(compressor):
    with pytest.raises(ValueError, match=rf"99092.*{compressor.compressed_vocab_size}"):
        engram.NgramHasher(V41, TOKENIZER)


@requires(os.path.exists(CLI), "engram CLI not built")
def test_cli_hash_v41_config_with_only_the_hashing_keys(tmp_path, compressor):
    """A DeepSeek-V4.1 config.json cut down to its engram_* keys (no hidden_size, hc_mult or
    rms_norm_eps, which hashing never reads) hashes exactly as the NumPy transcription does."""
    full = json.load(open(V41))
    full["engram_compressed_vocab_size"] = compressor.compressed_vocab_size
    minimal = {k: v for k, v in full.items() if k.startswith("engram_")}
    assert "hidden_size" not in minimal and "rms_norm_eps" not in minimal
    (tmp_path / "config.json").write_text(json.dumps(minimal))
    ids = sample_ids(compressor.vocab_size)
    src = tmp_path / "ids.json"
    src.write_text(json.dumps({"input_ids": ids.tolist()}))
    out = tmp_path / "hash.json"
    r = run_cli("hash", "--config", str(tmp_path / "config.json"), "--tokenizer", TOKENIZER,
                "--input", str(src), "--output", str(out))
    assert r.returncode == 0, r.stderr
    got = json.load(open(out))["hash_ids"]
    n = minimal["engram_max_ngram_size"]
    reference = NumpyNgramHash([minimal["engram_vocab_size"]] * (n - 1), n,
                               minimal["engram_n_heads"], minimal["engram_layer_ids"],
                               compressor.lookup, compressor.compressed_vocab_size,
                               minimal["engram_pad_token_id"], 0)
    want = reference.hash(ids)
    assert sorted(got) == sorted(str(layer) for layer in want)
    for layer in want:
        np.testing.assert_array_equal(np.array(got[str(layer)], dtype=np.int64), want[layer])
