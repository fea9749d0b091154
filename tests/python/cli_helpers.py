"""Shared by the CLI tests: where the `engram` binary is, a checked way to run it, a small
synthetic corpus of random sentences over a fixed word list (one text file per document), the
inputs of a training run made from a corpus, and a reader of token files."""
import json
import os
import random
import subprocess
from pathlib import Path

import numpy as np

SRC = Path(os.environ.get("ENGRAM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("ENGRAM_BINARY_DIR", SRC / "build"))
ENGRAM = BIN / "engram"

WORDS = "the cat sat on a mat and dog ran to big red house we saw bird over tree".split()


def engram(*args, check=True, env=None, timeout=None):
    """Runs `engram ARGS...` (for at most timeout seconds, if given); with check, a non-zero exit
    fails the test with both streams."""
    r = subprocess.run([str(ENGRAM), *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"engram {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def write_corpus(folder, docs, lines, words_per_line, seed, words=WORDS):
    """Writes docs files folder/docNN.txt of `lines` random sentences each; returns folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(docs):
        text = [" ".join(rng.choice(words) for _ in range(words_per_line)) + "."
                for _ in range(lines)]
        (folder / f"doc{i:02d}.txt").write_text("\n".join(text), encoding="utf-8")
    return folder


def training_inputs(root, corpus, config, vocab_size=300):
    """Trains root/tok.json on every file of corpus, tokenizes it into root/data and writes config
    to root/cfg.json: what `engram train` needs. Returns root."""
    root = Path(root)
    engram("tokenizer", "train", "--input", corpus, "--split", "all", "--vocab-size", vocab_size,
           "--output", root / "tok.json")
    engram("data", "tokenize", "--tokenizer", root / "tok.json", "--input", corpus,
           "--output", root / "data")
    (root / "cfg.json").write_text(json.dumps(config))
    return root


def write_text_file(path, lines, words_per_line, seed, words=WORDS):
    """Writes one UTF-8 text file of `lines` random sentences (what a new user brings); returns
    path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(words_per_line)) + "."
                              for _ in range(lines)), encoding="utf-8")
    return path


def read_tokens(path):
    """The ids of a token file (format in engram/token_file.h) after checking its header and length:
    (ids as int64, vocab size, separator id)."""
    raw = Path(path).read_bytes()
    assert raw[:8] == b"ENGRAMTK"
    version, width, count, vocab, sep, _ = np.frombuffer(
        raw[8:40], dtype="<u4,<u4,<u8,<u4,<u4,<u8")[0]
    assert version in (1, 2) and width in (2, 4)  # 2: records its tokenizer at byte 40
    ids = np.frombuffer(raw[64:], dtype="<u2" if width == 2 else "<u4")
    assert len(ids) == count
    return ids.astype(np.int64), int(vocab), int(sep)


# A small model with one Engram layer, for the tests that train.
SMALL_ENGRAM_CONFIG = {
    "vocab_size": 320, "hidden_size": 32, "n_layers": 2, "n_heads": 2, "ffn_hidden": 48,
    "max_seq_len": 32,
    "engram": {"layer_ids": [1], "engram_vocab_size": [61, 67], "max_ngram_size": 3,
               "n_embed_per_ngram": 16, "n_head_per_ngram": 2, "pad_id": 2, "seed": 0,
               "kernel_size": 4},
}


# A tiny model with two Engram layers, for the tests that generate from a trained model.
TINY_ENGRAM_CONFIG = {
    "vocab_size": 320, "hidden_size": 32, "n_layers": 3, "n_heads": 2, "ffn_hidden": 48,
    "max_seq_len": 48,
    "engram": {"layer_ids": [0, 2], "engram_vocab_size": [61, 67], "max_ngram_size": 3,
               "n_embed_per_ngram": 16, "n_head_per_ngram": 2, "pad_id": 2, "seed": 0,
               "kernel_size": 4},
}


def train_tiny_engram(root, steps, corpus_seed):
    """Trains TINY_ENGRAM_CONFIG for `steps` steps on a generated corpus into root/run."""
    write_corpus(root / "corpus", docs=10, lines=20, words_per_line=8, seed=corpus_seed)
    training_inputs(root, root / "corpus", TINY_ENGRAM_CONFIG)
    engram("train", "--config", root / "cfg.json", "--tokenizer", root / "tok.json",
           "--data", root / "data", "--out", root / "run", "--steps", steps, "--batch", 2,
           "--seq", 16, "--lr", "3e-3", "--warmup", 1, "--seed", 1, "--threads", 1,
           "--eval-every", steps, "--eval-windows", 0)
    return root / "run"
