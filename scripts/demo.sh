#!/usr/bin/env bash
# The main command. On a fresh Debian 12 machine: install packages, fetch the pinned assets, build
# (scripts/build.sh), then run `build/engram demo`: train a BPE tokenizer on the Brown corpus,
# train the baseline and the Engram preset for the same token budget, compare their held-out loss
# (table + runs/demo/losses.png), and generate samples with the Engram tables resident and served
# from the file tier. About 10-15 minutes on 2 cores. Arguments go to `engram demo`, e.g.
#   bash scripts/demo.sh --quick            # a few steps, to check the set-up
#   bash scripts/demo.sh --steps 1000 --out runs/long
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh
exec build/engram demo "$@"
