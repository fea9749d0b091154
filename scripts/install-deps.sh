#!/usr/bin/env bash
# Installs every Debian package engram needs to build, test and benchmark.
# Idempotent: re-running it on a set-up machine does nothing but check.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates ccache
  clang libclang-rt-14-dev
  libpcre2-dev libicu-dev nlohmann-json3-dev libcli11-dev
  libopenblas-dev libopenblas0-pthread liburing-dev libpng-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-dev python3-numpy python3-torch python3-pybind11 pybind11-dev python3-pytest mypy
  fio
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js runs the tokenizer reference (HF tokenizers' binding) and fetches assets from npm.
# The machine image may ship its own Node; only fall back to Debian's when there is none.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
