"""pytest set-up for tests/python: the `requires` mark of asset_helpers.py (skip when something
a test needs is missing, fail instead under CI=true). Checked before any fixture is set up, so a
fixture that loads the asset never runs without it."""
from asset_helpers import missing


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires(present, reason): skip unless present; under CI=true, fail")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires"):
        present, reason = mark.args
        if not present:
            missing(reason)
