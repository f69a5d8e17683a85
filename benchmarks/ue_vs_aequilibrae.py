"""User equilibrium: dyngraph vs AequilibraE (bi-conjugate Frank–Wolfe), same process, same data.

Part 1 — time and iterations to relative gap 1e-4 / 1e-5 / 1e-6 on Sioux Falls (bundled) and
Eastern Massachusetts (``--ema-dir``; not bundled, see datasets/PROVENANCE). Each gap is a
separate solve with that target, for both libraries; medians over ``--repeat`` runs.
AequilibraE runs single-threaded by default (``--aeq-cores``), like dyngraph.

Part 2 — batched scenario generation: ``--scenarios`` perturbed Sioux Falls scenarios (the
paper's demand ±20 %, capacity × (1 + k/4)) solved one by one with ``solve_ue`` and together
with ``solve_ue_batch``; seconds per scenario and the ratio (``--skip-batch`` to leave it out;
``benchmarks/batch_generation.py`` measures it in more detail).

    .venv/bin/python benchmarks/ue_vs_aequilibrae.py [--fast]

Results go to ``benchmarks/results/ue_vs_aequilibrae.json`` (``--out``).

Timings on a shared machine are noisy; compare ratios measured in the same run.

AequilibraE's Cython kernels use OpenMP; with OpenMP's default busy-wait policy on an
oversubscribed machine one of its iterations took ~0.4 s instead of ~15 ms, so this script sets
``OMP_WAIT_POLICY=passive`` and ``OMP_NUM_THREADS`` (= ``--aeq-cores``) before importing it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys

if __name__ == "__main__":  # must precede any OpenMP runtime start-up
    _cores = sys.argv[sys.argv.index("--aeq-cores") + 1] if "--aeq-cores" in sys.argv else "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ.setdefault("OMP_NUM_THREADS", _cores)
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from dyngraph.traffic import (
    RoutingGraph,
    TrafficNetwork,
    load_network,
    sioux_falls,
    solve_ue,
    solve_ue_batch,
)
from dyngraph.traffic.batch import ScenarioSampler, run_scenarios

GAPS = (1e-4, 1e-5, 1e-6)


def aeq_solver(net: TrafficNetwork, cores: int):
    """Return ``solve(rgap) -> (seconds, iterations, tstt, flows, final rgap)`` for AequilibraE."""
    import pandas as pd
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    e, z = net.num_links, net.num_zones
    df = pd.DataFrame({
        "link_id": np.arange(1, e + 1), "a_node": net.init + 1, "b_node": net.term + 1,
        "direction": np.ones(e, dtype=int), "free_flow_time": net.free_flow_time,
        "capacity": net.capacity, "b": net.b, "power": net.power,
    })
    index = np.arange(1, z + 1, dtype=np.int64)

    def solve(rgap: float):
        g = Graph()
        g.network = df.copy()
        g.prepare_graph(centroids=index)
        g.set_graph("free_flow_time")
        g.set_skimming(["free_flow_time"])
        g.set_blocked_centroid_flows(net.first_thru_node > 1)
        mat = AequilibraeMatrix()
        mat.create_empty(zones=z, matrix_names=["demand"], memory_only=True)
        mat.index = index
        mat.matrices[:, :, 0] = net.demand
        mat.computational_view(["demand"])
        assig = TrafficAssignment()
        assig.set_classes([TrafficClass("car", g, mat)])
        assig.set_vdf("BPR")
        assig.set_vdf_parameters({"alpha": "b", "beta": "power"})
        assig.set_capacity_field("capacity")
        assig.set_time_field("free_flow_time")
        assig.set_algorithm("bfw")
        assig.set_cores(cores)
        assig.max_iter = 20_000
        assig.rgap_target = rgap
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            assig.execute()  # its progress bars would flood the output
        sec = time.perf_counter() - t0
        rep = assig.report()
        res = assig.results()
        flows = np.zeros(e)
        flows[res.index.values - 1] = res["demand_ab"].values
        t = net.free_flow_time * (1 + net.b * (flows / net.capacity) ** net.power)
        final_gap = float(rep["rgap"].iloc[-1])
        return sec, int(rep["iteration"].max()), float(flows @ t), flows, final_gap

    return solve


def bench_gaps(net: TrafficNetwork, repeat: int, aeq_cores: int, skip_aeq: bool) -> list[dict]:
    print(f"\n== {net.name}: {net.num_nodes} nodes, {net.num_links} links, {net.num_zones} zones")
    aeq = None
    aeq_version = None
    rows: list[dict] = []
    if not skip_aeq:
        try:
            from importlib.metadata import version

            aeq = aeq_solver(net, aeq_cores)
            aeq_version = version("aequilibrae")
            print(f"AequilibraE {aeq_version} (cores={aeq_cores})")
        except ImportError:
            print("AequilibraE not installed (.venv/bin/pip install aequilibrae): dyngraph only")
    g = RoutingGraph(net)
    solve_ue(net, rgap=1e-3, graph=g)  # warm-up
    print(f"{'gap':>6} | {'dyngraph s':>10} {'it':>5} | {'AequilibraE s':>13} {'it':>5} | "
          f"{'speed-up':>8} | {'TSTT dyngraph':>15} {'TSTT AequilibraE':>17}")
    for gap in GAPS:
        ts, res = [], None
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = solve_ue(net, rgap=gap, method="bfw", graph=g)
            ts.append(time.perf_counter() - t0)
        ours = statistics.median(ts)
        line = f"{gap:6.0e} | {ours:10.3f} {res.report.iterations:5d} | "
        row = {"network": net.name, "links": net.num_links, "zones": net.num_zones,
               "rgap": gap, "dyngraph_s": ours, "dyngraph_iterations": res.report.iterations,
               "dyngraph_tstt": res.total_travel_time, "dyngraph_runs": ts}
        if aeq is not None:
            runs = []
            for _ in range(max(1, repeat // 3)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    runs.append(aeq(gap))
            sec = statistics.median(r[0] for r in runs)
            _, it, tstt, flows, rg = runs[0]
            line += (f"{sec:13.3f} {it:5d} | {sec / ours:7.1f}x | {res.total_travel_time:15.2f} "
                     f"{tstt:17.2f}")
            err = float(np.max(np.abs(flows - res.flows) / np.maximum(res.flows, 1.0)))
            row.update(aequilibrae_version=aeq_version, aequilibrae_s=sec,
                       aequilibrae_iterations=it, aequilibrae_tstt=tstt,
                       aequilibrae_final_rgap=rg, speedup=sec / ours,
                       max_rel_link_flow_diff=err, aequilibrae_runs=[r[0] for r in runs])
            if gap == GAPS[-1]:
                line += f"   (max rel. link-flow diff {err:.2e}, AequilibraE final rgap {rg:.2e})"
        else:
            line += f"{'-':>13} {'-':>5} | {'-':>8} | {res.total_travel_time:15.2f}"
        print(line, flush=True)
        rows.append(row)
    return rows


def bench_batch(net: TrafficNetwork, n: int, rgap: float, n_single: int, chunk: int) -> dict:
    print(f"\n== batched scenario generation on {net.name}: {n} scenarios, rgap {rgap:g}")
    sampler = ScenarioSampler(seed=1)
    cap, dem = sampler(net, np.arange(n))
    k = min(n_single, n)
    t0 = time.perf_counter()
    singles = [solve_ue(net, rgap=rgap, capacity=cap[i], demand=dem[i]) for i in range(k)]
    one = (time.perf_counter() - t0) / k
    g = RoutingGraph(net)
    t0 = time.perf_counter()
    flows = []
    for lo in range(0, n, chunk):
        r = solve_ue_batch(net, capacity=cap[lo:lo + chunk], demand=dem[lo:lo + chunk],
                           rgap=rgap, graph=g, strict=True)
        flows.append(r.flows)
    batched = (time.perf_counter() - t0) / n
    flows = np.concatenate(flows)
    diff = max(np.max(np.abs(flows[i] - singles[i].flows)) for i in range(k))
    its = np.mean([s.report.iterations for s in singles])
    print(f"one-by-one solve_ue: {one * 1e3:8.2f} ms/scenario ({k} scenarios, {its:.0f} it. avg)")
    print(f"solve_ue_batch     : {batched * 1e3:8.2f} ms/scenario (chunks of {chunk})")
    print(f"speed-up per scenario: {one / batched:.1f}x   (max |flow diff| vs one-by-one "
          f"{diff:.2e} veh)")
    out = {"network": net.name, "rgap": rgap, "scenarios": n, "singles": k, "chunk": chunk,
           "single_ms_per_scenario": one * 1e3, "batch_ms_per_scenario": batched * 1e3,
           "speedup": one / batched, "max_abs_flow_diff": float(diff), "run_scenarios": {}}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_scenarios(net, n, tmp, sampler=sampler, rgap=rgap, chunk_size=max(1, n // 4),
                          n_jobs=jobs, progress=False)
            per = (time.perf_counter() - t0) / n
        print(f"run_scenarios n_jobs={jobs} (to disk): {per * 1e3:8.2f} ms/scenario -> "
              f"{one / per:.1f}x vs one-by-one")
        out["run_scenarios"][str(jobs)] = {"ms_per_scenario": per * 1e3, "speedup": one / per}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ema-dir", default="/work/shared/data/transport/Eastern-Massachusetts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--aeq-cores", type=int, default=1)
    ap.add_argument("--skip-aeq", action="store_true")
    ap.add_argument("--scenarios", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"
                                         / "ue_vs_aequilibrae.json"))
    ap.add_argument("--fast", action="store_true", help="tiny settings (smoke test)")
    a = ap.parse_args()
    nets = [sioux_falls()]
    if Path(a.ema_dir).is_dir():
        nets.append(load_network(a.ema_dir))
    else:
        print(f"Eastern Massachusetts not found at {a.ema_dir}; pass --ema-dir")
    if a.fast:
        global GAPS
        GAPS = (1e-3, 1e-4)
        a.repeat, a.scenarios, a.chunk = 1, 16, 8
    from dyngraph.traffic.paths import aon_backend

    gaps = [row for net in nets for row in bench_gaps(net, a.repeat, a.aeq_cores, a.skip_aeq)]
    batches = []
    if not a.skip_batch:
        batches.append(bench_batch(nets[0], a.scenarios, 1e-4, n_single=min(32, a.scenarios),
                                   chunk=a.chunk))
        if len(nets) > 1:
            batches.append(bench_batch(nets[1], a.scenarios // 2, 1e-4,
                                       n_single=min(16, a.scenarios), chunk=a.chunk))
    if not a.fast:
        result = {
            "benchmark": "UE time to relative gap: dyngraph BFW vs AequilibraE BFW",
            "command": ".venv/bin/python " + " ".join(sys.argv),
            "aon_backend": aon_backend(), "aeq_cores": a.aeq_cores, "repeat": a.repeat,
            "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
            "python": platform.python_version(),
            "note": "shared 2-core machine, timings noisy; medians over repeats, both "
                    "libraries single-threaded in one process",
            "gaps": gaps, "batch": batches,
        }
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(f"\nresults -> {a.out}")


if __name__ == "__main__":
    main()
