"""Controller quality on NAS-Bench-Graph: regret vs number of queries, mean over seeds.

regret(n) = (best test accuracy in the table) - (test accuracy of the architecture with the
best *validation* accuracy among the first n queries). Each query is a table lookup, so the
whole comparison (5 datasets x 3 controllers x 20 seeds x 100 queries) takes a few minutes.
Controllers run with their default hyper-parameters — the same on every dataset. Seeds are
paired: seed s of every controller starts from the same random architectures, so
``rcc - random`` differences are reported per seed (mean ± s.e.m. of the paired difference).

    .venv/bin/python benchmarks/nasbench_regret.py --seeds 20 --queries 100 \
        --json benchmarks/results/nasbench_regret.json --plot benchmarks/results/nasbench_regret.png
    # held-out seeds (the defaults were chosen looking at seeds 0-19)
    .venv/bin/python benchmarks/nasbench_regret.py --seeds 20 --seed-offset 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from dyngraph.nas import NasBenchGraphObjective, NasBenchGraphSpace, search


def _mean_sem(vals: list[float]) -> tuple[float, float]:
    m = statistics.fmean(vals)
    sem = statistics.stdev(vals) / len(vals) ** 0.5 if len(vals) > 1 else 0.0
    return m, sem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+",
                    default=["cora", "citeseer", "pubmed", "photo", "arxiv"])
    ap.add_argument("--controllers", nargs="+", default=["rcc", "random", "evolution"])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--rcc-kwargs", default=None, help="JSON dict of RCC hyper-parameters")
    ap.add_argument("--json", "--out", dest="json", default=None, help="summary JSON")
    ap.add_argument("--plot", default=None, help="PNG of mean regret vs queries")
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = NasBenchGraphSpace()
    rcc_kwargs = json.loads(args.rcc_kwargs) if args.rcc_kwargs else None
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    cps = [c for c in args.checkpoints if c <= args.queries]
    summary: dict = {"queries": args.queries, "seeds": seeds, "rcc_kwargs": rcc_kwargs or {},
                     "regret_unit": "accuracy points (x100)", "datasets": {}}
    print(f"regret (x100, mean ± s.e.m. over {args.seeds} seeds) after n queries")
    print(f"{'dataset':10s} {'controller':10s} " + " ".join(f"n={c:<11d}" for c in cps)
          + " sec/search")
    for ds in args.datasets:
        obj = NasBenchGraphObjective(ds)
        per_ds: dict = {"best_test": obj.best_test, "controllers": {}}
        finals: dict[str, list[float]] = {}
        for ctrl in args.controllers:
            curves, val_finals = [], []
            t0 = time.perf_counter()
            for s in seeds:
                res = search(space, obj, ctrl, trials=args.queries, seed=s, progress=False,
                             controller_kwargs=rcc_kwargs if ctrl == "rcc" else None)
                curves.append([100 * (obj.best_test - res.best_after(n)["metrics"]["test_acc"])
                               for n in range(1, args.queries + 1)])
                # search quality without the validation->test noise: validation regret
                val_finals.append(100 * (obj.best_val - res.best_reward))
            secs = (time.perf_counter() - t0) / len(seeds)
            mean_curve = [statistics.fmean(c[i] for c in curves) for i in range(args.queries)]
            sem_curve = [_mean_sem([c[i] for c in curves])[1] for i in range(args.queries)]
            finals[ctrl] = [c[-1] for c in curves]
            per_ds["controllers"][ctrl] = {
                "mean": mean_curve, "sem": sem_curve, "final_per_seed": finals[ctrl],
                "at": {str(c): _mean_sem([cur[c - 1] for cur in curves]) for c in cps},
                "seconds_per_search": secs,
                "val_regret_at_end": _mean_sem(val_finals),
            }
            cells = [f"{m:5.2f} ± {e:4.2f}" for m, e in
                     (_mean_sem([cur[c - 1] for cur in curves]) for c in cps)]
            vm, ve = _mean_sem(val_finals)
            print(f"{ds:10s} {ctrl:10s} " + " ".join(cells) + f"  {secs:.2f}"
                  f"   val-regret@{args.queries} {vm:.2f} ± {ve:.2f}", flush=True)
        if "rcc" in finals:
            for other in [c for c in finals if c != "rcc"]:
                diff = [a - b for a, b in zip(finals["rcc"], finals[other])]
                m, e = _mean_sem(diff)
                wins = sum(d < 0 for d in diff)
                per_ds[f"rcc_minus_{other}"] = {"mean": m, "sem": e, "rcc_better_seeds": wins}
                print(f"{ds:10s} rcc - {other:10s} after {args.queries}: {m:+.2f} ± {e:.2f} "
                      f"(rcc lower on {wins}/{len(diff)} seeds)", flush=True)
        summary["datasets"][ds] = per_ds
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f)
    if args.plot:
        _plot(summary, args.plot)


def _plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dss = list(summary["datasets"])
    fig, axes = plt.subplots(1, len(dss), figsize=(3.2 * len(dss), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        for name, c in summary["datasets"][ds]["controllers"].items():
            x = range(1, len(c["mean"]) + 1)
            ax.plot(x, c["mean"], label=name)
            lo = [m - e for m, e in zip(c["mean"], c["sem"])]
            hi = [m + e for m, e in zip(c["mean"], c["sem"])]
            ax.fill_between(x, lo, hi, alpha=0.2)
        ax.set_title(ds)
        ax.set_xlabel("queries")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test regret (acc. points)")
    axes[0][-1].legend()
    fig.suptitle(f"NAS-Bench-Graph: mean regret ± s.e.m. over {len(summary['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
