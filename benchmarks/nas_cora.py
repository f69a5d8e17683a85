"""Auto-GNN search on Cora / CiteSeer: RCC with and without parameter sharing vs random search
at equal trial budgets, the best architecture retrained over 10 seeds, next to GCN and GAT
trained with the same protocol. Trial logs are resumable (re-run the same command).

    .venv/bin/python benchmarks/nas_cora.py --dataset cora --trials 50
"""

from __future__ import annotations

import argparse
import json
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
)

# Reported test accuracies (%). GCN/GAT: Kipf & Welling 2017, Velickovic et al. 2018.
PAPER = {"cora": {"GCN": 81.5, "GAT": 83.0}, "citeseer": {"GCN": 70.3, "GAT": 72.5}}


def baselines(space: AGNNSpace) -> dict:
    def two_layer(att, heads, hidden, act0, heads1):
        return {"attention_0": att, "aggregation_0": "sum", "activation_0": act0,
                "heads_0": heads, "hidden_0": hidden, "attention_1": att,
                "aggregation_1": "sum", "activation_1": "linear", "heads_1": heads1}

    full = AGNNSpace(hidden=(8, 16, 64), heads=(1, 8))
    return {"GCN": (full, full.make(two_layer("gcn", 1, 16, "relu", 1))),
            "GAT": (full, full.make(two_layer("gat", 8, 8, "elu", 1)))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="cora")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--space", default="agnn-light")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--shared-epochs", type=int, default=30)
    ap.add_argument("--retrain-seeds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", default="benchmarks/out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_planetoid(args.dataset)
    space = make_space(args.space)
    search_obj = NodeClassificationObjective(
        data, TrainConfig(epochs=args.epochs, shared_epochs=args.shared_epochs, patience=50))
    final_obj = NodeClassificationObjective(data, TrainConfig(epochs=200, patience=100))
    runs = {"rcc+sharing": ("rcc", True), "rcc": ("rcc", False), "random": ("random", False)}
    report = {"dataset": args.dataset, "trials": args.trials, "space": args.space,
              "search_epochs": args.epochs, "shared_epochs": args.shared_epochs}
    cps = [c for c in (25, 50, 100, 200) if c <= args.trials]
    for name, (ctrl, sharing) in runs.items():
        res = search(space, search_obj, ctrl, trials=args.trials, sharing=sharing,
                     seed=args.seed, log=out / f"{args.dataset}_{name}_s{args.seed}.jsonl",
                     progress=True)
        entry = {"trials_per_minute": res.trials_per_minute(), "curve": res.curve(),
                 "at": {}}
        for c in cps:
            best = res.best_after(c)
            rt = retrain(space, space.make(best["arch"]["choices"]), final_obj,
                         seeds=args.retrain_seeds)
            entry["at"][c] = {"arch": best["arch"], "search_val": best["reward"],
                              "test_mean": rt["test_mean"], "test_std": rt["test_std"]}
            print(f"{name:12s} after {c:3d} trials: val {best['reward']:.4f}  retrained test "
                  f"{100 * rt['test_mean']:.2f} ± {100 * rt['test_std']:.2f}", flush=True)
        print(f"{name:12s} trials/min {entry['trials_per_minute']:.1f}; best:\n"
              + space.describe(res.best), flush=True)
        report[name] = entry
    for name, (sp, arch) in baselines(space).items():
        rt = retrain(sp, arch, final_obj, seeds=args.retrain_seeds)
        report[name] = {"test_mean": rt["test_mean"], "test_std": rt["test_std"],
                        "paper": PAPER.get(args.dataset, {}).get(name)}
        print(f"{name:12s} dyngraph {100 * rt['test_mean']:.2f} ± {100 * rt['test_std']:.2f}"
              f"  (paper {PAPER.get(args.dataset, {}).get(name)})", flush=True)
    (out / f"{args.dataset}_report_s{args.seed}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
