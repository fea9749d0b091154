"""Training-step throughput of engram.Model against the same model in PyTorch, on CPU.

One step = forward + backward + AdamW update, same shapes and weights in both. PyTorch runs with
1 and with 2 intra-op threads (set_num_threads), and its better setting is the baseline; engram
uses its default threads (OpenMP + OpenBLAS, one per core). Each side is timed for --steps steps
after --warmup steps, --repeats times; the best repeat counts (the machine may be shared).
Also prints engram's achieved GFLOP/s (matmul FLOPs of Model.train_flops: 6 x active projection
parameters x tokens + causal attention) against this CPU's peak, computed from /proc/cpuinfo:
  peak = cores x MHz x FLOPs/cycle, FLOPs/cycle = 2 (FMA) x fp32 lanes x FMA pipes, where
  AVX-512 on AMD (Zen 4) = 2 pipes x 256-bit (32), AVX-512 on Intel = 2 x 512-bit (64),
  AVX2+FMA = 2 x 256-bit (32). 'cpu MHz' is the reported (base) clock: boost is not counted.

Usage: /usr/bin/python3 bench/bench_train.py [--moe] [--steps 5]   (PYTHONPATH=<build>/python)
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
import torch

import engram

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "model_ref", os.path.join(HERE, "..", "tests", "python", "test_model_parity.py"))
model_ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_ref)


def cpu_peak_gflops():
    info = open("/proc/cpuinfo").read()
    flags = set()
    mhz, vendor = [], ""
    for line in info.splitlines():
        key, _, val = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(val.split())
        elif key == "cpu MHz":
            mhz.append(float(val))
        elif key == "vendor_id":
            vendor = val.strip()
    cores = os.cpu_count()
    if "avx512f" in flags:
        per_cycle = 32 if vendor == "AuthenticAMD" else 64
        isa = "AVX-512 (" + ("2 x 256-bit FMA pipes" if per_cycle == 32 else "2 x 512-bit FMA") + ")"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2+FMA (2 x 256-bit FMA)"
    else:
        per_cycle, isa = 8, "SSE (no FMA)"
    ghz = (sum(mhz) / len(mhz) if mhz else 2000.0) / 1000.0
    return cores * ghz * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FLOP/cycle, {isa}"


def time_steps(step, warmup, steps, repeats):
    """Best wall seconds per step over the repeats, and the process CPU seconds of that repeat
    (all threads): on a shared machine the second shows the work done when the first is noisy."""
    for _ in range(warmup):
        step()
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        wall, cpu = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
        best = min(best, (wall, cpu))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--moe", action="store_true", help="4 experts top-2 + shared expert")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-threads", default="1,2")
    args = ap.parse_args()

    cfg = dict(vocab_size=args.vocab, hidden_size=args.hidden, n_layers=args.layers,
               n_heads=args.heads, n_kv_heads=args.heads, ffn_hidden=args.ffn,
               max_seq_len=args.seq, rope_theta=10000.0, norm_eps=1e-5)
    if args.moe:
        cfg["moe"] = dict(n_experts=4, top_k=2, expert_ffn_hidden=args.ffn // 4,
                          shared_ffn_hidden=args.ffn // 4, aux_loss_coef=0.01)
    B, T = args.batch, args.seq
    rng = np.random.default_rng(0)
    ids = rng.integers(0, args.vocab, size=(B, T))
    targets = rng.integers(0, args.vocab, size=(B, T))

    model = engram.Model(json.dumps(cfg), 0)
    params = model.params()
    opt = engram.AdamW(model, weight_decay=0.1)

    def engram_step():
        model.forward(ids, targets)
        model.zero_grad()
        model.backward()
        opt.step(1e-4)

    ref = model_ref.TorchRef(cfg, params, dtype=torch.float32)
    decay = [p for n, p in zip(ref.names, [ref.w(n) for n in ref.names]) if model.weight_decay(n)]
    no_decay = [ref.w(n) for n in ref.names if not model.weight_decay(n)]
    topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                             betas=(0.9, 0.95), eps=1e-8)
    tids, ttargets = torch.tensor(ids), torch.tensor(targets)

    def torch_step():
        topt.zero_grad(set_to_none=True)
        loss = ref(tids, ttargets)
        loss.backward()
        topt.step()

    # Same weights and batch: the first losses agree.
    l_engram = model.forward(ids, targets)
    with torch.no_grad():
        l_torch = ref(tids, ttargets).item()
    print(f"config: {json.dumps(cfg)}  B={B} T={T}  tokens/step={B * T}")
    print(f"first loss: engram {l_engram:.6f}  torch {l_torch:.6f}")

    torch_best = None
    for nt in [int(x) for x in args.torch_threads.split(",")]:
        torch.set_num_threads(nt)
        dt, cpu = time_steps(torch_step, args.warmup, args.steps, args.repeats)
        print(f"torch {torch.__version__} threads={nt}: {dt * 1e3:8.1f} ms/step  {B * T / dt:9.0f} tok/s"
              f"  (cpu {cpu * 1e3:.0f} ms/step)")
        if torch_best is None or dt < torch_best[1]:
            torch_best = (nt, dt)

    dt, cpu = time_steps(engram_step, args.warmup, args.steps, args.repeats)
    flops = model.train_flops(B, T)
    peak, peak_note = cpu_peak_gflops()
    print(f"engram (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}): "
          f"{dt * 1e3:8.1f} ms/step  {B * T / dt:9.0f} tok/s  (cpu {cpu * 1e3:.0f} ms/step)")
    print(f"speed-up vs torch (threads={torch_best[0]}): {torch_best[1] / dt:.2f}x")
    print(f"engram matmul FLOPs/step {flops / 1e9:.2f} G -> {flops / dt / 1e9:.1f} GFLOP/s "
          f"= {100 * flops / dt / 1e9 / peak:.0f}% of peak {peak:.0f} GFLOP/s ({peak_note}); "
          f"per CPU-second {flops / cpu / 1e9:.1f} GFLOP/s against a per-core peak of "
          f"{peak / os.cpu_count():.0f}")
    print(f"machine load average during the run: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
