"""Shared by the CLI tests: where the `engram` binary is, a checked way to run it, a small
synthetic corpus of random sentences over a fixed word list (one text file per document), and the
inputs of a training run made from a corpus."""
import json
import os
import random
import subprocess
from pathlib import Path

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
