#!/usr/bin/env bash
# The exact Engram front end on a sample text with DeepSeek-V3's tokenizer: set up and build, then
# encode -> compress the vocabulary -> hash every position for each Engram layer of the demo
# config, printing what happened at each step. (The main demo is scripts/demo.sh.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh >/dev/null
tok=assets/deepseek_v3/tokenizer.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
text=${1:-data/sample.txt}
echo "== text: $text ($(wc -c <"$text") bytes)"
build/engram encode --tokenizer "$tok" --input "$text" --output "$out/ids.json"
build/engram compress --tokenizer "$tok" --output "$out/lookup.json"
build/engram hash --config configs/engram_demo.json --tokenizer "$tok" --input "$out/ids.json" \
  --output "$out/hash.json"
/usr/bin/python3 scripts/demo_summary.py "$out/ids.json" "$out/lookup.json" "$out/hash.json" "$tok"
