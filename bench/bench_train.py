"""Training-step throughput of engram.Model against the same model in PyTorch, on CPU.

One step = forward + backward + AdamW update, same shapes, weights and batch on both sides
(PyTorch: tests/python/test_model_parity.py's TorchRef in fp32, torch.optim.AdamW).

Every (side, thread count) runs in a fresh worker process whose OpenMP and OpenBLAS thread
counts are both set to n (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS; torch.set_num_threads(n)), so
neither side's GEMMs use threads the other is denied. Workers are interleaved (torch 1, engram 1,
torch 2, engram 2, then again) --repeats times, and each configuration keeps its best
ms/step (--steps steps after --warmup): on a shared machine the fastest run is the one least
disturbed. Each worker also reports its process CPU time per step, the work done whatever the
machine load. The speed-up compares each side at its best thread count.

GFLOP/s: matmul FLOPs of Model.train_flops (6 x active projection parameters x tokens + causal
attention) over the best engram step, against this CPU's peak:
  peak = cores x GHz x FLOP/cycle, FLOP/cycle = 2 (FMA) x fp32 lanes x FMA pipes, where
  AVX-512 on AMD Zen 4 = 2 pipes x 256-bit = 32, AVX-512 on Intel = 2 x 512-bit = 64,
  AVX2+FMA = 2 x 256-bit = 32. GHz = /proc/cpuinfo's 'cpu MHz' (nominal; boost not counted).

Usage: PYTHONPATH=<build>/python /usr/bin/python3 bench/bench_train.py [--moe] [--threads 1,2]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

from cpu_info import cpu_info_line  # bench/, the script's folder

HERE = os.path.dirname(os.path.abspath(__file__))


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


def model_config(args):
    cfg = dict(vocab_size=args.vocab, hidden_size=args.hidden, n_layers=args.layers,
               n_heads=args.heads, n_kv_heads=args.heads, ffn_hidden=args.ffn,
               max_seq_len=args.seq, rope_theta=10000.0, norm_eps=1e-5)
    if args.moe:
        cfg["moe"] = dict(n_experts=4, top_k=2, expert_ffn_hidden=args.ffn // 4,
                          shared_ffn_hidden=args.ffn // 4, aux_loss_coef=0.01)
    return cfg


def time_steps(step, warmup, steps):
    """Wall and process CPU seconds (all threads) per step."""
    for _ in range(warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def worker(args):
    """One side at one thread count; prints one JSON line."""
    import numpy as np
    import torch

    import engram

    torch.set_num_threads(args.threads)
    cfg = model_config(args)
    B, T = args.batch, args.seq
    rng = np.random.default_rng(0)
    ids = rng.integers(0, args.vocab, size=(B, T))
    targets = rng.integers(0, args.vocab, size=(B, T))
    model = engram.Model(json.dumps(cfg), 0)
    out = {"side": args.worker, "threads": args.threads}
    if args.worker == "engram":
        opt = engram.AdamW(model, weight_decay=0.1)

        def step():
            model.forward(ids, targets)
            model.zero_grad()
            model.backward()
            opt.step(1e-4)

        out["first_loss"] = float(model.forward(ids, targets))
        out["flops"] = model.train_flops(B, T)
    else:
        # The PyTorch twin lives in the parity test, which imports its sibling helpers.
        tests_python = os.path.join(HERE, "..", "tests", "python")
        sys.path.insert(0, tests_python)
        spec = importlib.util.spec_from_file_location(
            "model_ref", os.path.join(tests_python, "test_model_parity.py"))
        model_ref = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(model_ref)
        ref = model_ref.TorchRef(cfg, model.params(), dtype=torch.float32)
        decay = [ref.w(n) for n in ref.names if model.weight_decay(n)]
        no_decay = [ref.w(n) for n in ref.names if not model.weight_decay(n)]
        topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                                 betas=(0.9, 0.95), eps=1e-8)
        tids, ttargets = torch.tensor(ids), torch.tensor(targets)

        def step():
            topt.zero_grad(set_to_none=True)
            loss = ref(tids, ttargets)
            loss.backward()
            topt.step()

        with torch.no_grad():
            out["first_loss"] = float(ref(tids, ttargets))
    out["wall"], out["cpu"] = time_steps(step, args.warmup, args.steps)
    print(json.dumps(out), flush=True)


def run_worker(args, side, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--threads", str(threads),
           "--hidden", str(args.hidden), "--layers", str(args.layers), "--heads", str(args.heads),
           "--ffn", str(args.ffn), "--vocab", str(args.vocab), "--batch", str(args.batch),
           "--seq", str(args.seq), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.moe:
        cmd.append("--moe")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"worker {side} threads={threads} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


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
    ap.add_argument("--threads", default="1,2", help="thread counts tried on both sides")
    ap.add_argument("--torch-threads", help=argparse.SUPPRESS)  # old name of --threads
    ap.add_argument("--worker", choices=["torch", "engram"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    threads = [int(x) for x in (args.torch_threads or args.threads).split(",")]

    print(cpu_info_line())  # figures are per CPU and ISA
    B, T = args.batch, args.seq
    print(f"config: {json.dumps(model_config(args))}  B={B} T={T}  tokens/step={B * T}")
    best = {}
    for rep in range(args.repeats):
        for n in threads:
            for side in ("torch", "engram"):
                r = run_worker(args, side, n)
                key = (side, n)
                if key not in best or r["wall"] < best[key]["wall"]:
                    best[key] = r
    l_t, l_e = best[("torch", threads[0])]["first_loss"], best[("engram", threads[0])]["first_loss"]
    print(f"first loss (same weights and batch): engram {l_e:.6f}  torch {l_t:.6f}")
    import torch  # only for its version string

    print(f"{'threads':>7} | {'torch ' + torch.__version__:>26} | {'engram':>26} | speed-up")
    print(f"{'':>7} | {'ms/step   tok/s  cpu ms':>26} | {'ms/step   tok/s  cpu ms':>26} |")
    for n in threads:
        t, e = best[("torch", n)], best[("engram", n)]
        print(f"{n:>7} | {t['wall'] * 1e3:8.1f} {B * T / t['wall']:7.0f} {t['cpu'] * 1e3:7.0f}"
              f"   | {e['wall'] * 1e3:8.1f} {B * T / e['wall']:7.0f} {e['cpu'] * 1e3:7.0f}"
              f"   | {t['wall'] / e['wall']:.2f}x")
    bt = min((best[("torch", n)] for n in threads), key=lambda r: r["wall"])
    be = min((best[("engram", n)] for n in threads), key=lambda r: r["wall"])
    print(f"best vs best: engram threads={be['threads']} {B * T / be['wall']:.0f} tok/s, torch "
          f"threads={bt['threads']} {B * T / bt['wall']:.0f} tok/s -> {bt['wall'] / be['wall']:.2f}x")
    e1 = best[("engram", threads[0])]
    print(f"CPU time per step at threads={threads[0]}: torch {best[('torch', threads[0])]['cpu'] * 1e3:.0f}"
          f" ms, engram {e1['cpu'] * 1e3:.0f} ms -> {best[('torch', threads[0])]['cpu'] / e1['cpu']:.2f}x")
    flops = be["flops"]
    peak, peak_note = cpu_peak_gflops()
    print(f"engram matmul FLOPs/step {flops / 1e9:.2f} G -> {flops / be['wall'] / 1e9:.1f} GFLOP/s "
          f"= {100 * flops / be['wall'] / 1e9 / peak:.0f}% of nominal peak {peak:.0f} GFLOP/s "
          f"({peak_note}); per CPU-second {flops / be['cpu'] / 1e9:.1f} GFLOP/s against a per-core "
          f"nominal peak of {peak / os.cpu_count():.0f}")
    print(f"machine load average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
