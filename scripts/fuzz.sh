#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/fuzz_*.cpp) with clang, ASan and UBSan into build-fuzz/,
# then runs each for FUZZ_SECONDS (default 20) from its seed corpus (fuzz/corpus/<name>/).
# A crash, leak or sanitizer report fails the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${FUZZ_SECONDS:-20}
source scripts/cmake-launcher.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DENGRAM_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  "${CMAKE_LAUNCHER[@]}" >/dev/null
ninja -C build-fuzz -j "$(nproc)"
shopt -s nullglob
for bin in build-fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="fuzz/corpus/$name"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=0 \
    -artifact_prefix="build-fuzz/$name-" "$work" \
    >"build-fuzz/$name.log" 2>&1 || { tail -60 "build-fuzz/$name.log"; rm -rf "$work"; exit 1; }
  rm -rf "$work"
  tail -1 "build-fuzz/$name.log"
done
echo "fuzz: all targets clean"
