"""End-to-end tests of `engram train`, `engram eval` and `engram generate` on a tiny corpus.

A tokenizer is trained and a synthetic corpus tokenized by the CLI; a tiny Engram model is trained
for a few steps; eval must reproduce the held-out loss the trainer logged (same windows), generate
must stream text and be reproducible for a seed, a resumed run must log the same losses as an
uninterrupted one, and bad inputs must fail with a message and leave the last checkpoint intact.
"""
import csv
import json
import math

import pytest

import numpy as np

from asset_helpers import requires
from cli_helpers import ENGRAM, SMALL_ENGRAM_CONFIG, engram, read_tokens, write_corpus, write_text_file, training_inputs


pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")

CONFIG = SMALL_ENGRAM_CONFIG


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    # Files 9 and 19 are the held-out split.
    write_corpus(root / "corpus", docs=20, lines=30, words_per_line=8, seed=3)
    training_inputs(root, root / "corpus", CONFIG)
    return root


def train_args(work, out, *extra, seq=16):
    return ["train", "--config", work / "cfg.json", "--tokenizer", work / "tok.json",
            "--data", work / "data", "--out", out, "--steps", 12, "--batch", 3, "--seq", seq,
            "--lr", "3e-3", "--warmup", 2, "--seed", 1, "--threads", 1, "--eval-every", 4,
            "--eval-windows", 0, *extra]


def metrics(out):
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_eval_generate(work):
    out = work / "run"
    engram(*train_args(work, out))
    rows = metrics(out)
    assert [int(x["step"]) for x in rows] == list(range(1, 13))
    assert [x["step"] for x in rows if x["val_loss"]] == ["4", "8", "12"]
    assert int(rows[-1]["tokens"]) == 12 * 3 * 16
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]) - 0.5
    # lr: linear warm-up over 2 steps, then cosine down to 10% of the peak at the last step.
    lrs = [float(x["lr"]) for x in rows]
    assert lrs[0] == pytest.approx(1.5e-3) and lrs[1] == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    ckpt = out / (out / "latest").read_text().strip()
    assert json.loads((ckpt / "config.json").read_text())["engram"]["layer_ids"] == [1]
    assert (ckpt / "tokenizer.json").read_bytes() == (work / "tok.json").read_bytes()

    # eval over every val window with the trainer's T: the loss the trainer logged last.
    e = engram("eval", "--model", out, "--data", work / "data", "--seq", 16, "--batch", 3,
               "--threads", 1)
    vals = dict(line.split(": ") for line in e.stdout.strip().splitlines())
    assert float(vals["val_loss"]) == pytest.approx(float(rows[-1]["val_loss"]), abs=1e-5)
    assert float(vals["perplexity"]) == pytest.approx(math.exp(float(vals["val_loss"])), rel=1e-4)
    # the model directory and the token file directly work too
    e2 = engram("eval", "--model", ckpt, "--data", work / "data" / "val.bin", "--seq", 16,
                "--batch", 3, "--threads", 1)
    assert e2.stdout == e.stdout

    g = engram("generate", "--model", out, "--prompt", "the cat", "--max-tokens", 12,
               "--temperature", 0.8, "--top-k", 20, "--top-p", 0.9, "--seed", 4)
    assert g.stdout.strip()
    g2 = engram("generate", "--model", ckpt, "--prompt", "the cat", "--max-tokens", 12,
                "--temperature", 0.8, "--top-k", 20, "--top-p", 0.9, "--seed", 4)
    assert g2.stdout == g.stdout
    # greedy decoding past max_seq_len (32 positions) stops there, the same way every time
    greedy = engram("generate", "--model", out, "--prompt", "the cat", "--max-tokens", 200,
                    "--temperature", 0)
    assert greedy.stdout.strip()
    assert engram("generate", "--model", ckpt, "--prompt", "the cat", "--max-tokens", 200,
                  "--temperature", 0).stdout == greedy.stdout


def test_resume_logs_the_same_losses(work):
    straight, resumed = work / "straight", work / "resumed"
    engram(*train_args(work, straight))
    engram(*train_args(work, resumed, "--stop-after", 5))
    assert (resumed / "latest").read_text().strip() == "checkpoint-00000005"
    engram(*train_args(work, resumed, "--resume"))
    cols = ("step", "lr", "train_loss", "val_loss", "tokens")
    a = [[row[c] for c in cols] for row in metrics(straight)]
    b = [[row[c] for c in cols] for row in metrics(resumed)]
    assert a == b
    name = "checkpoint-00000012/model.safetensors"
    assert (straight / name).read_bytes() == (resumed / name).read_bytes()


