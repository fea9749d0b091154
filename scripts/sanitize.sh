#!/usr/bin/env bash
# The C++ unit tests under AddressSanitizer + UndefinedBehaviorSanitizer: the library and its
# tests built into build-asan/ (CMake ENGRAM_SANITIZE=ON: no Python module, no benchmarks), then
# ctest there. Any ASan report (overflow, use after free, leak) or UBSan report fails the test
# that hit it.
# Left out of this run (-E below), with the reason:
#   py_*   the Python tests: the sanitized library is not loaded by Debian's Python (it would need
#          libasan preloaded into the interpreter); they run against the Release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/cmake-launcher.sh
# Without -Werror: GCC's sanitizer instrumentation is known to raise false warnings
# (-Wmaybe-uninitialized, -Wstringop-overflow); the warning-free promise is checked by the main
# build (scripts/build.sh).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGRAM_SANITIZE=ON -DENGRAM_WERROR=OFF \
  "${CMAKE_LAUNCHER[@]}" >/dev/null
ninja -C build-asan -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 900 -E '^py_'
