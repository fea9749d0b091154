#!/usr/bin/env python3
"""Writes a synthetic DeepSeek-V4.1 checkpoint: config.json, safetensors shards and
model.safetensors.index.json with the real Engram tensor names, dtypes and layout
(layers.{L}.engram.embed.weight [rows, head_dim] F8_E4M3, .embed.scale [rows, head_dim/32] F8_E8M0,
wkv.weight/.scale, q_weight, k_weight), at reduced size by default. Rows per layer follow the
prime layout NgramHasher uses. --full-rows uses V4.1's engram_vocab_size (16,000,000: ~384M rows
a layer, ~100 GB per embed tensor) and --sparse leaves the embed tensors as holes, costing no disk.

Needs the built module: PYTHONPATH=build/python /usr/bin/python3 scripts/make_synthetic_v41.py OUT
"""
import argparse

import engram


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="directory to write (created if missing)")
    ap.add_argument("--layers", default="1,14", help="Engram layer ids (V4.1: 1,14)")
    ap.add_argument("--vocab-size", type=int, default=1000, help="prime-search start per order")
    ap.add_argument("--full-rows", action="store_true", help="V4.1's row count (implies --sparse)")
    ap.add_argument("--sparse", action="store_true", help="embed tensors as sparse-file holes")
    ap.add_argument("--max-ngram", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--hc", type=int, default=4)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    vocab = 16_000_000 if a.full_rows else a.vocab_size
    rows = engram.write_synthetic_v41(
        a.out, layer_ids=[int(x) for x in a.layers.split(",")], vocab_size=vocab,
        max_ngram=a.max_ngram, n_heads=a.heads, head_dim=a.head_dim, hidden_size=a.hidden,
        hc_mult=a.hc, shards=a.shards, sparse=a.sparse or a.full_rows, seed=a.seed)
    for layer, n in zip(a.layers.split(","), rows):
        print(f"layer {layer}: {n} rows x {a.head_dim + a.head_dim // 32} bytes")


if __name__ == "__main__":
    main()
