"""The CLI and Python refuse the same token ids with the same message, and accept the same ones.

The rule (src/util/token_ids.h, DESIGN.md 2.1): hashing takes ids in [0, vocab) as tokens and
negative ids as padding that passes through unchanged, and ignores dead positions; decoding takes
only [0, vocab). `engram hash`, `engram decode` and engram.NgramHasher report a bad id with one
text from one function; the C API's hash calls reach the same function (tests/capi, the case
TokenIdRuleIsTheCliAndPythonRule, checks its text).
"""
import json
import os
from typing import Any

import numpy as np
import pytest

import engram

from asset_helpers import requires
from cli_helpers import ENGRAM, engram as run_cli

SOURCE = os.environ.get("ENGRAM_SOURCE_DIR", ".")
TOKENIZER = os.path.join(SOURCE, "assets", "deepseek_v3", "tokenizer.json")
DEMO = os.path.join(SOURCE, "configs", "engram_demo.json")

pytestmark = [requires(os.path.exists(TOKENIZER), "assets/deepseek_v3/tokenizer.json not fetched"),
              requires(ENGRAM.exists(), f"{ENGRAM} not built")]


@pytest.fixture(scope="module")
def hasher():
    return engram.NgramHasher(DEMO, TOKENIZER)


def vocab_message(id_, where, vocab, use):
    tail = ("(negative ids are padding and pass through hashing unchanged)" if use == "hash"
            else "(negative ids are padding: they hash, but have no text to decode)")
    return (f"input id {id_} at {where} is outside the tokenizer's vocabulary of {vocab} ids "
            f"{tail}")


def python_hash(hasher, ids, dead):
    try:
        hasher.hash(np.array(ids, dtype=np.int64),
                    None if dead is None else np.array(dead, dtype=bool))
        return None
    except IndexError as e:
        return str(e)


def cli(command, tmp_path, ids, dead):
    doc = {"input_ids": ids}
    if dead is not None:
        doc["dead_mask"] = dead
    src = tmp_path / "ids.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / f"{command}.out"
    args = [command, "--tokenizer", TOKENIZER, "--input", src, "--output", out]
    if command == "hash":
        args += ["--config", DEMO]
    r = run_cli(*args, check=False)
    if r.returncode == 0:
        assert out.exists()
        return None
    assert not out.exists(), "a refused command wrote its output"
    prefix = f"{src}: "
    line = r.stderr.strip().splitlines()[-1]
    assert prefix in line, r.stderr
    return line[line.index(prefix) + len(prefix):]


# (ids, dead mask, the bad id and its position for hashing, the same for decoding); None: accepted.
# "V" stands for the vocabulary size.
AT_1 = "(batch 0, position 1)"
CASES: dict[str, tuple[Any, Any, Any, Any]] = {
    "at vocab": ([[1, "V", 3]], None, ("V", AT_1), ("V", AT_1)),
    "far above": ([[5, 6], [7, 2**40]], None, (2**40, "(batch 1, position 1)"),
                  (2**40, "(batch 1, position 1)")),
    "negative": ([[1, -1, 3]], None, None, (-1, AT_1)),
    "dead": ([[1, "V", 3]], [[False, True, False]], None, ("V", AT_1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hash_and_decode_apply_one_rule_with_one_message(name, hasher, tmp_path):
    ids, dead, bad_hash, bad_decode = CASES[name]
    vocab = hasher.vocab_size
    ids = [[vocab if x == "V" else x for x in row] for row in ids]

    def expected(bad, use):
        if bad is None:
            return None
        return vocab_message(vocab if bad[0] == "V" else bad[0], bad[1], vocab, use)

    want_hash = expected(bad_hash, "hash")
    assert python_hash(hasher, ids, dead) == want_hash
    assert cli("hash", tmp_path, ids, dead) == want_hash
    assert cli("decode", tmp_path, ids, dead) == expected(bad_decode, "decode")
