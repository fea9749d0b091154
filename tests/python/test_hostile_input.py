"""Hostile and careless inputs: deeply nested JSON, inputs that are not regular files and bytes
that are not UTF-8 are refused with a message naming the file, quickly and without a crash, by
the CLI and by Python. Every CLI run has a timeout, so a hang fails the test instead of blocking
the suite."""
import json
import os
import struct
import subprocess
import sys

import pytest

import engram
from cli_helpers import SRC, engram as run_engram, write_corpus

DEMO = SRC / "configs" / "engram_demo.json"
DEPTH = 100_000
TIMEOUT = 60  # seconds; the refusals take milliseconds, a hang would take forever


def nested(depth=DEPTH):
    return "[" * depth + "]" * depth


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A small tokenizer.json trained on a synthetic corpus."""
    root = tmp_path_factory.mktemp("tok")
    corpus = write_corpus(root / "corpus", docs=2, lines=20, words_per_line=8, seed=1)
    run_engram("tokenizer", "train", "--input", corpus, "--split", "all", "--vocab-size", 300,
               "--output", root / "tok.json", timeout=TIMEOUT)
    return root / "tok.json"


@pytest.fixture
def ids_file(tmp_path):
    p = tmp_path / "ids.json"
    p.write_text(json.dumps({"input_ids": [[1, 2, 3]]}))
    return p


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "in.txt"
    p.write_text("the cat sat on a mat")
    return p


def refused(*args):
    """Runs engram ARGS, expecting a clean refusal (non-zero exit, not a signal); returns stderr."""
    r = run_engram(*args, check=False, timeout=TIMEOUT)
    assert r.returncode > 0, f"engram {args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert len(r.stderr) < 2000
    return r.stderr


# ---- deeply nested JSON --------------------------------------------------------------------

@pytest.mark.parametrize("wrap", ['{"input_ids": %s}', "%s", '{"input_ids": [[%s]]}'])
def test_deep_ids_file_is_refused(tmp_path, tokenizer, wrap):
    deep = tmp_path / "deep.json"
    deep.write_text(wrap % nested())
    err = refused("decode", "--tokenizer", tokenizer, "--input", deep, "--output",
                  tmp_path / "out.txt")
    assert f"{deep}: JSON nests deeper than 64 levels" in err
    err = refused("hash", "--config", DEMO, "--tokenizer", tokenizer, "--input", deep,
                  "--output", tmp_path / "out.json")
    assert f"{deep}: JSON nests deeper than 64 levels" in err


def test_deep_tokenizer_json_is_refused(tmp_path, text_file, ids_file):
    deep = tmp_path / "tokenizer.json"
    deep.write_text('{"model": %s}' % nested())
    err = refused("encode", "--tokenizer", deep, "--input", text_file, "--output",
                  tmp_path / "ids.json")
    assert f"{deep}: JSON nests deeper than 64 levels" in err
    with pytest.raises(ValueError, match="nests deeper than 64 levels"):
        engram.Tokenizer(str(deep))


def test_deep_config_json_is_refused(tmp_path, tokenizer, ids_file):
    deep = tmp_path / "config.json"
    deep.write_text('{"layer_ids": %s}' % nested())
    err = refused("hash", "--config", deep, "--tokenizer", tokenizer, "--input", ids_file,
                  "--output", tmp_path / "out.json")
    assert f"{deep}: JSON nests deeper than 64 levels" in err


def safetensors_bytes(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


def test_deep_safetensors_header_is_refused(tmp_path):
    p = tmp_path / "deep.safetensors"
    p.write_bytes(safetensors_bytes(('{"__metadata__": %s}' % nested()).encode()))
    with pytest.raises(ValueError, match=r"deep\.safetensors: header: JSON nests deeper than 64"):
        engram.safetensors_load(str(p))


# ---- bytes that are not UTF-8 ----------------------------------------------------------------

def test_invalid_utf8_in_a_shard_header_names_the_file_and_offset(tmp_path):
    p = tmp_path / "bad.safetensors"
    header = b'{"x\xff": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    p.write_bytes(safetensors_bytes(header) + b"\0" * 4)
    with pytest.raises(ValueError) as e:
        engram.safetensors_load(str(p))
    msg = str(e.value)
    # The invalid byte is at file offset 8 + 3 = 11; nlohmann stops right after it.
    assert f"{p}: header: malformed JSON at byte offset 11" in msg, msg
    assert "\\xFF" in msg, msg


def test_messages_with_invalid_utf8_reach_python():
    # A path given as bytes reaches the message as is; Python used to get an empty message.
    for load in (engram.Tokenizer, engram.safetensors_load):
        with pytest.raises(OSError) as e:
            load(b"/nonexistent\xff/x.json")  # type: ignore[arg-type]  # bytes convert too
        assert str(e.value) == ("/nonexistent\\xff/x.json: cannot open for reading "
                                "(No such file or directory)"), str(e.value)


def test_invalid_utf8_in_an_ids_file(tmp_path, tokenizer):
    p = tmp_path / "ids.json"
    p.write_bytes(b'{"input_ids": [["\xff"]]}')
    err = refused("decode", "--tokenizer", tokenizer, "--input", p, "--output", tmp_path / "o")
    assert f"{p}: malformed JSON at byte offset" in err


# ---- inputs that are not regular files -------------------------------------------------------

@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def commands(tokenizer, bad, tmp_path):
    """Each CLI command that reads an input file, with `bad` as that input."""
    return [
        ("encode", "--tokenizer", tokenizer, "--input", bad, "--output", tmp_path / "o.json"),
        ("decode", "--tokenizer", tokenizer, "--input", bad, "--output", tmp_path / "o.txt"),
        ("hash", "--config", DEMO, "--tokenizer", tokenizer, "--input", bad,
         "--output", tmp_path / "o.json"),
        ("hash", "--config", bad, "--tokenizer", tokenizer, "--input", tmp_path / "ids.json",
         "--output", tmp_path / "o.json"),
        ("encode", "--tokenizer", bad, "--input", tmp_path / "in.txt", "--output",
         tmp_path / "o.json"),
    ]


def test_fifo_inputs_are_refused_without_hanging(tmp_path, tokenizer, fifo, ids_file,
                                                 text_file):
    for args in commands(tokenizer, fifo, tmp_path):
        err = refused(*args)
        assert f"{fifo}: is a FIFO, not a regular file" in err, (args, err)


def test_dev_zero_inputs_are_refused(tmp_path, tokenizer, ids_file, text_file):
    for args in commands(tokenizer, "/dev/zero", tmp_path):
        err = refused(*args)
        assert "/dev/zero: is a character device, not a regular file" in err, (args, err)


def test_python_readers_refuse_a_fifo(fifo):
    # In a child process with a timeout: a reader that opened the FIFO would block forever.
    code = f"""
