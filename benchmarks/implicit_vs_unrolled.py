"""Forward + backward of a fixed-point layer: implicit differentiation vs back-propagation
through K = 50/100/200 unrolled iterations.

Layer: z = tanh(Â z Wᵀ + X Ωᵀ) (IGNN-style, ‖W‖ scaled so the map contracts at rate ≈ 0.9)
on a random graph. Memory: bytes of tensors saved for backward (exact, via
``torch.autograd.graph.saved_tensors_hooks``) and the peak RSS increase of a fresh process
per configuration. Time: median wall-clock of forward + backward; the machine is shared, so
treat times as noisy.

    .venv/bin/python benchmarks/implicit_vs_unrolled.py
    .venv/bin/python benchmarks/implicit_vs_unrolled.py --fast
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from dyngraph.solvers import SparseMatrix, implicit_fixed_point


def setup(n: int, e: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    w = torch.rand(e, generator=g)
    rows = torch.zeros(n).index_add(0, ei[1], w)
    A = SparseMatrix(ei, w / rows[ei[1]].clamp_min(1e-12), n)
    W = torch.randn(d, d, generator=g)
    W = (0.9 * W / torch.linalg.matrix_norm(W, 2)).requires_grad_()
    Om = (torch.randn(d, d, generator=g) / d**0.5).requires_grad_()
    X = torch.randn(n, d, generator=g)
    return A, W, Om, X


def step(config: str, A, W, Om, X):
    U = X @ Om.T

    def f(z):
        return torch.tanh(A.matmul(z) @ W.T + U)

    z0 = torch.zeros_like(X)
    if config == "implicit":
        z = implicit_fixed_point(f, z0, solver="anderson", tol=0.0, rtol=1e-6, max_iter=500)
    else:
        z = z0
        for _ in range(int(config.split("-")[1])):
            z = f(z)
    loss = z.square().mean()
    loss.backward()
    return float(loss)


def saved_bytes(config: str, A, W, Om, X) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(config, A, W, Om, X)
    return total


def one(config: str, n: int, e: int, d: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    step(config, *setup(200, 2000, d, seed=1))  # warm-up: one-time library allocations
    A, W, Om, X = setup(n, e, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(config, A, W, Om, X)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base  # KiB on Linux
    times = []
    for _ in range(repeats):
        W.grad = Om.grad = None
        t = time.perf_counter()
        step(config, A, W, Om, X)
        times.append(time.perf_counter() - t)
    return {"config": config, "saved_MB": saved_bytes(config, A, W, Om, X) / 2**20,
            "rss_MB": peak / 1024, "time_s": statistics.median(times),
            "grad_W": W.grad.clone().flatten()[:4].tolist()}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--fast", action="store_true")
    p.add_argument("--nodes", type=int, default=5_000)
    p.add_argument("--edges", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.fast:
        args.nodes, args.edges, args.dim, args.repeats = 2000, 20_000, 16, 1
    if args.one:
        print(json.dumps(one(args.one, args.nodes, args.edges, args.dim, args.repeats)))
        return
    print(f"graph: {args.nodes} nodes, {args.edges} edges, state dim {args.dim}")
    print(f"{'method':>14s} {'saved for backward [MB]':>24s} {'peak RSS +[MB]':>15s} "
          f"{'fwd+bwd [s]':>12s}")
    results = []
    for config in ("implicit", "unrolled-50", "unrolled-100", "unrolled-200"):
        cmd = [sys.executable, __file__, "--one", config, "--nodes", str(args.nodes),
               "--edges", str(args.edges), "--dim", str(args.dim),
               "--repeats", str(args.repeats)]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"{config:>14s} {r['saved_MB']:24.1f} {r['rss_MB']:15.1f} {r['time_s']:12.3f}")
    return results


if __name__ == "__main__":
    main()
