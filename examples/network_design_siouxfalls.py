"""Road network design on Sioux Falls with a GNN surrogate of user equilibrium.

1. solve perturbed UE scenarios exactly (demand ±20%, capacity x (1 + k/4)), resumably;
2. train the edge-weighted GIN surrogate (checkpointed), report held-out accuracy;
3. search lane additions with the GA on the surrogate, with and without refresh;
4. verify the top designs exactly and draw the network with the chosen links and the
   best travel time over the search.

    .venv/bin/python examples/network_design_siouxfalls.py            # ~minutes
    .venv/bin/python examples/network_design_siouxfalls.py --fast     # tiny, for tests
    .venv/bin/python examples/network_design_siouxfalls.py --surrogate PATH/surrogate.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dyngraph.bilevel import (
    NetworkDesignProblem,
    RefreshConfig,
    SearchBudget,
    Surrogate,
    SurrogateConfig,
    SurrogateOptimizer,
    TrainConfig,
    evaluate_surrogate,
    fit_surrogate,
    generate_scenarios,
)
from dyngraph.bilevel.plot import plot_design, plot_search_history
from dyngraph.traffic import RoutingGraph, sioux_falls, solve_ue


def main() -> None:
    ap = argparse.ArgumentParser(description="Sioux Falls lane addition with a GNN surrogate")
    ap.add_argument("--fast", action="store_true", help="tiny settings (seconds)")
    ap.add_argument("--out", default="out/network_design", help="figures and cache")
    ap.add_argument("--surrogate", default=None, help="use this trained surrogate")
    ap.add_argument("--budget", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_scen, epochs, gens = (48, 3, 3) if args.fast else (20000, 30, 20)

    net = sioux_falls()
    graph = RoutingGraph(net)
    base = solve_ue(net, rgap=1e-4)
    # candidates: the 12 most congested links (v/c at base UE)
    cand = np.argsort(-base.flows / net.capacity, kind="stable")[:12]
    problem = NetworkDesignProblem(net, "lane-addition", candidates=cand.tolist(),
                                   budget=args.budget)
    print(problem, f"- do-nothing TTT {base.total_travel_time:,.0f}")

    if args.surrogate:  # a trained one: the scenarios only serve as held-out and replay data
        data = generate_scenarios(net, n_scen, out / "scenarios", progress=not args.fast)
        train, _, test = data.split(0.1, 0.05, seed=0)
        sur_path = Path(args.surrogate)
    else:  # scenarios solved exactly, surrogate trained and saved, all resumable from `out`
        fit = fit_surrogate(net, n_scen, out,
                            SurrogateConfig(global_hidden=64 if args.fast else 512),
                            TrainConfig(epochs=epochs), progress=not args.fast)
        train, test, sur_path = fit.train, fit.test, fit.path
    print("held-out:", evaluate_surrogate(Surrogate.load(sur_path, net), test))

    runs, recs = {}, {}
    for name, refresh in (("GA on surrogate", None),
                          ("GA + refresh", RefreshConfig(every=1 if args.fast else 5, top_k=8,
                                                         epochs=5, replay=train))):
        opt = SurrogateOptimizer(problem, Surrogate.load(sur_path, net),
                                 SearchBudget(generations=gens), refresh=refresh, seed=0,
                                 graph=graph)
        opt.run()
        rec = opt.recommend(top_k=5 if args.fast else 20, verify=True)
        runs[name] = opt
        recs[name] = rec
        print(f"\n{name}: {opt.surrogate_calls} surrogate evaluations, {opt.exact_calls} exact "
              f"solves, {opt.elapsed:.1f} s")
        print(rec.table(5))

    name = min(recs, key=lambda k: recs[k].exact_ttt[0])
    best, ttt = recs[name].best, recs[name].exact_ttt[0]
    flows = runs[name].exact_flows(best)
    plot_design(problem, best, flows, path=out / "design.png",
                title=f"Sioux Falls lane addition: TTT {ttt:,.0f} "
                      f"({100 * (ttt / base.total_travel_time - 1):+.2f}%)")
    plot_search_history(runs, path=out / "search.png")
    print(f"\nfigures -> {out / 'design.png'}, {out / 'search.png'}")


if __name__ == "__main__":
    main()
