"""Hostile and careless model configs given to `engram train`, and damaged checkpoints given to
`engram eval` and `engram generate`: each must end in a message naming the key (or the tensor, or
both sides of a mismatch) and a non-zero exit, quickly and without allocating gigabytes (the
commands run under a 4 GiB address-space limit, so an attempt ends in a bare allocation failure
that names nothing and fails the test)."""
import copy
import json
import resource
import subprocess

import pytest

from asset_helpers import requires
from cli_helpers import ENGRAM, SMALL_ENGRAM_CONFIG, engram, training_inputs, write_corpus

pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")

CONFIG = SMALL_ENGRAM_CONFIG


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _limit_works():
    """A sanitizer build reserves terabytes of address space for its shadow memory and cannot
    start under the limit; it then runs without it (the messages are still checked)."""
    r = subprocess.run([str(ENGRAM), "--help"], capture_output=True, preexec_fn=limited)
    return r.returncode == 0


LIMIT = _limit_works() if ENGRAM.exists() else False


def run_limited(*args):
    return subprocess.run([str(ENGRAM), *map(str, args)], capture_output=True, text=True,
                          preexec_fn=limited if LIMIT else None, timeout=60)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_config")
    write_corpus(root / "corpus", docs=6, lines=20, words_per_line=8, seed=5)
    training_inputs(root, root / "corpus", CONFIG)
    return root


def train(work, config, out, batch=2):
    cfg = work / "hostile.json"
    cfg.write_text(json.dumps(config))
    return run_limited("train", "--config", cfg, "--tokenizer", work / "tok.json", "--data",
                       work / "data", "--out", out, "--steps", 2, "--batch", batch, "--seq", 16,
                       "--threads", 1, "--eval-every", 2)


def with_key(path, value):
    c = copy.deepcopy(CONFIG)
    d = c
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value
    return c


ABSURD = [
    (("ffn_hidden",), 4611686018427387904, "ffn_hidden"),
    (("hidden_size",), 1 << 40, "hidden_size"),
    (("vocab_size",), 2147483647, "vocab_size"),
    (("n_layers",), 1 << 40, "n_layers"),
    (("max_seq_len",), 1 << 40, "max_seq_len"),
    (("moe",), {"n_experts": 1 << 20, "top_k": 2, "expert_ffn_hidden": 64}, "n_experts"),
    (("engram", "engram_vocab_size"), [1 << 50, 67], "engram_vocab_size"),
    (("engram", "n_head_per_ngram"), 1 << 20, "n_head_per_ngram"),
    (("engram", "n_embed_per_ngram"), 1 << 30, "n_embed_per_ngram"),
    (("engram", "layer_ids"), [], "layer_ids"),
]


@pytest.mark.parametrize("path,value,key", ABSURD, ids=[a[2] for a in ABSURD])
def test_absurd_sizes_name_the_key(work, tmp_path, path, value, key):
    r = train(work, with_key(path, value), tmp_path / "run")
    assert r.returncode != 0
    assert key in r.stderr, r.stderr
    assert "bad_alloc" not in r.stderr, r.stderr


def test_training_memory_is_estimated_for_batch_and_seq(work, tmp_path):
    r = train(work, CONFIG, tmp_path / "run", batch=1 << 40)
    assert r.returncode != 0
    assert "--batch" in r.stderr and "estimated" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def trained(work):
    out = work / "ok_run"
    engram("train", "--config", work / "cfg.json", "--tokenizer", work / "tok.json", "--data",
           work / "data", "--out", out, "--steps", 2, "--batch", 2, "--seq", 16, "--threads", 1,
           "--eval-every", 2)
    ckpt = out / (out / "latest").read_text().strip()
    return out, ckpt


def use(work, run):
    ev = run_limited("eval", "--model", run, "--data", work / "data", "--threads", 1)
    gen = run_limited("generate", "--model", run, "--prompt", "the cat", "--max-tokens", 2,
                      "--threads", 1)
    return ev, gen


