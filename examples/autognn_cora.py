"""Auto-GNN on Cora: RCC (with constrained parameter sharing) vs random search at the same
trial budget; plots best validation accuracy vs trials, prints the final architecture and
its test accuracy retrained from scratch over several seeds.

    .venv/bin/python examples/autognn_cora.py            # 50 trials each, 10 seeds
    .venv/bin/python examples/autognn_cora.py --fast     # tiny settings (smoke test)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dyngraph.nas import (
    NodeClassificationObjective,
    TrainConfig,
    load_planetoid,
    make_space,
    retrain,
    search,
)
from dyngraph.nas.cli import plot_curves


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="cora")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--fast", action="store_true", help="tiny settings")
    ap.add_argument("--plot", default="autognn_cora.png")
    ap.add_argument("--logdir", default=None, help="keep resumable trial logs here")
    args = ap.parse_args()
    trials, seeds = (4, 2) if args.fast else (args.trials, args.seeds)
    cfg = TrainConfig(epochs=10, shared_epochs=3, threads=1) if args.fast else TrainConfig(
        epochs=100, shared_epochs=30, patience=50)
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="autognn-"))
    data = load_planetoid(args.dataset)
    space = make_space("agnn-light")
    objective = NodeClassificationObjective(data, cfg)
    results = {}
    for name, ctrl in (("RCC", "rcc"), ("random", "random")):
        kwargs = {"num_initial": 2} if args.fast and ctrl == "rcc" else None
        results[name] = search(space, objective, ctrl, trials=trials, seed=0,
                               controller_kwargs=kwargs,
                               log=logdir / f"{args.dataset}_{ctrl}.jsonl")
        print(f"{name}: best validation accuracy {results[name].best_reward:.4f} "
              f"({results[name].trials_per_minute():.1f} trials/min)")
    plot_curves({k: r.curve() for k, r in results.items()}, args.plot,
                f"Auto-GNN on {args.dataset}")
    print(f"plot: {args.plot}   trial logs: {logdir}")
    best = results["RCC"].best
    print("final architecture (RCC):\n" + space.describe(best))
    final = TrainConfig(epochs=10, threads=1) if args.fast else TrainConfig()
    rt = retrain(space, best, NodeClassificationObjective(data, final), seeds=seeds)
    print(f"test accuracy over {seeds} seeds: {100 * rt['test_mean']:.2f} ± "
          f"{100 * rt['test_std']:.2f}")


if __name__ == "__main__":
    main()
