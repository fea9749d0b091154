"""What a test does when something it needs is missing (an asset such as DeepSeek-V3's
tokenizer.json or the Brown corpus, the HF Node binding, the built `engram` binary): on a
developer's machine it is skipped; under CI=true it fails, so that a parity test that did not run
never counts as passed.

    pytestmark = requires(TOKENIZER.exists(), "assets/deepseek_v3/tokenizer.json not fetched")
    @requires(BROWN.exists(), "assets/brown not fetched")        # one test
    missing("needs the engram binary")                             # inside a test or fixture
"""
import os

import pytest

IN_CI = os.environ.get("CI") == "true"


def missing(reason):
    """Skips the calling test (or fixture's tests), or fails it under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the test)", pytrace=False)
    pytest.skip(reason)


def requires(present, reason):
    """A mark for a test or a module (pytestmark): runs when `present`, else as missing(reason)
    (conftest.py applies it)."""
    return pytest.mark.requires(bool(present), reason)
