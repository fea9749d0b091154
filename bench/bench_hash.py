"""Throughput of engram's n-gram hasher against the demo's NumPy hashing, same inputs, same
output (hash ids of every Engram layer for a [B, T] batch of raw token ids).

  /usr/bin/python3 bench/bench_hash.py [--config configs/engram_demo.json] [--batch 8]
      [--time 4096] [--threads 1,2] [--repeat 5] [--tokenizer assets/deepseek_v3/tokenizer.json]

Prints positions/s (one position = all layers' columns of one token) for NumPy and for engram at
each thread count, and engram's speed-up, twice: hash() returning new arrays (whose fresh pages
the OS must zero, a cost NumPy pays too) and hash(out=...) writing into arrays reused across
calls, as a serving loop would. The NumPy side is tests/hash/numpy_reference.py, a
transcription of the demo's NgramHashMapping.hash (compression + _get_ngram_hashes per layer);
both sides are checked to agree before timing. Needs PYTHONPATH=<build>/python.
Threads are OpenMP's: on a machine whose cores are busy with other work, busy-waiting threads
stall each other for whole scheduler slices; run with OMP_WAIT_POLICY=passive there.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "hash"))
import engram  # noqa: E402
from numpy_reference import NumpyNgramHash  # noqa: E402
from cpu_info import cpu_info_line  # noqa: E402  (bench/, the script's folder)


def best_time(fn, repeat):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "engram_demo.json"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "assets", "deepseek_v3",
                                                        "tokenizer.json"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--time", type=int, default=4096)
    ap.add_argument("--threads", default="1,%d" % (os.cpu_count() or 1))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(cpu_info_line())  # figures are per CPU and ISA

    cfg = engram.EngramConfig.from_file(args.config)
    if os.path.exists(args.tokenizer) and cfg.compressed_vocab_size is None:
        comp = engram.TokenCompressor.from_tokenizer(args.tokenizer)
        lookup, compressed = comp.lookup, comp.compressed_vocab_size
        source = args.tokenizer
    else:  # synthetic lookup of DeepSeek-V3's size (or the config's compressed size)
        compressed = cfg.compressed_vocab_size or 98627
        rng = np.random.default_rng(0)
        lookup = np.concatenate([np.arange(compressed),
                                 rng.integers(0, compressed, 129280 - compressed)]).astype(np.int64)
        source = "synthetic lookup"
    hasher = engram.NgramHasher(cfg, lookup, compressed)
    ref = NumpyNgramHash(cfg.vocab_size_per_ngram, cfg.max_ngram, cfg.n_head, cfg.layer_ids,
                         lookup, compressed, cfg.pad_id, cfg.seed)

    ids = np.random.default_rng(1).integers(0, len(lookup), size=(args.batch, args.time))
    got, want = hasher.hash(ids), ref.hash(ids)
    for layer in want:
        if not np.array_equal(got[layer], want[layer]):
            sys.exit(f"engram and NumPy disagree on layer {layer}")

    positions = args.batch * args.time
    print(f"config {os.path.relpath(args.config, ROOT)} ({cfg.form}): layers {cfg.layer_ids}, "
          f"max_ngram {cfg.max_ngram}, heads {cfg.n_head}, {cfg.num_columns} columns/layer; "
          f"{source}; B={args.batch} T={args.time}")
    t_np = best_time(lambda: ref.hash(ids), args.repeat)
    print(f"numpy (demo algorithm)             {positions / t_np / 1e6:9.2f} M positions/s")
    out = {layer: np.empty((args.batch, args.time, cfg.num_columns), dtype=np.int64)
           for layer in cfg.layer_ids}
    for n in [int(x) for x in args.threads.split(",") if x]:
        hasher.num_threads = n
        t = best_time(lambda: hasher.hash(ids), args.repeat)
        print(f"engram, {n:2d} thread(s), new arrays   {positions / t / 1e6:9.2f} M positions/s   "
              f"{t_np / t:6.1f}x numpy")
        t = best_time(lambda: hasher.hash(ids, out=out), args.repeat)
        print(f"engram, {n:2d} thread(s), out= arrays  {positions / t / 1e6:9.2f} M positions/s   "
              f"{t_np / t:6.1f}x numpy")


if __name__ == "__main__":
    main()
