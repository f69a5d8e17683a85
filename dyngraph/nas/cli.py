"""``dyngraph search``: architecture search from the command line.

Example::

    dyngraph search --dataset cora --controller rcc --trials 200 --report out.json
    dyngraph search --dataset nasbench:citeseer --controller random --trials 100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dyngraph.errors import ConfigError

__all__ = ["register", "run", "plot_curves"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``search`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "search",
        help="Auto-GNN architecture search (RCC / random / evolution)",
        description="Search a GNN architecture on Cora/CiteSeer or NAS-Bench-Graph.",
    )
    p.add_argument("--dataset", default="cora",
                   help="cora | citeseer | nasbench:<cora|citeseer|pubmed|photo|arxiv|...>")
    p.add_argument("--controller", default="rcc", choices=["rcc", "random", "evolution"])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--time-budget", type=float, default=None, help="seconds")
    p.add_argument("--space", default="agnn", help="agnn (paper) or agnn-light (cheaper)")
    p.add_argument("--no-sharing", action="store_true", help="disable parameter sharing")
    p.add_argument("--verify-shared", type=int, default=5,
                   help="retrain from scratch shared children entering the top-k (0: never)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--shared-epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--threads", type=int, default=None, help="torch threads per trial")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="JSON-lines trial log (resumed if present)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--runner", default="local", choices=["local", "ray"])
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--batch-size", type=int, default=None,
                   help="trials evaluated together (default: 1 local, --num-cpus on ray)")
    p.add_argument("--retrain-seeds", type=int, default=10)
    p.add_argument("--select-top", type=int, default=1,
                   help="pick the final architecture among this many best distinct ones by "
                        "mean validation accuracy over --select-seeds retrains (1: the single "
                        "best search trial)")
    p.add_argument("--select-seeds", type=int, default=3)
    p.add_argument("--report", default=None, help="write a JSON report here")
    p.add_argument("--plot", default=None, help="save best-validation-vs-trials plot here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
    return p


def _setup(args: argparse.Namespace):
    from dyngraph.nas.objective import NodeClassificationObjective, TrainConfig, load_planetoid
    from dyngraph.nas.space import make_space

    if args.dataset.startswith("nasbench:"):
        from dyngraph.nas.nasbench import NasBenchGraphObjective, NasBenchGraphSpace

        return NasBenchGraphSpace(), NasBenchGraphObjective(args.dataset.split(":", 1)[1])
    cfg = TrainConfig(epochs=args.epochs, shared_epochs=args.shared_epochs,
                      patience=args.patience, threads=args.threads)
    return make_space(args.space), NodeClassificationObjective(load_planetoid(args.dataset), cfg)


def plot_curves(
    curves: dict[str, list[float]],
    path: str | Path,
    title: str = "",
    ylim: tuple[float, float] | None = None,
) -> None:
    """Best validation accuracy vs number of trials, one line per search (``ylim`` zooms in
    on the late part of the curves, where searches differ by fractions of a point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.plot(range(1, len(c) + 1), c, label=name)
    ax.set_xlabel("trials")
    ax.set_ylabel("best validation accuracy")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from dyngraph.nas.runners import InProcessRunner, RayRunner
    from dyngraph.nas.search import retrain, search, select_final

    if args.trials < 1:
        raise ConfigError("--trials must be >= 1")
    space, objective = _setup(args)
    runner = RayRunner(num_cpus=args.num_cpus) if args.runner == "ray" else InProcessRunner()
    batch = args.batch_size or (args.num_cpus if args.runner == "ray" else 1)
    try:
        result = search(
            space, objective, args.controller, trials=args.trials,
            time_budget=args.time_budget, sharing=not args.no_sharing, log=args.log,
            verify_shared=args.verify_shared,
            resume=not args.no_resume, seed=args.seed, batch_size=batch, runner=runner,
            progress=not args.quiet,
        )
    finally:
        runner.close()
    report = result.to_dict()
    best = result.best
    if args.select_top > 1 and getattr(objective, "supports_sharing", False):
        best, cands = select_final(space, result, objective, top_k=args.select_top,
                                   seeds=args.select_seeds)
        report["final_selection"] = cands
        report["best"] = best.to_dict()
    how = (f"best mean validation accuracy of the top {args.select_top} over "
           f"{args.select_seeds} retrains" if "final_selection" in report
           else f"validation accuracy {result.best_reward:.4f}")
    print(f"best architecture after {len(result.trials)} trials ({how}):")
    print(space.describe(best))
    if result.replayed:
        print(f"(resumed: {result.replayed} trials replayed from {args.log})")
    if getattr(objective, "supports_sharing", False) and args.retrain_seeds > 0:
        rt = retrain(space, best, objective, seeds=args.retrain_seeds, progress=not args.quiet)
        report["retrain"] = rt
        print(f"retrained from scratch over {args.retrain_seeds} seeds: test accuracy "
              f"{100 * rt['test_mean']:.2f} ± {100 * rt['test_std']:.2f}")
    elif hasattr(objective, "best_test"):
        test = result.best_after(len(result.trials))["metrics"]["test_acc"]
        report["regret"] = objective.best_test - test
        print(f"table test accuracy {test:.4f}; regret {report['regret']:.4f}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    if args.plot:
        plot_curves({args.controller: result.curve()}, args.plot, args.dataset)
    return 0
