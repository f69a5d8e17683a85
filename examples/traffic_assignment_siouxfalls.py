"""User-equilibrium traffic assignment on Sioux Falls with dyngraph.traffic.

1. solve UE with bi-conjugate Frank–Wolfe to a relative gap of 1e-6 and compare with the
   best-known solution published with the network;
2. compare FW / CFW / BFW convergence (gap vs iteration plot);
3. generate a few perturbed scenarios in one vectorised batch, streamed to disk;
4. draw the volume/capacity map from the node coordinates.

    .venv/bin/python examples/traffic_assignment_siouxfalls.py [--fast] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dyngraph.traffic import (  # noqa: E402
    SIOUX_FALLS_BEST_TSTT,
    sioux_falls,
    sioux_falls_best_flows,
    solve_ue,
)
from dyngraph.traffic.batch import load_scenarios, run_scenarios  # noqa: E402
from dyngraph.traffic.plot import plot_network  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fast", action="store_true", help="looser gaps, fewer scenarios")
    ap.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="dyngraph_ue_"))
    out.mkdir(parents=True, exist_ok=True)
    rgap = 1e-4 if a.fast else 1e-6

    net = sioux_falls()
    print(net)
    res = solve_ue(net, rgap=rgap, method="bfw")
    best = sioux_falls_best_flows(net)
    print(res)
    rel = res.total_travel_time / SIOUX_FALLS_BEST_TSTT - 1
    print(f"total travel time {res.total_travel_time:,.2f} vs best known "
          f"{SIOUX_FALLS_BEST_TSTT:,.2f} ({rel:+.2e})"
          f"; max link-flow error {np.max(np.abs(res.flows - best) / best):.2e}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in ("fw", "cfw", "bfw"):
        r = solve_ue(net, rgap=1e-4 if a.fast else 1e-5, method=method,
                     max_iter=300 if a.fast else 3000, strict=False)
        ax.semilogy(np.arange(1, r.report.iterations + 1), r.report.gap_history,
                    label=f"{method} ({r.report.iterations} it, {r.report.wall_time:.2f} s)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("relative gap")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(out / "convergence.png", dpi=130, bbox_inches="tight")

    n = 8 if a.fast else 64
    run_dir = run_scenarios(net, n, out / "scenarios", rgap=1e-4, chunk_size=max(1, n // 2))
    data = load_scenarios(run_dir)
    tstt = data["total_travel_time"]
    print(f"{n} perturbed scenarios: TSTT {tstt.min():,.0f} .. {tstt.max():,.0f}, "
          f"iterations {data['iterations'].min()}..{data['iterations'].max()}")

    plot_network(net, res.flows, path=out / "siouxfalls_vc.png",
                 title=f"Sioux Falls UE, rgap {res.report.rgap:.1e}")
    print(f"figures and scenarios in {out}")


if __name__ == "__main__":
    main()
