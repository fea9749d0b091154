#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/fuzz_*.cpp) with clang, ASan and UBSan into build-fuzz/,
# then runs each for FUZZ_SECONDS (default 20) from its seed corpus (fuzz/corpus/<name>/), with
# inputs up to 1 MiB for the document parsers (seeds include 50,000-deep JSON nesting).
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
  # libFuzzer's default -max_len (4 KiB, or the largest seed) never reaches the deep nesting
  # that crashed the JSON readers; the parsers of whole documents get 1 MiB.
  case "$name" in
    fuzz_ids_json|fuzz_tokenizer_json|fuzz_config|fuzz_safetensors|fuzz_checkpoint) max_len=1048576 ;;
    *) max_len=65536 ;;
  esac
  echo "fuzz: $name for ${secs}s (max_len $max_len)"
  "$bin" -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=4096 -timeout=10 -print_final_stats=0 \
    -artifact_prefix="build-fuzz/$name-" "$work" \
    >"build-fuzz/$name.log" 2>&1 || { tail -60 "build-fuzz/$name.log"; rm -rf "$work"; exit 1; }
  rm -rf "$work"
  tail -1 "build-fuzz/$name.log"
done
echo "fuzz: all targets clean"
