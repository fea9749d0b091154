#!/usr/bin/env bash
# Set-up and build on a fresh machine: Debian packages, pinned assets, then the CMake build
# into build/ (Release). Safe to re-run; each step skips what is already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
bash scripts/fetch-assets.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j "$(nproc)"
