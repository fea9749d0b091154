"""`engram bench decode` refuses a zero, negative or non-finite numeric option before any work,
in an error naming the flag (the model paths here do not exist: the options are judged first)."""
import pytest

from asset_helpers import requires
from cli_helpers import ENGRAM, engram

pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")


@pytest.mark.parametrize("flag,value", [
    ("--max-tokens", "0"), ("--max-tokens", "-1"), ("--repeats", "0"), ("--repeats", "-3"),
    ("--cache-mb", "0"), ("--cache-mb", "-1"), ("--cache-mb", "nan"), ("--threads", "-1"),
    ("--temperature", "-0.5"), ("--temperature", "inf"),
])
def test_bench_decode_names_the_bad_flag(flag, value, tmp_path):
    r = engram("bench", "decode", "--config", tmp_path / "none.json", "--tokenizer",
               tmp_path / "none.json", flag, value, check=False)
    assert r.returncode != 0
    assert flag in r.stderr and value in r.stderr, r.stderr
