"""Nothing is lost or left half-made by a command that fails or is given a folder in use.

`engram train` into a folder that holds a run is refused unless --resume or --overwrite says what
to do with it; a failed train or tokenize removes the folders it created; a re-tokenized folder
gets its train.bin and val.bin replaced together, never a new one beside an old one.
"""
import hashlib

import pytest

from asset_helpers import requires
from cli_helpers import ENGRAM, engram, write_corpus, training_inputs


pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")

CONFIG = {
    "vocab_size": 320, "hidden_size": 16, "n_layers": 1, "n_heads": 2, "ffn_hidden": 16,
    "max_seq_len": 16,
    "engram": {"layer_ids": [0], "engram_vocab_size": [61, 67], "max_ngram_size": 3,
               "n_embed_per_ngram": 8, "n_head_per_ngram": 2, "pad_id": 2, "seed": 0,
               "kernel_size": 4},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("nothing_lost")
    write_corpus(root / "corpus", docs=12, lines=10, words_per_line=6, seed=5)
    training_inputs(root, root / "corpus", CONFIG)
    return root


def train_args(work, out, *extra, data=None, config=None, steps=2):
    return ["train", "--config", config or work / "cfg.json", "--tokenizer", work / "tok.json",
            "--data", data or work / "data", "--out", out, "--steps", steps, "--batch", 2,
            "--seq", 8, "--threads", 1, "--eval-windows", 2, *extra]


def snapshot(folder):
    """Every file under folder with the digest of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_refuses_a_finished_run_without_resume_or_overwrite(work):
    out = work / "run"
    engram(*train_args(work, out))
    before = snapshot(out)
    assert "metrics.csv" in before and any(k.startswith("checkpoint-") for k in before)
    r = engram(*train_args(work, out, "--seed", 7), check=False)
    assert r.returncode != 0
    assert str(out) in r.stderr and "--resume" in r.stderr and "--overwrite" in r.stderr
    assert snapshot(out) == before


def test_overwrite_starts_the_run_over(work):
    out = work / "run_over"
    engram(*train_args(work, out, steps=3))
    old = (out / "latest").read_text().strip()
    engram(*train_args(work, out, "--overwrite"))
    new = (out / "latest").read_text().strip()
    assert new != old and new.endswith("2")
    assert [p.name for p in out.glob("checkpoint-*")] == [new]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


def test_resume_and_overwrite_exclude_each_other(work):
    r = engram(*train_args(work, work / "never", "--resume", "--overwrite"), check=False)
    assert r.returncode != 0 and not (work / "never").exists()


def test_failed_train_leaves_no_new_folder(work):
    # Text inputs are tokenized into OUT/data before the (missing) config is read.
    out = work / "new" / "run"
    r = engram(*train_args(work, out, data=work / "corpus", config=work / "missing.json"),
               check=False)
    assert r.returncode != 0
    assert not (work / "new").exists()


def test_failed_tokenize_leaves_no_new_folder(work):
    out = work / "tok_new" / "data"
    r = engram("data", "tokenize", "--tokenizer", work / "tok.json", "--separator", "<|nope|>",
               "--input", work / "corpus", "--output", out, check=False)
    assert r.returncode != 0
    bad = work / "bad_corpus"
    write_corpus(bad, docs=12, lines=3, words_per_line=4, seed=9)
    (bad / "doc09.txt").write_bytes(b"not \xff utf-8")
    r = engram("data", "tokenize", "--tokenizer", work / "tok.json", "--input", bad,
               "--output", out, check=False)
    assert r.returncode != 0, r.stdout
    assert not (work / "tok_new").exists()


def test_retokenize_replaces_both_splits_together(work):
    out = work / "retok"
    engram("data", "tokenize", "--tokenizer", work / "tok.json", "--input", work / "corpus",
           "--output", out)
    before = snapshot(out)
    assert sorted(before) == ["train.bin", "val.bin"]
    # The file rule tokenizes train.bin first; the held-out file 9 then fails to decode.
    bad = work / "bad_corpus2"
    write_corpus(bad, docs=12, lines=3, words_per_line=4, seed=9)
    (bad / "doc09.txt").write_bytes(b"not \xff utf-8")
    r = engram("data", "tokenize", "--tokenizer", work / "tok.json", "--input", bad,
               "--output", out, check=False)
    assert r.returncode != 0
    assert snapshot(out) == before
    # A different split succeeds and replaces both files.
    engram("data", "tokenize", "--tokenizer", work / "tok.json", "--input", work / "corpus",
           "--output", out, "--val-fraction", "0.3")
    after = snapshot(out)
    assert sorted(after) == ["train.bin", "val.bin"]
    assert after["train.bin"] != before["train.bin"] and after["val.bin"] != before["val.bin"]
