"""``dyngraph ue``: solve user equilibrium on a TNTP network from the command line."""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "main_ue"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``ue`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "ue",
        help="static user-equilibrium traffic assignment on a TNTP network",
        description="Solve user equilibrium (Frank-Wolfe family) on a TNTP road network.",
    )
    p.add_argument("--network", default="sioux-falls",
                   help="'sioux-falls' (bundled), a folder with *_net.tntp/*_trips.tntp, a "
                        "*_net.tntp file, or a known name (eastern-massachusetts, ...) with "
                        "--cache-dir")
    p.add_argument("--trips", default=None, help="trip table (default: next to the net file)")
    p.add_argument("--nodes", default=None, help="node coordinates for --plot")
    p.add_argument("--cache-dir", default=None, help="where downloaded networks are kept")
    p.add_argument("--download", action="store_true",
                   help="fetch a known network from the TransportationNetworks repository")
    p.add_argument("--rgap", type=float, default=1e-4, help="target relative gap")
    p.add_argument("--method", choices=("fw", "cfw", "bfw"), default="bfw")
    p.add_argument("--max-iter", type=int, default=20_000)
    p.add_argument("--time-limit", type=float, default=None, help="seconds")
    p.add_argument("--plot", default=None, help="write a volume/capacity map (PNG) here")
    p.add_argument("--report", default=None, help="write a JSON report here")
    p.add_argument("--flows", default=None, help="write link flows (CSV) here")
    p.set_defaults(func=main_ue)
    return p


def main_ue(args: argparse.Namespace) -> int:
    import numpy as np

    from dyngraph.traffic.assignment import solve_ue
    from dyngraph.traffic.network import load_network

    net = load_network(args.network, trips=args.trips, nodes=args.nodes,
                       cache_dir=args.cache_dir, download=args.download)
    res = solve_ue(net, rgap=args.rgap, method=args.method, max_iter=args.max_iter,
                   time_limit=args.time_limit, strict=False)
    r = res.report
    status = "converged" if r.converged else "NOT converged"
    print(f"{net!r}")
    print(f"{args.method}: {status}, relative gap {r.rgap:.3g} (target {args.rgap:g}) after "
          f"{r.iterations} iterations, {r.wall_time:.3f} s")
    print(f"total travel time {res.total_travel_time:.6f}, Beckmann {res.beckmann:.6f}, "
          f"max v/c {res.volume_capacity.max():.3f}")
    if args.report:
        out = {"network": net.name, "links": net.num_links, "zones": net.num_zones,
               "total_travel_time": res.total_travel_time, "beckmann": res.beckmann,
               "report": r.to_dict()}
        with open(args.report, "w") as fh:
            json.dump(out, fh, indent=1)
        print(f"report -> {args.report}")
    if args.flows:
        rows = np.column_stack([net.init + 1, net.term + 1, res.flows, res.times,
                                res.volume_capacity])
        np.savetxt(args.flows, rows, delimiter=",", fmt=["%d", "%d", "%.9g", "%.9g", "%.6g"],
                   header="init_node,term_node,flow,time,volume_capacity", comments="")
        print(f"flows -> {args.flows}")
    if args.plot:
        from dyngraph.traffic.plot import plot_network

        plot_network(net, res.flows, path=args.plot,
                     title=f"{net.name}: UE ({args.method}, rgap {r.rgap:.1e}), "
                           f"TSTT {res.total_travel_time:,.0f}")
        print(f"plot -> {args.plot}")
    return 0 if r.converged else 1


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(prog="dyngraph")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    a = parser.parse_args()
    raise SystemExit(a.func(a))
