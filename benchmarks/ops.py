"""dyngraph.ops vs plain torch vs torch-scatter, on one random graph, in one process.

    python benchmarks/ops.py                      # E=4M, N=200k, F=64 (the issue's setting)
    python benchmarks/ops.py --edges 400000 --nodes 20000 --features 16 --repeats 3   # quick

For every op it prints the median wall time (of ``--repeats`` runs, candidates interleaved
round-robin so that load drift on a shared machine hits all of them alike) of dyngraph (auto
backend), the plainest good torch call, and torch-scatter (when installed); then the ratio
dyngraph / best peer (target <= 1.05). ``fwd+bwd`` rows time forward and a backward pass.
It ends with the roofline of the fused sum (bytes per edge ~ 8 + 4F against the measured copy
bandwidth) and the fused-vs-gather-then-scatter speed-up (target >= 3x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from dyngraph.ops import (
    CSR,
    backend,
    gather_aggregate,
    scatter,
    scatter_argmax,
    scatter_softmax,
    segment,
)

try:
    import torch_scatter
except ImportError:  # peer is optional
    torch_scatter = None

Fn = Callable[[], object]


def timed(candidates: dict[str, Fn], repeats: int) -> dict[str, float]:
    """Median seconds per candidate; one warm-up each, then round-robin repeats."""
    for fn in candidates.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def with_backward(fn: Callable[[], torch.Tensor], inputs: list[torch.Tensor]) -> Fn:
    def run() -> None:
        for t in inputs:
            t.grad = None
        out = fn()
        out.backward(torch.ones_like(out))

    return run


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, float], str]] = []
        print(
            f"{'op':26s} {'pass':8s} {'dyngraph':>10s} {'torch':>10s} {'t-scatter':>10s} "
            f"{'ratio':>7s}  dyngraph backend",
            flush=True,
        )

    def add(self, op: str, mode: str, times: dict[str, float], used: str) -> None:
        self.rows.append((op, mode, times, used))
        peers = [v for k, v in times.items() if k != "dyngraph"]
        ratio = times["dyngraph"] / min(peers) if peers else float("nan")

        def ms(key: str) -> str:
            return f"{times[key] * 1e3:9.1f}ms" if key in times else f"{'-':>11s}"

        flag = "" if ratio <= 1.05 else "  <-- slower than best peer"
        print(
            f"{op:26s} {mode:8s} {ms('dyngraph')}{ms('torch')}{ms('scatter')} {ratio:7.2f}  "
            f"{used}{flag}",
            flush=True,
        )


def copy_bandwidth(repeats: int) -> float:
    """Bytes read + written per second by a large preallocated tensor copy."""
    a = torch.rand(2**27)  # 512 MiB
    b = torch.empty_like(a)
    t = timed({"copy": lambda: b.copy_(a)}, repeats)["copy"]
    return 2 * a.numel() * a.element_size() / t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--edges", type=int, default=4_000_000)
    p.add_argument("--nodes", type=int, default=200_000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--no-backward", action="store_true", help="forward rows only")
    p.add_argument(
        "--only",
        default="",
        help="comma list of groups: scatter,segment,softmax,argmax,aggregate (default all)",
    )
    args = p.parse_args(argv)
    groups = set(args.only.split(",")) if args.only else {
        "scatter", "segment", "softmax", "argmax", "aggregate"
    }
    if args.threads:
        torch.set_num_threads(args.threads)
    E, N, F, R = args.edges, args.nodes, args.features, args.repeats
    g = torch.Generator().manual_seed(args.seed)
    print(
        f"E={E:,} N={N:,} F={F} float32, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, torch-scatter "
        f"{torch_scatter.__version__ if torch_scatter else 'not installed'}, median of {R}"
    )
    print(f"ops backend mode: {backend.get_backend()}\n")
    src = torch.randint(0, N, (E,), generator=g)
    dst = torch.randint(0, N, (E,), generator=g)
    x = torch.randn(N, F, generator=g)
    w = torch.rand(E, generator=g)
    csr = CSR.from_edge_index(torch.stack([src, dst]), N)
    csr.transpose()  # built once per graph; a training loop reuses it
    msg = x.index_select(0, src)  # E x F messages in original edge order (scatter input)
    msg_sorted = msg.index_select(0, csr.perm)  # the same in CSR order (segment input)
    ptr = csr.ptr
    table = Table()
    do_bwd = not args.no_backward

    def run(op: str, key: tuple[str, str], cands: dict[str, Fn], mode: str = "fwd") -> None:
        table.add(op, mode, timed(cands, R), backend.backend_for(*key))

    # ------------------------------------------------------------------ scatter (COO)
    if "scatter" in groups:
        dst_b = dst.view(-1, 1).expand(-1, F)
        plain = {
            "sum": lambda s: s.new_zeros(N, F).scatter_add_(0, dst_b, s),
            "mean": lambda s: s.new_zeros(N, F).scatter_add_(0, dst_b, s)
            / torch.bincount(dst, minlength=N).clamp(min=1).unsqueeze(-1),
            "max": lambda s: s.new_zeros(N, F).scatter_reduce_(
                0, dst_b, s, "amax", include_self=False
            ),
            "min": lambda s: s.new_zeros(N, F).scatter_reduce_(
                0, dst_b, s, "amin", include_self=False
            ),
            "mul": lambda s: s.new_ones(N, F).scatter_reduce_(0, dst_b, s, "prod"),
        }
        for red, torch_fn in plain.items():
            cands: dict[str, Fn] = {
                "dyngraph": lambda red=red: scatter(msg, dst, 0, N, red),
                "torch": lambda f=torch_fn: f(msg),
            }
            if torch_scatter is not None and red != "mul":
                cands["scatter"] = lambda red=red: torch_scatter.scatter(msg, dst, 0, None, N, red)
            run(f"scatter {red}", ("scatter", red), cands)
            if do_bwd and red != "mul":
                m = msg.clone().requires_grad_()
                bw: dict[str, Fn] = {
                    "dyngraph": with_backward(lambda red=red, m=m: scatter(m, dst, 0, N, red), [m]),
                    "torch": with_backward(lambda f=torch_fn, m=m: f(m), [m]),
                }
                if torch_scatter is not None:
                    bw["scatter"] = with_backward(
                        lambda red=red, m=m: torch_scatter.scatter(m, dst, 0, None, N, red), [m]
                    )
                run(f"scatter {red}", ("scatter", red), bw, "fwd+bwd")
                del m

    # ------------------------------------------------------------------ segment (CSR ptr)
    if "segment" in groups:
        for red in ("sum", "mean", "max", "min"):
            tred = {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[red]
            cands = {
                "dyngraph": lambda red=red: segment(msg_sorted, ptr, red),
                "torch": lambda tred=tred: torch.segment_reduce(
                    msg_sorted, tred, offsets=ptr, axis=0, unsafe=True
                ),
            }
            if torch_scatter is not None:
                cands["scatter"] = lambda red=red: torch_scatter.segment_csr(
                    msg_sorted, ptr, None, red
                )
            run(f"segment {red}", ("segment", red), cands)
            if do_bwd:
                m = msg_sorted.clone().requires_grad_()
                bw = {
                    "dyngraph": with_backward(lambda red=red, m=m: segment(m, ptr, red), [m]),
                    "torch": with_backward(
                        lambda tred=tred, m=m: torch.segment_reduce(
                            m, tred, offsets=ptr, axis=0, unsafe=True
                        ).nan_to_num(0.0, 0.0, 0.0),
                        [m],
                    ),
                }
                if torch_scatter is not None:
                    bw["scatter"] = with_backward(
                        lambda red=red, m=m: torch_scatter.segment_csr(m, ptr, None, red), [m]
                    )
                run(f"segment {red}", ("segment", red), bw, "fwd+bwd")
                del m

    # ------------------------------------------------------------------ softmax over in-edges
    heads = 8
    scores = torch.randn(E, heads, generator=g)
    dst_h = dst.view(-1, 1).expand(-1, heads)

    def torch_softmax(s: torch.Tensor) -> torch.Tensor:
        mx = s.new_zeros(N, heads).scatter_reduce_(0, dst_h, s, "amax", include_self=False)
        e = (s - mx.index_select(0, dst)).exp()
        tot = e.new_zeros(N, heads).scatter_add_(0, dst_h, e)
        return e / tot.index_select(0, dst)

    if "softmax" in groups:
        cands = {
            "dyngraph": lambda: scatter_softmax(scores, dst, 0, N),
            "torch": lambda: torch_softmax(scores),
        }
        if torch_scatter is not None:
            cands["scatter"] = lambda: torch_scatter.scatter_softmax(scores, dst, 0, dim_size=N)
        run(f"softmax [E,{heads}]", ("scatter", "max"), cands)
        if do_bwd:
            s = scores.clone().requires_grad_()
            bw = {
                "dyngraph": with_backward(lambda: scatter_softmax(s, dst, 0, N), [s]),
                "torch": with_backward(lambda: torch_softmax(s), [s]),
            }
            if torch_scatter is not None:
                bw["scatter"] = with_backward(
                    lambda: torch_scatter.scatter_softmax(s, dst, 0, dim_size=N), [s]
                )
            run(f"softmax [E,{heads}]", ("scatter", "max"), bw, "fwd+bwd")

    if "argmax" in groups:

        def torch_argmax(s: torch.Tensor) -> torch.Tensor:
            mx = s.new_zeros(N, heads).scatter_reduce_(0, dst_h, s, "amax", include_self=False)
            pos = torch.arange(E).view(-1, 1)
            cand = torch.where(s == mx.index_select(0, dst), pos, E)
            out = torch.full((N, heads), E, dtype=torch.long)
            return out.scatter_reduce_(0, dst_h, cand, "amin")

        cands = {
            "dyngraph": lambda: scatter_argmax(scores, dst, N),
            "torch": lambda: torch_argmax(scores),
        }
        if torch_scatter is not None:
            cands["scatter"] = lambda: torch_scatter.scatter_max(scores, dst, 0, dim_size=N)[1]
        run(f"argmax [E,{heads}]", ("scatter_arg", "max"), cands)

    # ------------------------------------------------------------------ fused gather-aggregate
    if "aggregate" in groups:
        dst_b = dst.view(-1, 1).expand(-1, F)
        csr_sorted_dst = csr.row.view(-1, 1).expand(-1, F)
        A = torch.sparse_csr_tensor(csr.ptr, csr.col, csr.permute(w), (N, N))

        def gather_scatter(xx: torch.Tensor, ww: torch.Tensor, red: str) -> torch.Tensor:
            m = xx.index_select(0, src) * ww.unsqueeze(-1)
            if red == "sum":
                return m.new_zeros(N, F).scatter_add_(0, dst_b, m)
            if red == "mean":
                s = m.new_zeros(N, F).scatter_add_(0, dst_b, m)
                return s / csr.deg.clamp(min=1).unsqueeze(-1)
            return m.new_zeros(N, F).scatter_reduce_(0, dst_b, m, "amax", include_self=False)

        def gather_segment(xx: torch.Tensor, ww: torch.Tensor, red: str) -> torch.Tensor:
            m = xx.index_select(0, csr.col) * csr.permute(ww).unsqueeze(-1)
            return torch_scatter.segment_csr(m, csr.ptr, None, red)

        speedup = {}
        for red in ("sum", "mean", "max"):
            cands = {
                "dyngraph": lambda red=red: gather_aggregate(x, csr, w, red),
                "torch": lambda red=red: gather_scatter(x, w, red),
            }
            if red == "sum":
                cands["torch sparse.mm"] = lambda: A @ x
            if torch_scatter is not None:
                cands["scatter"] = lambda red=red: gather_segment(x, w, red)
            times = timed(cands, R)
            speedup[red] = times["torch"] / times["dyngraph"]
            if "torch sparse.mm" in times:  # report the faster plain-torch variant
                times["torch"] = min(times["torch"], times.pop("torch sparse.mm"))
            table.add(f"gather_aggregate {red}", "fwd", times, backend.backend_for(
                "gather_aggregate", red))
            if red == "sum":
                fused_sum_t = times["dyngraph"]
            if do_bwd:
                xr = x.clone().requires_grad_()
                wr = w.clone().requires_grad_()
                bw = {
                    "dyngraph": with_backward(
                        lambda red=red, xr=xr, wr=wr: gather_aggregate(xr, csr, wr, red), [xr, wr]
                    ),
                    "torch": with_backward(
                        lambda red=red, xr=xr, wr=wr: gather_scatter(xr, wr, red), [xr, wr]
                    ),
                }
                if torch_scatter is not None:
                    bw["scatter"] = with_backward(
                        lambda red=red, xr=xr, wr=wr: gather_segment(xr, wr, red), [xr, wr]
                    )
                times = timed(bw, R)
                speedup[red + " fwd+bwd"] = times["torch"] / times["dyngraph"]
                table.add(f"gather_aggregate {red}", "fwd+bwd", times, backend.backend_for(
                    "gather_aggregate", red))
                del xr, wr
        del csr_sorted_dst

        print("\nfused vs gather-then-scatter (plain torch: x[src] * w, scatter), target >= 3x:")
        for k, v in speedup.items():
            print(f"  {k:14s} {v:6.2f}x")
        bw_copy = copy_bandwidth(R)
        moved = E * (8 + 4 * F)
        achieved = moved / fused_sum_t
        print(
            f"\nroofline: copy bandwidth (read+write of a 512 MiB tensor) {bw_copy / 1e9:.2f} GB/s;"
            f" fused sum moves ~(8 + 4F) B/edge = {moved / 1e9:.2f} GB in "
            f"{fused_sum_t * 1e3:.1f} ms -> {achieved / 1e9:.2f} GB/s = "
            f"{100 * achieved / bw_copy:.0f}% of copy bandwidth (target >= 50%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
