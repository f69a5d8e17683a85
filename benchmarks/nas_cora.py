"""Auto-GNN search on Cora / CiteSeer: RCC with and without parameter sharing vs random search
at equal trial budgets, next to GCN and GAT trained with the same protocol and the numbers
reported in the papers. After each budget the final architecture is picked among the top
``--select-top`` distinct search trials by mean validation accuracy over ``--select-seeds``
retrains (``dyngraph.nas.select_final``; the single best search trial is reported too) and
retrained from scratch over 10 seeds for its test accuracy.

Every search writes a resumable JSON-lines trial log in ``--outdir`` (re-running the same
command continues a cut search without repeating trials); retrain results are cached there
by architecture key, so the report step can be re-run cheaply::

    # one search at a time (background-friendly), then the report
    .venv/bin/python benchmarks/nas_cora.py --dataset cora --runs random --trials 100 --no-report
    .venv/bin/python benchmarks/nas_cora.py --dataset cora --trials 100 \
        --json benchmarks/results/nas_cora.json --plot benchmarks/results/nas_cora.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from dyngraph.nas import (
    AGNNSpace,
    NodeClassificationObjective,
    TrainConfig,
    load_planetoid,
    make_space,
    retrain,
    search,
    select_final,
)
from dyngraph.nas.cli import plot_curves

# Reported test accuracies (%) on the public Planetoid split. GCN: Kipf & Welling 2017;
# GAT: Velickovic et al. 2018; AGNN: Zhou et al. 2019 (Auto-GNN, semi-supervised table).
PAPER = {
    "cora": {"GCN": 81.5, "GAT": 83.0, "AGNN": 83.6},
    "citeseer": {"GCN": 70.3, "GAT": 72.5, "AGNN": 73.8},
}
RUNS = {"rcc+sharing": ("rcc", True), "rcc": ("rcc", False), "random": ("random", False)}


def baselines() -> dict:
    def two_layer(att, heads, hidden, act0, heads1):
        return {"attention_0": att, "aggregation_0": "sum", "activation_0": act0,
                "heads_0": heads, "hidden_0": hidden, "attention_1": att,
                "aggregation_1": "sum", "activation_1": "linear", "heads_1": heads1}

    full = AGNNSpace(hidden=(8, 16, 64), heads=(1, 8))
    return {"GCN": (full, full.make(two_layer("gcn", 1, 16, "relu", 1))),
            "GAT": (full, full.make(two_layer("gat", 8, 8, "elu", 1)))}


class RetrainCache:
    """Retrain results by (space, architecture key, seeds), persisted as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, space, arch, objective, seeds: int) -> dict:
        key = f"{space.name}/{arch.key}/{seeds}"
        if key not in self.data:
            t0 = time.perf_counter()
            rt = retrain(space, arch, objective, seeds=seeds)
            rt["seconds"] = time.perf_counter() - t0
            self.data[key] = rt
            self.path.write_text(json.dumps(self.data, indent=1))
        return self.data[key]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="cora")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--space", default="agnn-light")
    ap.add_argument("--epochs", type=int, default=100, help="max epochs of a search trial")
    ap.add_argument("--patience", type=int, default=25, help="early stopping of a trial")
    ap.add_argument("--shared-epochs", type=int, default=40,
                    help="max epochs of a trial that inherited weights")
    ap.add_argument("--retrain-seeds", type=int, default=10)
    ap.add_argument("--select-top", type=int, default=5,
                    help="final pick among this many best distinct architectures (1: the "
                         "single best search trial)")
    ap.add_argument("--select-seeds", type=int, default=3,
                    help="retrains per candidate for the final pick (validation accuracy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", default="benchmarks/out")
    ap.add_argument("--no-report", action="store_true", help="only run the searches")
    ap.add_argument("--json", default=None, help="report JSON")
    ap.add_argument("--plot", default=None, help="best validation accuracy vs trials")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_planetoid(args.dataset)
    space = make_space(args.space)
    search_obj = NodeClassificationObjective(
        data, TrainConfig(epochs=args.epochs, shared_epochs=args.shared_epochs,
                          patience=args.patience, threads=1))
    # the final protocol, identical for searched architectures, GCN and GAT
    final_obj = NodeClassificationObjective(data, TrainConfig(epochs=200, patience=100,
                                                              threads=1))
    results = {}
    for name in args.runs:
        ctrl, sharing = RUNS[name]
        results[name] = search(space, search_obj, ctrl, trials=args.trials, sharing=sharing,
                               seed=args.seed,
                               log=out / f"{args.dataset}_{name}_s{args.seed}.jsonl")
        r = results[name]
        print(f"{name:12s} {len(r.trials)} trials, best val {r.best_reward:.4f}, "
              f"{r.trials_per_minute():.1f} trials/min", flush=True)
    if args.no_report:
        return
    cache = RetrainCache(out / f"{args.dataset}_retrain_cache.json")
    report = {
        "dataset": args.dataset, "trials": args.trials, "space": args.space,
        "search_protocol": {"epochs": args.epochs, "patience": args.patience,
                            "shared_epochs": args.shared_epochs, "lr": 0.005,
                            "weight_decay": 5e-4},
        "final_protocol": {"epochs": 200, "patience": 100, "seeds": args.retrain_seeds,
                           "model": "best validation epoch", "lr": 0.005,
                           "weight_decay": 5e-4},
        "seed": args.seed, "paper": PAPER.get(args.dataset, {}), "runs": {},
        "final_selection": {"top_k": args.select_top, "seeds": args.select_seeds},
    }
    cps = [c for c in args.checkpoints if c <= args.trials]
    for name, res in results.items():
        n = len(res.trials)
        shared = [t for t in res.trials if t.get("shared_layers")]
        entry = {"num_trials": n, "curve": res.curve(),
                 "trials_per_minute": res.trials_per_minute(),
                 "search_seconds": sum(t["seconds"] for t in res.trials),
                 "shared_trials": len(shared),
                 "at": {}}
        verified = [t for t in res.trials if "shared_reward" in t.get("metrics", {})]
        if shared:
            # bias of inherited weights on the reward: fine-tuned minus from-scratch val acc
            gaps = [t["metrics"]["shared_reward"] - t["reward"] for t in verified]
            entry["verified_trials"] = len(verified)
            entry["shared_minus_scratch_val"] = gaps
            entry["shared_trial_seconds_median"] = statistics.median(
                t["metrics"].get("shared_seconds", t["seconds"]) for t in shared)
            entry["scratch_trial_seconds_median"] = statistics.median(
                [t["seconds"] for t in res.trials if not t.get("shared_layers")] or [0.0])
            if gaps:
                print(f"{name:12s} {len(verified)} verified shared children: fine-tuned minus "
                      f"from-scratch val acc mean {statistics.fmean(gaps):+.4f}, "
                      f"range [{min(gaps):+.4f}, {max(gaps):+.4f}]", flush=True)
        for c in [c for c in cps if c <= n]:
            # single best search trial (noisy: one training run, many ties) ...
            best = res.best_after(c)
            arch = space.make(best["arch"]["choices"])
            rt = cache.get(space, arch, final_obj, args.retrain_seeds)
            single = {"arch": best["arch"]["choices"], "search_val": best["reward"],
                      "trial": best["trial"], "test_mean": rt["test_mean"],
                      "test_std": rt["test_std"], "val_mean": rt["val_mean"]}
            at = dict(single)
            if args.select_top > 1:
                # ... and the final pick among the top-k by repeated validation (no test data)
                pick, cands = select_final(space, res, final_obj, top_k=args.select_top,
                                           seeds=args.select_seeds, n=c,
                                           retrain_fn=cache.get)
                rt = cache.get(space, pick, final_obj, args.retrain_seeds)
                at = {"arch": pick.to_dict()["choices"], "search_val": cands[0]["search_reward"],
                      "trial": cands[0]["trial"], "test_mean": rt["test_mean"],
                      "test_std": rt["test_std"], "val_mean": rt["val_mean"],
                      "selection": f"top {args.select_top} by search reward, best mean "
                                   f"validation accuracy over {args.select_seeds} retrains",
                      "candidates_val_mean": [x["val_mean"] for x in cands],
                      "single_best_trial": single}
            entry["at"][str(c)] = at
            print(f"{name:12s} after {c:3d} trials: single best trial (val {best['reward']:.4f}) "
                  f"test {100 * single['test_mean']:.2f} ± {100 * single['test_std']:.2f}; "
                  f"selected (trial {at['trial']}) test {100 * at['test_mean']:.2f} ± "
                  f"{100 * at['test_std']:.2f}", flush=True)
        print(f"{name:12s} best architecture:\n" + space.describe(res.best), flush=True)
        report["runs"][name] = entry
    report["baselines"] = {}
    for name, (sp, arch) in baselines().items():
        rt = cache.get(sp, arch, final_obj, args.retrain_seeds)
        report["baselines"][name] = {"test_mean": rt["test_mean"], "test_std": rt["test_std"],
                                     "val_mean": rt["val_mean"],
                                     "paper": PAPER.get(args.dataset, {}).get(name)}
        print(f"{name:12s} dyngraph {100 * rt['test_mean']:.2f} ± {100 * rt['test_std']:.2f}"
              f"  (paper {PAPER.get(args.dataset, {}).get(name)})", flush=True)
    if "rcc" in results and "rcc+sharing" in results:
        a, b = results["rcc"], results["rcc+sharing"]
        report["sharing_speedup"] = b.trials_per_minute() / a.trials_per_minute()
        print(f"trials/min: rcc {a.trials_per_minute():.2f}, rcc+sharing "
              f"{b.trials_per_minute():.2f} (x{report['sharing_speedup']:.2f}; summed trial "
              "seconds, shared 2-core machine: noisy)")
    report["_stdev_note"] = "test_std: sample std over retrain seeds"
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.plot:
        curves = {k: r.curve() for k, r in results.items()}
        lo = min(c[min(9, len(c) - 1)] for c in curves.values()) - 0.005
        hi = max(c[-1] for c in curves.values()) + 0.005
        plot_curves(curves, args.plot, f"Auto-GNN search on {args.dataset} (seed {args.seed})",
                    ylim=(lo, hi))


if __name__ == "__main__":
    main()
