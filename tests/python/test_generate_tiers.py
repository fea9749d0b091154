"""`engram generate --tables ...` and `engram bench decode` end to end.

A tiny Engram model is trained for a few steps by the CLI; generating with its tables resident,
in DRAM, read from a file (O_DIRECT and through the page cache) and behind a hot-row cache must
give the same text for a seed (the logits are bit-identical), report the prefetch wait on store
tiers, keep --tables-file when given and leave no temporary file otherwise; the decode bench must
run every tier and confirm the texts; bad options must fail with a message.
"""
import json
import os
import re

import pytest

from cli_helpers import ENGRAM, TINY_ENGRAM_CONFIG as CONFIG, engram, train_tiny_engram


pytestmark = pytest.mark.skipif(not ENGRAM.exists(), reason=f"{ENGRAM} not built")

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate_tiers")
    train_tiny_engram(root, steps=6, corpus_seed=5)
    return root


def generate(model, *extra, env=None, check=True):
    return engram("generate", "--model", model / "run", "--prompt", "the cat sat", "--max-tokens",
                  30, "--temperature", 0.9, "--top-k", 30, "--top-p", 0.95, "--seed", 7,
                  "--threads", 1, *extra, env=env, check=check)


def test_every_tier_generates_the_same_text(model):
    resident = generate(model)
    assert resident.stdout.strip() and "tables: resident" in resident.stderr
    assert "prefetch" not in resident.stderr
    for extra in (["--tables", "dram"], ["--tables", "file"], ["--tables", "file", "--buffered"],
                  ["--tables", "cache", "--cache-mb", "0.01"],
                  ["--tables", "dram", "--fetch-threads", 0]):
        r = generate(model, *extra)
        assert r.stdout == resident.stdout, extra
        assert "tokens/s" in r.stderr and "% of decode time" in r.stderr, r.stderr
        assert ("cache hit rate" in r.stderr) == ("cache" in extra), r.stderr


def test_tables_file_is_kept_and_temporaries_are_not(model, tmp_path):
    kept = tmp_path / "tables.safetensors"
    r = generate(model, "--tables", "file", "--tables-file", kept)
    assert kept.exists() and kept.stat().st_size > 0
    header_len = int.from_bytes(kept.read_bytes()[:8], "little")
    header = json.loads(kept.read_bytes()[8:8 + header_len])
    assert header["layers.0.engram.table"]["dtype"] == "F32"
    rows, width = header["layers.2.engram.table"]["shape"]
    assert width == 8 and rows > 4 * 61  # 4 columns (2-grams and 3-grams, 2 heads), primes > 61
    assert r.stdout == generate(model).stdout
    # Without --tables-file the export goes to TMPDIR and is removed at the end.
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    generate(model, "--tables", "cache", env=dict(os.environ, TMPDIR=str(tmp)))
    assert list(tmp.iterdir()) == []


def test_bench_decode_runs_every_tier(model):
    r = engram("bench", "decode", "--model", model / "run", "--prompt", "the dog", "--max-tokens",
               12, "--repeats", 1, "--threads", 1,
               "--tiers", "resident,dram,dram-inline,file,file-buffered,file-buffered-inline,"
               "cache,cache-buffered-inline")
    assert "text identical on every tier and round" in r.stdout
    # The figures name the CPU and instruction sets they were measured with.
    assert re.match(r"cpu: .+; isa: compiled for (AVX-512|AVX2|SSE2|scalar), cpu supports "
                    r"(AVX-512|AVX2|SSE2|scalar)\n", r.stdout), r.stdout
    for tier in ("resident", "dram", "dram-inline", "file-buffered-inline", "cache-buffered-inline"):
        assert any(line.startswith(tier + " ") for line in r.stdout.splitlines()), r.stdout


def test_bad_options(model, tmp_path):
    r = generate(model, "--tables", "ssd", check=False)
    assert r.returncode == 1 and "--tables" in r.stderr
    missing = tmp_path / "no" / "such" / "dir" / "t.safetensors"
    r = generate(model, "--tables", "file", "--tables-file", missing, check=False)
    assert r.returncode == 1 and str(missing.parent) in r.stderr
    r = engram("bench", "decode", "--model", model / "run", "--tiers", "file,resident",
               check=False)
    assert r.returncode == 1 and "resident" in r.stderr
    r = engram("bench", "decode", "--model", model / "run", "--tiers", "resident,dram-buffered",
               check=False)
    assert r.returncode == 1 and "dram-buffered" in r.stderr
    r = engram("bench", "decode", "--model", model / "run", "--cache-mb", "-1", check=False)
    assert r.returncode != 0 and "--cache-mb" in r.stderr


def test_bench_decode_builds_a_model_from_a_config(model, tmp_path):
    # --config gives random weights; a config that hashes compressed ids takes its compression
    # lookup from --tokenizer, as `engram train` does.
    cfg = dict(CONFIG, engram=dict(CONFIG["engram"], compress_tokens=True))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    r = engram("bench", "decode", "--config", tmp_path / "cfg.json", "--tokenizer",
               model / "tok.json", "--max-tokens", 6, "--repeats", 1, "--threads", 1,
               "--tiers", "resident,dram")
    assert "text identical on every tier and round" in r.stdout
