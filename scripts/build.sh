#!/usr/bin/env bash
# Set-up and build on a fresh machine: Debian packages, pinned assets, then the CMake build
# into build/ (Release, warnings as errors, through ccache when installed). Safe to re-run; each
# step skips what is already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
bash scripts/fetch-assets.sh
source scripts/cmake-launcher.sh
# -Werror: STYLE promises a build without warnings, so a new warning fails the build.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGRAM_WERROR=ON "${CMAKE_LAUNCHER[@]}" \
  >/dev/null
ninja -C build -j "$(nproc)"
