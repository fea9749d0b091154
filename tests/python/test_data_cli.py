"""End-to-end tests of `engram tokenizer train` and `engram data ...` against HF tokenizers.

A tokenizer is trained by the CLI on the Brown train split; HF tokenizers (Node binding) loads the
written tokenizer.json and must encode the held-out documents to exactly the ids that engram wrote
into val.bin (documents separated by <|eos|>), and decode them back to the text. Bad corpora must
fail with a message naming the problem.
"""
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asset_helpers import missing, requires
from cli_helpers import write_corpus, write_text_file

SRC = Path(os.environ.get("ENGRAM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("ENGRAM_BINARY_DIR", SRC / "build"))
ENGRAM = BIN / "engram"
BROWN = SRC / "assets" / "brown"
NODE_SCRIPT = SRC / "scripts" / "node" / "encode_jsonl.js"
HF_BINDING = SRC / "scripts" / "node" / "node_modules" / "@anush008" / "tokenizers"

need_engram = requires(ENGRAM.exists(), f"{ENGRAM} not built")
need_hf = requires(shutil.which("node") is not None and HF_BINDING.exists(),
                   "node or HF tokenizers' Node binding missing")
need_brown = requires((BROWN / "ca01").exists(), "assets/brown not fetched")


def engram(*args, check=True):
    r = subprocess.run([str(ENGRAM), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"engram {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def read_token_file(path, verify_checksum=True):
    raw = Path(path).read_bytes()
    assert raw[:8] == b"ENGRAMTK"
    version, width, count, vocab, sep, checksum = np.frombuffer(raw[8:40], dtype="<u4,<u4,<u8,<u4,<u4,<u8")[0]
    assert version in (1, 2) and width in (2, 4)  # 2: records its tokenizer at byte 40
    ids = np.frombuffer(raw[64:], dtype="<u2" if width == 2 else "<u4")
    assert len(ids) == count
    if verify_checksum:  # FNV-1a 64 of the payload bytes (a slow loop: small files only)
        h = 0xcbf29ce484222325
        for b in raw[64:]:
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        assert h == checksum
    return ids.astype(np.int64), int(vocab), int(sep)


def hf_encode(tokenizer, texts, tmp_path):
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    r = subprocess.run(["node", str(NODE_SCRIPT), str(tokenizer), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def brown_tokenizer(tmp_path_factory):
    if not ENGRAM.exists() or not (BROWN / "ca01").exists():
        missing("needs the engram binary and assets/brown")
    out = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    engram("tokenizer", "train", "--brown", BROWN, "--vocab-size", 2048, "--output", out)
    return out


@need_engram
@need_hf
@need_brown
def test_hf_loads_and_matches_val_bin(brown_tokenizer, tmp_path):
    cfg = json.loads(brown_tokenizer.read_text(encoding="utf-8"))
    assert cfg["model"]["type"] == "BPE" and len(cfg["model"]["vocab"]) == 2048
    assert [(t["id"], t["content"], t["special"]) for t in cfg["added_tokens"]] == [
        (0, "<|bos|>", True), (1, "<|eos|>", True), (2, "<|pad|>", True)]

    engram("data", "tokenize", "--tokenizer", brown_tokenizer, "--brown", BROWN, "--output", tmp_path / "bin")
    val, vocab, sep = read_token_file(tmp_path / "bin" / "val.bin")
    train, _, _ = read_token_file(tmp_path / "bin" / "train.bin", verify_checksum=False)
    assert vocab == 2048 and sep == 1
    assert (train == 1).sum() == 450 and (val == 1).sum() == 50

    docs = [json.loads(line) for line in
            engram("data", "text", "--brown", BROWN, "--split", "val", "--jsonl").stdout.splitlines()]
    assert len(docs) == 50
    hf = hf_encode(brown_tokenizer, docs, tmp_path)
    want = np.concatenate([np.array(h["ids"] + [1], dtype=np.int64) for h in hf])
    assert len(want) == len(val)
    assert np.array_equal(want, val)
    assert [h["decoded"] for h in hf] == docs
    engram("data", "info", tmp_path / "bin" / "val.bin")  # checks the payload
    raw = bytearray((tmp_path / "bin" / "val.bin").read_bytes())
    raw[100] ^= 1
    (tmp_path / "flipped.bin").write_bytes(bytes(raw))
    r = engram("data", "info", tmp_path / "flipped.bin", check=False)
    assert r.returncode == 1 and "checksum" in r.stderr


@need_engram
@need_hf
@need_brown
def test_hf_matches_on_unusual_text(brown_tokenizer, tmp_path):
    texts = [
        "Tabs\tand  double  spaces, CRLF\r\nlines\n\n\nand trailing spaces   \n",
        "Numbers 1234567 3.14159 and $1,000,000; contractions: don't, I'LL, she'd, we've.",
        "Unicode: caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F600\U0001F44D \u0391\u03b8\u03ae\u03bd\u03b1 \u0928\u092e\u0938\u094d\u0924\u0947",
        "Specials inline: a<|eos|>b <|bos|> <|pad|>c and a fake <|eoz|>",
        "   leading spaces and \u00a0no-break\u2003em space",
    ]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, t in enumerate(texts):
        (corpus / f"doc{i}.txt").write_text(t, encoding="utf-8", newline="")
    engram("data", "tokenize", "--tokenizer", brown_tokenizer, "--input", corpus, "--output", tmp_path / "bin")
    # 5 files: the held-out part is the tail of the one token stream
    train, _, _ = read_token_file(tmp_path / "bin" / "train.bin")
    val, _, _ = read_token_file(tmp_path / "bin" / "val.bin")
    ids = np.concatenate([train, val])
    hf = hf_encode(brown_tokenizer, texts, tmp_path)
    want = np.concatenate([np.array(h["ids"] + [1], dtype=np.int64) for h in hf])
    assert np.array_equal(want, ids)
    assert [h["decoded"] for h in hf] == texts


@need_engram
def test_cli_training_on_plain_files(tmp_path):
    corpus = tmp_path / "c"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("low lower lowest " * 50, encoding="utf-8")
    (corpus / "sub" / "b.txt").write_text("new newer newest " * 50, encoding="utf-8")
    out = tmp_path / "t.json"
    engram("tokenizer", "train", "--input", corpus, "--vocab-size", 300, "--output", out)
    vocab = json.loads(out.read_text(encoding="utf-8"))["model"]["vocab"]
    assert "\u0120lowest" in vocab and "\u0120newest" in vocab


@need_engram
def test_bad_corpora_fail_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_bytes(b"")
    r = engram("tokenizer", "train", "--input", empty, "--vocab-size", 300, "--output", tmp_path / "t.json",
               check=False)
    assert r.returncode == 1 and "empty corpus" in r.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.txt").write_bytes(b"fine text\nthen \xc3\x28 broken")
    r = engram("tokenizer", "train", "--input", bad, "--vocab-size", 300, "--output", tmp_path / "t.json",
               check=False)
    assert r.returncode == 1
    assert f"{bad / 'x.txt'}: invalid UTF-8 at byte offset 15" in r.stderr

    r = engram("data", "info", bad / "x.txt", check=False)
    assert r.returncode == 1 and "truncated token file: 24 bytes" in r.stderr


def tokenize(tok, inputs, out, *extra, check=True):
    return engram("data", "tokenize", "--tokenizer", tok, *[a for p in inputs for a in ("--input", p)],
                  "--output", out, *extra, check=check)


@need_engram
def test_one_text_file_yields_both_splits(tmp_path):
    """A new user's first try: one text file, no other flag. val.bin is the last 10% of the token
    stream (rounded up), train.bin the rest; --val-fraction moves the cut, not the stream."""
    my = write_text_file(tmp_path / "my.txt", lines=300, words_per_line=10, seed=5)
    tok = tmp_path / "tok.json"
    engram("tokenizer", "train", "--input", my, "--vocab-size", 300, "--output", tok)
    tokenize(tok, [my], tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["train.bin", "val.bin"]
    train, vocab, sep = read_token_file(tmp_path / "d" / "train.bin")
    val, _, _ = read_token_file(tmp_path / "d" / "val.bin")
    n = len(train) + len(val)
    assert vocab == 300 and n > 1000
    assert len(val) == math.ceil(0.1 * n)
    assert (val == sep).sum() == 1 and val[-1] == sep and (train == sep).sum() == 0

    tokenize(tok, [my], tmp_path / "q", "--val-fraction", 0.25)
    train_q, _, _ = read_token_file(tmp_path / "q" / "train.bin")
    val_q, _, _ = read_token_file(tmp_path / "q" / "val.bin")
    assert len(val_q) == math.ceil(0.25 * n)
    assert np.array_equal(np.concatenate([train_q, val_q]), np.concatenate([train, val]))

    for bad in (0, 1, 1.5, -0.1):
        r = tokenize(tok, [my], tmp_path / f"bad{bad}", "--val-fraction", bad, check=False)
        assert r.returncode == 1 and "val fraction" in r.stderr
        assert not (tmp_path / f"bad{bad}" / "train.bin").exists()


@need_engram
def test_ten_files_use_the_file_split_unless_a_fraction_is_given(tmp_path):
    """From 10 files on, every 10th file of the sorted list is held out (as for Brown); an explicit
    --val-fraction takes the tail of the stream instead."""
    corpus = write_corpus(tmp_path / "c", docs=10, lines=20, words_per_line=8, seed=2)
    tok = tmp_path / "tok.json"
    engram("tokenizer", "train", "--input", corpus, "--split", "all", "--vocab-size", 300,
           "--output", tok)
    tokenize(tok, [corpus], tmp_path / "files")
    train, _, sep = read_token_file(tmp_path / "files" / "train.bin")
    val, _, _ = read_token_file(tmp_path / "files" / "val.bin")
    assert (train == sep).sum() == 9 and (val == sep).sum() == 1
    # val.bin is exactly doc09.txt on its own
    tokenize(tok, [corpus / "doc09.txt"], tmp_path / "doc09", "--val-fraction", 0.5)
    a, _, _ = read_token_file(tmp_path / "doc09" / "train.bin")
    b, _, _ = read_token_file(tmp_path / "doc09" / "val.bin")
    assert np.array_equal(np.concatenate([a, b]), val)

    tokenize(tok, [corpus], tmp_path / "frac", "--val-fraction", 0.1)
    train_f, _, _ = read_token_file(tmp_path / "frac" / "train.bin")
    val_f, _, _ = read_token_file(tmp_path / "frac" / "val.bin")
    n = len(train_f) + len(val_f)
    assert n == len(train) + len(val) and len(val_f) == math.ceil(0.1 * n)
    # the stream is the files in sorted order: the tail is the end of doc09.txt
    assert np.array_equal(val_f, val[-len(val_f):])