def test_eval_and_generate_verify_what_resume_verifies(work, trained):
    out, ckpt = trained
    for r in use(work, out):
        assert r.returncode == 0, r.stderr
    st = ckpt / "model.safetensors"
    good = st.read_bytes()
    try:
        bad = bytearray(good)
        bad[-7] ^= 0x10
        st.write_bytes(bytes(bad))
        for r in use(work, out):
            assert r.returncode != 0
            assert "checksum" in r.stderr, r.stderr
    finally:
        st.write_bytes(good)


def test_a_changed_engram_seed_is_refused_naming_both(work, trained):
    out, ckpt = trained
    cfg_path = ckpt / "config.json"
    good = cfg_path.read_text()
    try:
        cfg = json.loads(good)
        cfg["engram"]["seed"] = 7
        cfg_path.write_text(json.dumps(cfg))
        for r in use(work, out):
            assert r.returncode != 0
            assert '"seed":7' in r.stderr and '"seed":0' in r.stderr, r.stderr
    finally:
        cfg_path.write_text(good)


OTHER_WORDS = "one two three four five six seven eight nine ten blue green gold".split()


@pytest.fixture(scope="module")
def other_tokenizer(work):
    """A tokenizer of another corpus, trained to the same vocabulary size as work/tok.json, and
    that corpus tokenized with it."""
    root = work / "other"
    write_corpus(root / "corpus", docs=6, lines=20, words_per_line=8, seed=9, words=OTHER_WORDS)
    training_inputs(root, root / "corpus", CONFIG)
    return root


def test_a_different_tokenizer_is_refused_against_token_files_and_checkpoints(
        work, trained, other_tokenizer, tmp_path):
    other = other_tokenizer
    # Token files made with another tokenizer than --tokenizer.
    r = run_limited("train", "--config", work / "cfg.json", "--tokenizer", other / "tok.json",
                    "--data", work / "data", "--out", tmp_path / "run", "--steps", 2, "--batch", 2,
                    "--seq", 16, "--threads", 1, "--eval-every", 2)
    assert r.returncode != 0
    assert "train.bin" in r.stderr and "digest" in r.stderr and "tok.json" in r.stderr, r.stderr
    # Token files of another tokenizer against a model trained with the first.
    out, _ = trained
    r = run_limited("eval", "--model", out, "--data", other / "data", "--threads", 1)
    assert r.returncode != 0
    assert "val.bin" in r.stderr and "digest" in r.stderr, r.stderr
    # Resuming a checkpoint with another tokenizer.
    r = run_limited("train", "--tokenizer", other / "tok.json", "--data", other / "data", "--out",
                    out, "--resume", "--steps", 2, "--batch", 2, "--seq", 16, "--threads", 1,
                    "--eval-every", 2)
    assert r.returncode != 0
    assert "digest" in r.stderr, r.stderr


def test_resume_with_another_engram_seed_names_both_values(work, trained):
    out, _ = trained
    cfg = copy.deepcopy(CONFIG)
    cfg["engram"]["seed"] = 5
    path = work / "reseeded.json"
    path.write_text(json.dumps(cfg))
    r = run_limited("train", "--config", path, "--tokenizer", work / "tok.json", "--data",
                    work / "data", "--out", out, "--resume", "--steps", 2, "--batch", 2, "--seq",
                    16, "--threads", 1, "--eval-every", 2)
    assert r.returncode != 0
    assert "engram.seed is 5 here but 0 in the checkpoint" in r.stderr, r.stderr


def test_a_swapped_checkpoint_tokenizer_is_refused(work, trained, other_tokenizer):
    out, ckpt = trained
    tok = ckpt / "tokenizer.json"
    good = tok.read_bytes()
    try:
        tok.write_bytes((other_tokenizer / "tok.json").read_bytes())
        for r in use(work, out):
            assert r.returncode != 0
            assert "tokenizer digest" in r.stderr and "trainer_state.json" in r.stderr, r.stderr
    finally:
        tok.write_bytes(good)
