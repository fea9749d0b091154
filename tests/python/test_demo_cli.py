"""`engram demo --quick` end to end on a small synthetic corpus with tiny model configs: it must
train the tokenizer, write token files, train both runs, print the comparison table, draw
losses.png, and generate the same tokens from resident tables and from the file tiers (checked on
the files it writes). A second run reuses every output; a bad corpus fails with a message naming
it.
"""
import csv
import json
import re

import pytest

import png_reader
from asset_helpers import requires
from cli_helpers import ENGRAM, engram, read_tokens, write_corpus


pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")

BASE = {"vocab_size": 300, "hidden_size": 32, "n_layers": 2, "n_heads": 2, "ffn_hidden": 48,
        "max_seq_len": 64}
ENGRAM_CFG = dict(BASE, engram={"layer_ids": [1], "engram_vocab_size": [61, 67],
                                "max_ngram_size": 3, "n_embed_per_ngram": 16,
                                "n_head_per_ngram": 2, "pad_id": 2, "seed": 0, "kernel_size": 4})


def demo(work, *extra):
    return engram("demo", "--quick", "--corpus", work / "corpus", "--out", work / "out",
                  "--baseline-config", work / "base.json", "--engram-config", work / "engram.json",
                  "--vocab-size", 300, "--threads", 1, *extra, check=False, timeout=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_cli")
    words = "the jury said in morning he was a cat sat on mat and dog ran to house".split()
    # Files 9 and 19 are held out.
    write_corpus(root / "corpus", docs=20, lines=40, words_per_line=9, seed=5, words=words)
    (root / "base.json").write_text(json.dumps(BASE))
    (root / "engram.json").write_text(json.dumps(ENGRAM_CFG))
    return root


def outputs(work):
    """Every file the demo wrote, with its bytes and modification time."""
    out = work / "out"
    return {p.relative_to(out): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def final_val_loss(run):
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, float(rows[-1]["val_loss"])


def test_quick_demo_end_to_end(work):
    r = demo(work)
    assert r.returncode == 0, r.stdout + r.stderr
    out = work / "out"
    # The tokenizer has the asked vocabulary; the data holds 18 train and 2 held-out documents
    # (files 9 and 19), each followed by one <|eos|>.
    vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert len(vocab) == 300
    train, _, sep = read_tokens(out / "data" / "train.bin")
    val, _, _ = read_tokens(out / "data" / "val.bin")
    assert (train == sep).sum() == 18 and (val == sep).sum() == 2
    # Both runs trained 4 steps on the same token budget and evaluated at the end.
    for run in ("baseline", "engram"):
        rows, loss = final_val_loss(out / run)
        assert [int(x["step"]) for x in rows] == [1, 2, 3, 4]
        assert int(rows[-1]["tokens"]) == 4 * 4 * 32
        assert 0 < loss < 10
        assert (out / run / (out / run / "latest").read_text().strip() / "model.safetensors").exists()
    # The comparison table's held-out losses and their difference are consistent numbers.
    losses = re.search(r"^held-out loss\s+([\d.]+)\s+([\d.]+)\s+([-+][\d.]+)$", r.stdout, re.M)
    assert losses, r.stdout
    base, eng, diff = map(float, losses.groups())
    assert abs((eng - base) - diff) < 2e-4
    w, h, _, _ = png_reader.decode((out / "losses.png").read_bytes())
    assert (w, h) == (960, 600)
    # Each prompt was continued (the demo itself fails when the tiers' tokens differ).
    for prompt in ("The jury said", "In the morning", "He was"):
        assert f"\n{prompt}" in r.stdout


def test_second_run_reuses_outputs(work):
    before = outputs(work)
    r = demo(work)
    assert r.returncode == 0, r.stdout + r.stderr
    after = outputs(work)
    # Nothing retrained: every file holds the same bytes, and the tokenizer, token files and
    # checkpoints were not even rewritten (the exported tables are, for the tier runs).
    assert set(after) == set(before)
    for p in before:
        assert after[p][0] == before[p][0], p
        if p.suffix == ".bin" or p.name == "tokenizer.json" or "checkpoint-" in str(p):
            assert after[p][1] == before[p][1], p


def test_tokenizer_smaller_than_the_model_is_refused(work, tmp_path):
    r = engram("demo", "--quick", "--corpus", work / "corpus", "--out", tmp_path / "o",
               "--baseline-config", work / "base.json", "--engram-config", work / "engram.json",
               "--vocab-size", 290, check=False)
    assert r.returncode == 1
    assert "has 290 ids but" in r.stderr and "vocab_size 300" in r.stderr, r.stderr


def test_bad_corpus_is_an_error(work, tmp_path):
    r = engram("demo", "--quick", "--corpus", tmp_path / "none", "--out", tmp_path / "out",
               check=False)
    assert r.returncode == 1 and "none: no such file or folder" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(12):
        (bad / f"d{i:02d}.txt").write_bytes(b"fine text\n" if i else b"ok \xff\xfe broken\n")
    r = engram("demo", "--quick", "--corpus", bad, "--out", tmp_path / "out2", check=False)
    assert r.returncode == 1 and "d00.txt" in r.stderr and "UTF-8" in r.stderr, r.stderr


def test_missing_config_fails_before_any_work(work, tmp_path):
    r = engram("demo", "--quick", "--corpus", work / "corpus", "--out", tmp_path / "out",
               "--baseline-config", work / "base.json", "--engram-config", tmp_path / "nope.json",
               check=False)
    assert r.returncode == 1 and "nope.json: cannot open" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
