"""The text area's Python API and CLI: engram.Tokenizer, engram.TokenCompressor, and the
`engram encode / decode / compress` subcommands (file formats and error messages).
Uses a tiny tokenizer written by the test; the DeepSeek-V3 parity checks are in
test_text_parity.py."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import engram

from asset_helpers import requires

BIN = Path(os.environ.get("ENGRAM_BINARY_DIR", Path(__file__).resolve().parents[2] / "build"))
CLI = BIN / "engram"


def byte_level_chars():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def bl(s):
    t = byte_level_chars()
    return "".join(t[b] for b in s.encode("utf-8"))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    t = byte_level_chars()
    vocab = {t[b]: b for b in range(256)}
    merges = [["h", "e"], [bl(" "), "t"], [bl(" t"), "he"], ["l", "l"], ["he", "ll"], ["hell", "o"]]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 300, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [300], "tokens": ["<s>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": merges},
    }
    p = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_tokenizer_encode_decode(tiny_path):
    tok = engram.Tokenizer(str(tiny_path))
    assert tok.vocab_size == 301
    ids = tok.encode("hello the")
    assert [tok.id_to_token(i) for i in ids] == ["<s>", "hello", bl(" the")]
    assert tok.encode("hello the", add_special_tokens=False) == ids[1:]
    assert tok.decode(ids) == "<s>hello the"
    assert tok.decode(ids, skip_special_tokens=True) == "hello the"
    assert tok.decode(np.asarray(ids, dtype=np.int64)) == "<s>hello the"
    assert tok.token_to_id("<s>") == 300 and tok.token_to_id("nope") is None
    assert tok.is_special(300) and not tok.is_special(5)
    assert tok.decode([0xC3]) == "\ufffd"


def test_tokenizer_errors(tiny_path, tmp_path):
    tok = engram.Tokenizer(str(tiny_path))
    with pytest.raises(IndexError, match="position 1"):
        tok.decode([1, 301])
    with pytest.raises(IndexError):
        tok.decode([2**40])
    with pytest.raises(OSError):
        engram.Tokenizer(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"type": "Unigram", "vocab": []}}')
    with pytest.raises(ValueError, match=r"model\.type"):
        engram.Tokenizer(str(bad))


def test_compressor_call_semantics(tiny_path):
    comp = engram.TokenCompressor.from_tokenizer(str(tiny_path))
    lookup = comp.lookup
    assert lookup.dtype == np.int64 and lookup.shape == (comp.vocab_size,)
    assert comp.compressed_vocab_size == lookup.max() + 1
    ids = np.array([[ord("H"), -1, 300], [ord("h"), 5, -7]], dtype=np.int64)
    out = comp(ids)
    assert out.shape == ids.shape and out.dtype == np.int64
    assert out[0, 0] == out[1, 0]  # "H" and "h" share a key
    assert out[0, 1] == -1 and out[1, 2] == -7
    np.testing.assert_array_equal(out[ids >= 0], lookup[ids[ids >= 0]])
    np.testing.assert_array_equal(comp(np.arange(10, dtype=np.int32)), lookup[:10])
    assert comp(np.zeros((0, 3), dtype=np.int64)).shape == (0, 3)
    with pytest.raises(IndexError, match=r"id 301 at position 4"):
        comp(np.array([[0, 1], [2, 3], [301, 0]]))
    with pytest.raises(ValueError):
        comp(np.array([1.5]))


def test_compressor_from_lookup():
    comp = engram.TokenCompressor.from_lookup(np.array([0, 1, 0, 2]))
    assert comp.compressed_vocab_size == 3
    with pytest.raises(ValueError, match=r"lookup\[1\] = 2"):
        engram.TokenCompressor.from_lookup(np.array([0, 2]))
    assert engram.TokenCompressor.normalize_key(" The") == "the"


def run_cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True)


@requires(CLI.exists(), "engram CLI not built")
def test_cli_encode_decode_compress(tiny_path, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("hello the <s>hell", encoding="utf-8")
    ids_path = tmp_path / "ids.json"
    r = run_cli("encode", "--tokenizer", tiny_path, "--input", text, "--output", ids_path)
    assert r.returncode == 0, r.stderr
    tok = engram.Tokenizer(str(tiny_path))
    assert json.loads(ids_path.read_text()) == {"input_ids": [tok.encode("hello the <s>hell")]}
    r = run_cli("encode", "--tokenizer", tiny_path, "--input", text, "--output", ids_path, "--no-special")
    assert json.loads(ids_path.read_text()) == {"input_ids": [tok.encode("hello the <s>hell", add_special_tokens=False)]}

    out_txt = tmp_path / "out.txt"
    r = run_cli("decode", "--tokenizer", tiny_path, "--input", ids_path, "--output", out_txt)
    assert r.returncode == 0, r.stderr
    assert out_txt.read_text(encoding="utf-8") == "hello the <s>hell"
    r = run_cli("decode", "--tokenizer", tiny_path, "--input", ids_path, "--output", out_txt, "--skip-special")
    assert out_txt.read_text(encoding="utf-8") == "hello the hell"

    comp_path = tmp_path / "comp.json"
    r = run_cli("compress", "--tokenizer", tiny_path, "--output", comp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(comp_path.read_text())
    comp = engram.TokenCompressor.from_tokenizer(str(tiny_path))
    assert doc["vocab_size"] == comp.vocab_size
    assert doc["compressed_vocab_size"] == comp.compressed_vocab_size
    assert doc["lookup"] == comp.lookup.tolist()
    assert r.stdout.strip() == str(comp.compressed_vocab_size)


@requires(CLI.exists(), "engram CLI not built")
@pytest.mark.parametrize("content,fragment", [
    ("[1, 2]", "expected a JSON object"),
    ('{"ids": [[1]]}', 'missing key "input_ids"'),
    ('{"input_ids": [[1], [2, 3]]}', "input_ids[1] has 2 entries"),
    ('{"input_ids": [[1, "x"]]}', "input_ids[0][1] must be an integer"),
    ('{"input_ids": [[1, 2, 999]]}', "input id 999 at (batch 0, position 2) is outside"),
])
def test_cli_decode_rejects_bad_ids(tiny_path, tmp_path, content, fragment):
    p = tmp_path / "ids.json"
    p.write_text(content)
    r = run_cli("decode", "--tokenizer", tiny_path, "--input", p, "--output", tmp_path / "o.txt")
    assert r.returncode == 1
    assert fragment in r.stderr and str(p) in r.stderr


@requires(CLI.exists(), "engram CLI not built")
def test_cli_encode_rejects_invalid_utf8(tiny_path, tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"hello \xff world")
    r = run_cli("encode", "--tokenizer", tiny_path, "--input", p, "--output", tmp_path / "o.json")
    assert r.returncode == 1
    assert "byte offset 6" in r.stderr and str(p) in r.stderr