import engram
for load in (engram.Tokenizer, engram.safetensors_load):
    try:
        load({str(fifo)!r})
    except OSError as e:
        print(e)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [f"{fifo}: is a FIFO, not a regular file "
                     "(engram reads inputs only from regular files)"] * 2, r.stdout


def test_fifo_as_a_corpus_or_token_file_is_refused(tmp_path, tokenizer, fifo):
    # Training text, a token folder's train.bin, and `data info` of a token file.
    cfg = SRC / "configs" / "engram_d128.json"
    err = refused("data", "tokenize", "--tokenizer", tokenizer, "--input", fifo,
                  "--output", tmp_path / "tok")
    assert f"{fifo}: not a regular file" in err, err
    folder = tmp_path / "data"
    folder.mkdir()
    os.mkfifo(folder / "train.bin")
    err = refused("train", "--config", cfg, "--tokenizer", tokenizer, "--data", folder,
                  "--out", tmp_path / "run", "--steps", 1)
    assert "train.bin: is a FIFO, not a regular file" in err, err
    err = refused("data", "info", folder / "train.bin")
    assert "train.bin: is a FIFO, not a regular file" in err, err


def test_fifo_as_a_shared_table_file_is_refused(tmp_path, fifo):
    # A FIFO where the shared-memory table file should be: refused, never opened for reading.
    ck = tmp_path / "ck"
    engram.write_synthetic_v41(str(ck), layer_ids=[1], vocab_size=200, hidden_size=32,
                               hc_mult=1, shards=1)
    code = f"""
import engram
try:
    engram.TableStore.open({str(ck)!r}, tier="dram", shared_path={str(fifo)!r})
except OSError as e:
    print(e)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert f"{fifo}: is a FIFO, not a regular file" in r.stdout, r.stdout
