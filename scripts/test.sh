#!/usr/bin/env bash
# Builds everything (scripts/build.sh: Release, warnings as errors) and runs every test: the C++
# and Python suites under CTest; the C++ unit tests again under ASan + UBSan
# (scripts/sanitize.sh, build-asan/); then each fuzz target for a short while (scripts/fuzz.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900
bash scripts/sanitize.sh
bash scripts/fuzz.sh
