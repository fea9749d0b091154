"""Forward and forward+backward time of engram's paper-form Engram layer against the PyTorch
module of the same math (TorchEngram in tests/python/test_layer.py, which follows the public
demo), on the same shapes, inputs and thread count.

Run from the repository root after building (scripts/build.sh):
    PYTHONPATH=build/python /usr/bin/python3 bench/bench_layer.py --threads 2
Defaults: B=4, T=512, hidden 512 and 1024, hc_mult 1 and 4, the demo's embedding geometry
(max_ngram 3, n_embed_per_ngram 512, 8 heads: 16 columns of 64-wide rows, E = 1024), tables of
--rows-per-column rows per column. Prints the median of --iters runs (after one warm-up) for
each side, their ratio (torch / engram; > 1 means engram is faster) and the largest relative
difference of the outputs and of d hidden as a sanity check.

The thread count is applied to both sides before either library loads: OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS for engram (OpenMP + OpenBLAS), torch.set_num_threads for PyTorch, whose
BLAS on Debian is the same OpenBLAS (the script prints the BLAS library torch has mapped).
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--B", type=int, default=4)
    p.add_argument("--T", type=int, default=512)
    p.add_argument("--hidden", default="512,1024")
    p.add_argument("--hc", default="1,4")
    p.add_argument("--max-ngram", type=int, default=3)
    p.add_argument("--n-embed-per-ngram", type=int, default=512)
    p.add_argument("--n-head-per-ngram", type=int, default=8)
    p.add_argument("--rows-per-column", type=int, default=20011)
    p.add_argument("--iters", type=int, default=5)
    return p.parse_args()


args = parse()
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import engram  # noqa: E402
from cpu_info import cpu_info_line  # noqa: E402  (bench/, the script's folder)

torch.set_num_threads(args.threads)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tests", "python"))  # test_layer's sibling helpers
spec = importlib.util.spec_from_file_location("test_layer",
                                              os.path.join(root, "tests", "python", "test_layer.py"))
test_layer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test_layer)


def next_primes(start, count):
    out, n = [], start
    while len(out) < count:
        n += 1
        if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)):
            out.append(n)
    return out


def median_time(fn, iters):
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def blas_libraries():
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
        return sorted(os.path.basename(x) for x in libs)
    except OSError:
        return ["?"]


def bench(B, T, hidden, hc):
    cols = (args.max_ngram - 1) * args.n_head_per_ngram
    row_width = args.n_embed_per_ngram // args.n_head_per_ngram
    primes = next_primes(args.rows_per_column, cols)
    torch.manual_seed(0)
    ref = test_layer.TorchEngram(primes, row_width, hidden, hc, 4, args.max_ngram)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "conv" in name:
                p.normal_(0.0, 0.1)
    layer = engram.EngramLayerCore(primes, row_width, hidden, hc, kernel_size=4,
                                   dilation=args.max_ngram)
    layer.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(0)
    ids = np.stack([rng.integers(0, p, size=(B, T)) for p in primes], axis=2).astype(np.int64)
    h_np = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)
    g_np = rng.standard_normal((B, T, hc, hidden)).astype(np.float32)
    ids_t, g_t = torch.from_numpy(ids), torch.from_numpy(g_np)
    h_t = torch.tensor(h_np, requires_grad=True)

    def torch_fwd():
        with torch.no_grad():
            return ref(h_t, ids_t)

    def torch_fwd_bwd():
        ref.zero_grad(set_to_none=True)
        h_t.grad = None
        ref(h_t, ids_t).backward(g_t)

    def engram_fwd():
        return layer.forward(h_np, ids)

    def engram_fwd_bwd():
        layer.zero_grad()
        layer.forward(h_np, ids)
        return layer.backward(g_np)

    out_err = test_layer.rel_err(engram_fwd(), torch_fwd().numpy())
    torch_fwd_bwd()
    dh_err = test_layer.rel_err(engram_fwd_bwd(), h_t.grad.numpy())
    tf, ef = median_time(torch_fwd, args.iters), median_time(engram_fwd, args.iters)
    tb, eb = median_time(torch_fwd_bwd, args.iters), median_time(engram_fwd_bwd, args.iters)
    print(f"B={B} T={T} d={hidden:<5} hc={hc}  forward: torch {tf * 1e3:8.2f} ms  engram "
          f"{ef * 1e3:8.2f} ms  ratio {tf / ef:5.2f}   fwd+bwd: torch {tb * 1e3:8.2f} ms  engram "
          f"{eb * 1e3:8.2f} ms  ratio {tb / eb:5.2f}   rel err out {out_err:.1e} dh {dh_err:.1e}")
    sys.stdout.flush()


def main():
    print(cpu_info_line())  # figures are per CPU and ISA
    cols = (args.max_ngram - 1) * args.n_head_per_ngram
    row_width = args.n_embed_per_ngram // args.n_head_per_ngram
    print(f"threads {args.threads}; torch {torch.__version__}, torch.get_num_threads() = "
          f"{torch.get_num_threads()}, BLAS mapped: {', '.join(blas_libraries())}")
    print(f"columns {cols}, row width {row_width}, E = {cols * row_width}, "
          f"~{args.rows_per_column} rows per column; median of {args.iters} after 1 warm-up")
    for hidden in (int(x) for x in args.hidden.split(",")):
        for hc in (int(x) for x in args.hc.split(",")):
            bench(args.B, args.T, hidden, hc)


if __name__ == "__main__":
    main()
