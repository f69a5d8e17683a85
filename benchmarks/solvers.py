"""Fixed-point and linear solvers on H = γAH + B, graphs from 1k to 1M edges.

dyngraph's picard / anderson / broyden / gmres / direct (SuperLU) next to scipy's own
``gmres`` and ``spsolve`` on the same systems, in one process. A: ring + random chords, rows
normalised to sum to 1 (so ρ(γA) = γ = 0.95 exactly), B: 4 random columns. Every solve is
checked against the tightest solution. Timings are medians of --repeats runs; the machine is
shared, so treat them as noisy.

    .venv/bin/python benchmarks/solvers.py            # 1k, 10k, 100k, 1M edges
    .venv/bin/python benchmarks/solvers.py --fast     # 1k, 10k edges
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from dyngraph.solvers import SparseMatrix, solve_linear

GAMMA = 0.95


def system(num_edges: int, seed: int = 0):
    n = max(num_edges // 10, 10)
    g = torch.Generator().manual_seed(seed)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    chords = torch.randint(0, n, (2, num_edges - n), generator=g)
    ei = torch.cat([ring, chords], 1)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.1
    rows = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    b = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return ei, w / rows[ei[1]], b


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run_size(E: int, args) -> None:
    ei, w, b = system(E)
    n = b.size(0)
    A = SparseMatrix(ei, w, n)
    M = (sp.identity(n, format="csc") - GAMMA * A.to_scipy()).tocsc()
    bn = b.numpy()
    rep = 1 if E >= 1_000_000 else args.repeats
    # reference: GMRES to near machine precision
    ref, _ = solve_linear(A, None, b, GAMMA, method="gmres", rtol=1e-13, max_iter=10_000)
    rows = []
    for method in ("picard", "anderson", "broyden", "gmres", "splu"):
        if method == "splu" and n > args.direct_max_nodes:
            rows.append((method, "-", float("nan"), float("nan"), float("nan")))
            continue
        t, (H, r) = timed(lambda m=method: solve_linear(
            A, None, b, GAMMA, method=m, rtol=args.rtol, max_iter=10_000), rep)
        res = float((b + GAMMA * A.matmul(H) - H).norm() / b.norm())
        rows.append((f"dyngraph.{method}", r.iterations, t, res,
                     float((H - ref).abs().max())))
    # peers: scipy gmres (per column) and spsolve
    def scipy_gmres():
        cols, its = [], 0
        for j in range(bn.shape[1]):
            count = [0]
            x, info = spla.gmres(M, bn[:, j], rtol=args.rtol, restart=40, maxiter=10_000,
                                 callback=lambda _r, c=count: c.__setitem__(0, c[0] + 1),
                                 callback_type="pr_norm")
            cols.append(x)
            its += count[0]
        return np.stack(cols, 1), its

    t, (X, its) = timed(scipy_gmres, rep)
    Xt = torch.from_numpy(X)
    rows.append(("scipy.gmres", its, t,
                 float((b + GAMMA * A.matmul(Xt) - Xt).norm() / b.norm()),
                 float((Xt - ref).abs().max())))
    if n <= args.direct_max_nodes:
        t, X = timed(lambda: spla.spsolve(M, bn), rep)
        Xt = torch.from_numpy(X)
        rows.append(("scipy.spsolve", 1, t,
                     float((b + GAMMA * A.matmul(Xt) - Xt).norm() / b.norm()),
                     float((Xt - ref).abs().max())))
    for name, it, t, res, err in rows:
        print(f"{E:9d} {n:8d} {name:>16s} {it!s:>6s} {t:9.4f} {res:9.1e} {err:9.1e}")



def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--fast", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--direct-max-nodes", type=int, default=2_000,
                   help="SuperLU fill-in on random graphs explodes beyond this")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [1_000, 10_000] if args.fast else [1_000, 10_000, 100_000, 1_000_000]
    print(f"H = {GAMMA}·A·H + B, B: 4 columns, stop at ‖B + γAH − H‖ ≤ {args.rtol:g}·‖B‖ "
          f"(threads={args.threads})")
    print(f"{'edges':>9s} {'nodes':>8s} {'method':>16s} {'iters':>6s} {'time [s]':>9s} "
          f"{'rel.res':>9s} {'max err':>9s}")
    for E in sizes:
        run_size(E, args)

if __name__ == "__main__":
    main()