def test_bad_inputs(work):
    out = work / "bad"
    r = engram(*train_args(work, out, seq=64), check=False)  # max_seq_len is 32
    assert r.returncode == 1 and "max_seq_len" in r.stderr and not out.exists()
    r = engram(*train_args(work, out, "--resume"), check=False)
    assert r.returncode == 1 and "no checkpoint" in r.stderr

    engram(*train_args(work, out, "--stop-after", 4))
    ckpt = out / "checkpoint-00000004"
    good = (ckpt / "model.safetensors").read_bytes()
    # a truncated model file: refused by its checksum, the checkpoint stays as it is
    (ckpt / "model.safetensors").write_bytes(good[:-8])
    r = engram(*train_args(work, out, "--resume"), check=False)
    assert r.returncode == 1 and "model.safetensors" in r.stderr
    (ckpt / "model.safetensors").write_bytes(good)
    # a config.json that contradicts the weights
    wide = dict(CONFIG, hidden_size=64)
    saved_cfg = (ckpt / "config.json").read_text()
    (ckpt / "config.json").write_text(json.dumps(wide))
    r = engram("eval", "--model", out, "--data", work / "data", "--seq", 16, check=False)
    assert r.returncode == 1 and "shape" in r.stderr
    (ckpt / "config.json").write_text(saved_cfg)
    r = engram("eval", "--model", out, "--data", work / "data", "--seq", 64, check=False)
    assert r.returncode == 1 and "max_seq_len" in r.stderr
    r = engram("eval", "--model", work / "corpus", "--data", work / "data", check=False)
    assert r.returncode == 1 and "latest" in r.stderr
    long_prompt = " ".join(["cat"] * 40)
    r = engram("generate", "--model", out, "--prompt", long_prompt, check=False)
    assert r.returncode == 1 and "max_seq_len" in r.stderr
    # after all that, the checkpoint still resumes
    engram(*train_args(work, out, "--resume"))
    assert (out / "latest").read_text().strip() == "checkpoint-00000012"


def test_train_on_one_text_file_with_no_other_flag(tmp_path):
    """What a new user tries first: a tokenizer trained on their file, then `engram train` with
    --config, --tokenizer, --data my.txt and --out only. The file is tokenized into OUT/data with
    the last 10% of its tokens held out, and the default run (100 steps, B 8, T 128) completes."""
    my = write_text_file(tmp_path / "my.txt", lines=800, words_per_line=10, seed=7)
    tok = tmp_path / "tok.json"
    engram("tokenizer", "train", "--input", my, "--vocab-size", 300, "--output", tok)
    cfg = dict(CONFIG, hidden_size=16, ffn_hidden=16, n_layers=1, max_seq_len=128,
               engram=dict(CONFIG["engram"], layer_ids=[0]))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    engram("train", "--config", tmp_path / "cfg.json", "--tokenizer", tok, "--data", my,
           "--out", out)
    train, vocab, sep = read_tokens(out / "data" / "train.bin")
    val, _, _ = read_tokens(out / "data" / "val.bin")
    n = len(train) + len(val)
    assert vocab == 300 and len(val) == math.ceil(0.1 * n) and val[-1] == sep
    # the same split `engram data tokenize` writes
    engram("data", "tokenize", "--tokenizer", tok, "--input", my, "--output", tmp_path / "d")
    assert (tmp_path / "d" / "val.bin").read_bytes() == (out / "data" / "val.bin").read_bytes()
    rows = metrics(out)
    assert [int(x["step"]) for x in rows] == list(range(1, 101))
    assert int(rows[-1]["tokens"]) == 100 * 8 * 128
    assert [x["step"] for x in rows if x["val_loss"]] == ["100"]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]) - 1
    assert (out / "latest").read_text().strip() == "checkpoint-00000100"
    assert (out / "checkpoint-00000100" / "tokenizer.json").read_bytes() == tok.read_bytes()


def test_train_on_a_text_folder_and_files(work):
    """A folder of 20 text files is tokenized with the file split (the same train.bin and val.bin
    as `engram data tokenize`); a list of files too; --val-fraction moves the held-out tail, and is
    refused for a token folder."""
    out = work / "from_text"
    engram("train", "--config", work / "cfg.json", "--tokenizer", work / "tok.json", "--data",
           work / "corpus", "--out", out, "--steps", 2, "--batch", 2, "--seq", 16, "--threads", 1)
    for name in ("train.bin", "val.bin"):
        assert (out / "data" / name).read_bytes() == (work / "data" / name).read_bytes()
    files = sorted((work / "corpus").iterdir())[:3]
    out = work / "from_files"
    args = ["train", "--config", work / "cfg.json", "--tokenizer", work / "tok.json", "--data",
            *files, "--out", out, "--steps", 2, "--batch", 2, "--seq", 16, "--threads", 1]
    engram(*args, "--val-fraction", 0.3)
    train, _, sep = read_tokens(out / "data" / "train.bin")
    val, _, _ = read_tokens(out / "data" / "val.bin")
    assert (np.concatenate([train, val]) == sep).sum() == 3
    assert len(val) == math.ceil(0.3 * (len(train) + len(val)))
    r = engram("train", "--config", work / "cfg.json", "--tokenizer", work / "tok.json", "--data",
               work / "data", "--out", work / "nofrac", "--val-fraction", 0.3, check=False)
    assert r.returncode == 1 and "--val-fraction" in r.stderr and not (work / "nofrac").exists()
