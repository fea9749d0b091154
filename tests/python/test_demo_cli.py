"""`engram demo --quick` end to end on a small synthetic corpus with tiny model configs: it must
train the tokenizer, write token files, train both runs, print the comparison table, draw
losses.png, and generate the same tokens from resident tables and from the file tiers. A second run
reuses every output; a bad corpus fails with a message naming it.
"""
import json
import re

import pytest

import png_reader
from cli_helpers import ENGRAM, engram, write_corpus


pytestmark = pytest.mark.skipif(not ENGRAM.exists(), reason=f"{ENGRAM} not built")

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


def test_quick_demo_end_to_end(work):
    r = demo(work)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "tokenizer: " in out and "trained on 18 documents" in out
    assert re.search(r"data: val split, 2 documents -> \d+ tokens", out)
    for row in ("parameters", "train tokens/s", "held-out loss", "held-out perplexity"):
        assert re.search(rf"^{row}\s", out, re.M), row
    losses = re.search(r"^held-out loss\s+([\d.]+)\s+([\d.]+)\s+([-+][\d.]+)$", out, re.M)
    assert losses, out
    base, eng, diff = map(float, losses.groups())
    assert abs((eng - base) - diff) < 2e-4
    tokens = re.search(r"^train tokens\s+(\d+)\s+(\d+)$", out, re.M)
    assert tokens and tokens.group(1) == tokens.group(2) == str(4 * 4 * 32)  # same budget
    # Both runs kept their metrics, and the figure is a valid PNG.
    for run in ("baseline", "engram"):
        assert (work / "out" / run / "metrics.csv").read_text().count("\n") == 5
    w, h, bpp, rows = png_reader.decode((work / "out" / "losses.png").read_bytes())
    assert (w, h) == (960, 600)
    assert png_reader.count(rows, bpp, (31, 119, 180)) > 0  # baseline
    assert png_reader.count(rows, bpp, (230, 110, 0)) > 0   # engram
    # Three prompts, each generated on every tier (resident, file O_DIRECT, file page cache)
    # with the same tokens.
    for prompt in ("The jury said", "In the morning", "He was"):
        assert f"\n{prompt}" in out
    assert len(re.findall(r"^  resident\s+\d+ tokens,\s+\d+ tokens/s \(100\.0% of resident\)$",
                          out, re.M)) == 3
    assert len(re.findall(r"^  file\(io_uring.*% of resident\), waited", out, re.M)) == 6
    summary = out[out.index("decode over the 3 prompts (the same tokens on every tier"):]
    assert re.search(r"^  resident\s+\d+ tokens/s\s+100\.0% of resident$", summary, re.M)
    assert len(re.findall(r"^  file\(.*\s\d+ tokens/s\s+[\d.]+% of resident$", summary, re.M)) == 2


def test_second_run_reuses_outputs(work):
    r = demo(work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(300 ids, kept)" in r.stdout
    assert r.stdout.count(", kept)") == 3  # tokenizer, train.bin, val.bin
    assert r.stdout.count("resuming its checkpoint") == 2
    assert "step 1/" not in r.stderr  # nothing retrained


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
