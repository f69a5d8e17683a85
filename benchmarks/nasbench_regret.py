"""Controller quality on NAS-Bench-Graph: regret vs number of queries, mean over seeds.

regret(n) = (best test accuracy in the table) - (test accuracy of the architecture with the
best *validation* accuracy among the first n queries). Each query is a table lookup.

    .venv/bin/python benchmarks/nas_bench_graph.py --seeds 20 --queries 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from dyngraph.nas import NasBenchGraphObjective, NasBenchGraphSpace, search


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["cora", "citeseer", "pubmed", "photo",
                                                      "arxiv"])
    ap.add_argument("--controllers", nargs="+", default=["rcc", "random", "evolution"])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--out", default=None, help="JSON with all regret curves")
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = NasBenchGraphSpace()
    out = {}
    cps = [c for c in args.checkpoints if c <= args.queries]
    print(f"regret (x100, mean ± s.e.m. over {args.seeds} seeds) after n queries")
    print(f"{'dataset':10s} {'controller':10s} " + " ".join(f"n={c:<11d}" for c in cps)
          + " sec/search")
    for ds in args.datasets:
        obj = NasBenchGraphObjective(ds)
        for ctrl in args.controllers:
            curves = []
            t0 = time.perf_counter()
            for s in range(args.seeds):
                res = search(space, obj, ctrl, trials=args.queries, seed=s, progress=False)
                curves.append([obj.best_test - res.best_after(n)["metrics"]["test_acc"]
                               for n in range(1, args.queries + 1)])
            secs = (time.perf_counter() - t0) / args.seeds
            out[f"{ds}/{ctrl}"] = curves
            cells = []
            for c in cps:
                vals = [100 * cur[c - 1] for cur in curves]
                sem = statistics.stdev(vals) / len(vals) ** 0.5 if len(vals) > 1 else 0.0
                cells.append(f"{statistics.fmean(vals):5.2f} ± {sem:4.2f}")
            print(f"{ds:10s} {ctrl:10s} " + " ".join(cells) + f"  {secs:.2f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
