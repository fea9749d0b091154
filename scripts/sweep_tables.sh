#!/usr/bin/env bash
# Held-out loss against Engram table size and table learning rate at the demo's token budget
# (docs/training.md, "Table size and learning rate"). Trains the baseline and Engram variants of
# configs/engram_d128.json that differ only in rows per n-gram order (engram_vocab_size), in
# --table-lr-mult or in vocabulary compression (engram.compress_tokens), two runs at a time on
# one thread each, then evaluates every run on the whole held-out split and prints one table. Deterministic: the same machine gives the same losses.
#
#   bash scripts/sweep_tables.sh OUT [DATA_DIR TOKENIZER]
# DATA_DIR / TOKENIZER default to what `engram demo` prepared under runs/demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: sweep_tables.sh OUT [DATA_DIR TOKENIZER]}
data=${2:-$root/runs/demo/data}
tok=${3:-$root/runs/demo/tokenizer.json}
engram=${ENGRAM:-$root/build/engram}  # ENGRAM=path picks another build
py=/usr/bin/python3
steps=${STEPS:-500} batch=${BATCH:-16} seq=${SEQ:-128}
mkdir -p "$out"

# name  config-rows-per-order(0 = baseline)  table-lr-mult  [compress: hash compressed ids]
points=(
  "baseline 0 5"
  "rows2k 2048 5"
  "rows8k 8192 5"
  "rows16k 16384 5"
  "rows64k 65536 5"
  "rows256k 262144 5"
  "rows16k_lr1 16384 1"
  "rows16k_lr20 16384 20"
  "rows16k_compress 16384 5 compress"
  "rows64k_compress 65536 5 compress"
)

run_point() {
  local name=$1 rows=$2 mult=$3 compress=${4:-} cfg
  cfg=$out/$name.config.json
  if [[ $rows == 0 ]]; then
    cp "$root/configs/baseline_d128.json" "$cfg"
  else
    $py - "$root/configs/engram_d128.json" "$cfg" "$rows" "$compress" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
c["engram"]["engram_vocab_size"] = [n] * (c["engram"]["max_ngram_size"] - 1)
c["engram"]["compress_tokens"] = sys.argv[4] == "compress"
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
  fi
  if [[ -f $out/$name/eval.txt ]]; then return; fi
  rm -rf "${out:?}/$name"
  "$engram" train --config "$cfg" --tokenizer "$tok" --data "$data" --out "$out/$name" \
    --steps "$steps" --batch "$batch" --seq "$seq" --lr 2e-3 --warmup 30 --table-lr-mult "$mult" \
    --eval-every 100 --eval-windows 128 --checkpoint-every "$steps" --seed 0 --threads 1 \
    2>"$out/$name.log" >/dev/null || { echo "$name: training failed:"; tail -3 "$out/$name.log"; return 1; }
  "$engram" eval --model "$out/$name" --data "$data" --seq "$seq" --batch 16 --threads 1 \
    >"$out/$name/eval.tmp" && mv "$out/$name/eval.tmp" "$out/$name/eval.txt"
}

# Two at a time.
for ((i = 0; i < ${#points[@]}; i += 2)); do
  run_point ${points[i]} &
  if ((i + 1 < ${#points[@]})); then run_point ${points[i + 1]} & fi
  wait
done

printf '%-14s %10s %8s %10s %10s\n' run rows/order lr_mult val_loss vs_base
base=$(awk '/^val_loss:/ {print $2}' "$out/baseline/eval.txt")
for p in "${points[@]}"; do
  set -- $p
  v=$(awk '/^val_loss:/ {print $2}' "$out/$1/eval.txt")
  awk -v n="$1" -v r="$2" -v m="$3" -v v="$v" -v b="$base" \
    'BEGIN { printf "%-14s %10s %8s %10s %+10.4f\n", n, r, m, v, v - b }'
done
