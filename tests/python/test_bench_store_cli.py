"""`engram bench store` refuses numeric options out of range before it measures anything: a clear
error naming the flag and a non-zero exit, never a crash or an `inf`."""
import pytest

from cli_helpers import engram


@pytest.mark.parametrize("flag,value", [
    ("--tokens", 0), ("--steps", 0), ("--batch", 0), ("--batch", -3), ("--qd", 0),
    ("--vocab", 0), ("--zipf", "nan"), ("--zipf", -1), ("--compute-us", -5),
    ("--fio-seconds", 0),
])
def test_out_of_range_options_are_refused(tmp_path, flag, value):
    r = engram("bench", "store", "--work", tmp_path, flag, value, check=False, timeout=60)
    assert r.returncode != 0, r.stdout
    assert r.returncode > 0, f"killed by signal {-r.returncode}"
    assert flag in r.stderr and "must be" in r.stderr, r.stderr
    assert "inf" not in r.stdout and "engram bench store" not in r.stdout, r.stdout
    assert not any(tmp_path.iterdir())  # nothing written


def test_fewer_tokens_than_one_step_is_refused(tmp_path):
    r = engram("bench", "store", "--work", tmp_path, "--tokens", 10, "--batch", 64, check=False,
                timeout=60)
    assert r.returncode == 1 and "--tokens (10) must be at least --batch (64)" in r.stderr, r.stderr
