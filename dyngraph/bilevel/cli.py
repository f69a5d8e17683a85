"""``dyngraph design``: surrogate-assisted road network design from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register", "main_design"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``design`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "design",
        help="network design (lane addition / lane swap) with a GNN surrogate and a GA",
        description="Search lane additions or lane swaps minimising UE total travel time: a GA "
                    "scores populations with a GNN surrogate of user equilibrium, and the best "
                    "designs are re-solved exactly. Without --surrogate one is trained first "
                    "on scenarios solved into --cache (resumable).")
    p.add_argument("--network", default="sioux-falls",
                   help="'sioux-falls' (bundled) or a TNTP folder / *_net.tntp file")
    p.add_argument("--problem", choices=("lane-addition", "lane-swap"), default="lane-addition")
    p.add_argument("--budget", type=float, default=0.25,
                   help="lane addition: fraction of the candidates' total lane cost")
    p.add_argument("--candidates", default=None,
                   help="comma-separated links as TNTP node pairs, e.g. '6-8,8-6,10-16' "
                        "(default: every link / 25%% of the two-way pairs)")
    p.add_argument("--lanes", type=int, default=2,
                   help="assumed existing lanes; one lane adds capacity/lanes")
    p.add_argument("--constraint", choices=("penalty", "feasibility-first"), default="penalty")
    p.add_argument("--surrogate", default=None, help="trained surrogate (.pt)")
    p.add_argument("--cache", default="dyngraph-design-cache",
                   help="folder for scenarios, checkpoints and the trained surrogate")
    p.add_argument("--scenarios", type=int, default=20000,
                   help="scenarios to solve (~5 ms each; the default surrogate needs many)")
    p.add_argument("--epochs", type=int, default=30, help="surrogate training epochs")
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--time-limit", type=float, default=None, help="search seconds")
    p.add_argument("--stall-generations", type=int, default=10,
                   help="stop after this many generations without improvement (0: never)")
    p.add_argument("--population", type=int, default=128)
    p.add_argument("--refresh", action="store_true",
                   help="re-solve promising designs exactly during the search and fine-tune")
    p.add_argument("--top-k", type=int, default=20, help="designs verified exactly at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default=None, help="write a picture of the best design (PNG)")
    p.add_argument("--out", default=None, help="write the recommendations (JSON)")
    p.set_defaults(func=main_design)
    return p


def parse_candidates(text: str | None) -> list[tuple[int, int]] | None:
    if not text:
        return None
    out = []
    for tok in text.split(","):
        a, _, b = tok.strip().partition("-")
        try:
            out.append((int(a), int(b)))
        except ValueError:
            from dyngraph.errors import ConfigError

            raise ConfigError(f"candidate {tok!r} is not 'init-term' (TNTP node ids)") from None
    return out


def main_design(args: argparse.Namespace) -> int:
    import numpy as np

    from dyngraph.bilevel import (
        NetworkDesignProblem,
        RefreshConfig,
        SearchBudget,
        Surrogate,
        SurrogateOptimizer,
        TrainConfig,
        fit_surrogate,
    )
    from dyngraph.traffic import load_network

    net = load_network(args.network)
    problem = NetworkDesignProblem(net, args.problem, candidates=parse_candidates(args.candidates),
                                   budget=args.budget, lanes=args.lanes,
                                   constraint=args.constraint, seed=args.seed)
    print(problem)
    replay = None
    if args.surrogate:
        sur = Surrogate.load(args.surrogate, net)
    else:
        fit = fit_surrogate(net, args.scenarios, Path(args.cache),
                            train_config=TrainConfig(epochs=args.epochs, seed=args.seed))
        sur, replay = fit.surrogate, fit.train
        print(f"surrogate -> {fit.path}; held-out {fit.metrics}")
    refresh = RefreshConfig(replay=replay) if args.refresh else None
    opt = SurrogateOptimizer(problem, sur, SearchBudget(generations=args.generations,
                                                        wall_time=args.time_limit,
                                                        stall_generations=args.stall_generations
                                                        or None),
                             refresh=refresh, population=args.population, seed=args.seed)
    opt.run(progress=True)
    rec = opt.recommend(top_k=args.top_k, verify=True)
    print(rec.table(10))
    base = float(problem.evaluate_exact(np.zeros(problem.num_vars, np.int64))[0])
    print(f"do-nothing TTT {base:,.0f}; best design {rec.exact_ttt[0]:,.0f} "
          f"({100 * (rec.exact_ttt[0] / base - 1):+.2f}%); {opt.surrogate_calls} surrogate "
          f"evaluations, {opt.exact_calls} exact solves, {opt.elapsed:.1f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "problem": repr(problem), "do_nothing_ttt": base,
            "designs": rec.designs.tolist(), "exact_ttt": rec.exact_ttt.tolist(),
            "surrogate_ttt": rec.surrogate_ttt.tolist(), "cost": rec.cost.tolist(),
            "descriptions": rec.descriptions}, indent=1))
        print(f"recommendations -> {args.out}")
    if args.plot:
        from dyngraph.bilevel.plot import plot_design

        flows = opt.exact_flows(rec.best)
        plot_design(problem, rec.best, flows, path=args.plot,
                    title=f"{net.name} {args.problem}: TTT {rec.exact_ttt[0]:,.0f}")
        print(f"plot -> {args.plot}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="dyngraph")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    a = parser.parse_args()
    raise SystemExit(a.func(a))
