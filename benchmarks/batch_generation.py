"""Batched UE scenario generation vs one-by-one ``solve_ue``, same process, same scenarios.

For each network and target relative gap, ``--scenarios`` perturbed scenarios (the paper's
demand x U(0.8, 1.2) per OD pair, capacity x (1 + k/4), k in -2..2 per link; ScenarioSampler
seed 1) are solved

* one by one: ``solve_ue`` (bi-conjugate FW, cold start, the same gap, a reused
  ``RoutingGraph``) on the first ``--singles`` scenarios — the honest single-scenario baseline;
* batched: ``solve_ue_batch`` over chunks of ``--chunk`` scenarios (same method and gap), at
  most ``--width`` of them iterating together (a converged one makes room for the next);
* to disk: ``run_scenarios`` (chunked, streamed, resumable) with 1 and 2 worker processes.

Singles and batches alternate for ``--repeat`` rounds and the ratio is the median of the
per-round ratios, so slow phases of a shared machine hit both sides. Because the singles are a
sample, ``speedup_iteration_matched`` also scales their seconds per iteration to the batch's
iteration counts (same scenarios, same work). Every batched scenario
that was also solved alone must agree with it: same iteration count and link flows equal to
~1e-9 relative (the two runs do the same arithmetic), and every batched gap <= target.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batch_generation.py [--fast]

Writes ``benchmarks/results/batch_generation.json`` (``--out``). Timings on a shared machine
are noisy; ratios measured in one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dyngraph.traffic import (  # noqa: E402
    RoutingGraph,
    ScenarioSampler,
    TrafficNetwork,
    load_network,
    load_scenarios,
    run_scenarios,
    sioux_falls,
    solve_ue,
    solve_ue_batch,
)
from dyngraph.traffic.paths import BACKEND_ENV, aon_backend  # noqa: E402


def bench(net: TrafficNetwork, n: int, k: int, rgap: float, chunk: int, repeat: int,
          jobs: tuple[int, ...], width: int | None = None) -> dict:
    sampler = ScenarioSampler(seed=1)
    cap, dem = sampler(net, np.arange(n))
    k = min(k, n)
    g = RoutingGraph(net)
    solve_ue(net, rgap=1e-2, graph=g)  # warm-up (native library load, caches)
    one_s, batch_s, ratios, cpu_ratios, matched = [], [], [], [], []
    singles = batch = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        singles = [solve_ue(net, rgap=rgap, method="bfw", capacity=cap[i], demand=dem[i],
                            graph=g) for i in range(k)]
        one, one_cpu = (time.perf_counter() - t0) / k, (time.process_time() - c0) / k
        t0, c0 = time.perf_counter(), time.process_time()
        parts = [solve_ue_batch(net, capacity=cap[lo:lo + chunk], demand=dem[lo:lo + chunk],
                                rgap=rgap, method="bfw", graph=g, strict=True, width=width)
                 for lo in range(0, n, chunk)]
        per, per_cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
        one_s.append(one)
        batch_s.append(per)
        ratios.append(one / per)
        cpu_ratios.append(one_cpu / per_cpu)
        batch = {f: np.concatenate([getattr(p, f) for p in parts])
                 for f in ("flows", "total_travel_time", "rgap", "iterations")}
        # The singles are a sample; a one-by-one solve costs ~ its iteration count (checked:
        # every sampled scenario takes the same iterations alone and batched), so the
        # one-by-one time of *all* n scenarios is estimated as the sample's seconds per
        # iteration times the batch's iterations. This removes the sampling bias of `speedup`
        # (at rgap 1e-6 iteration counts vary ~10x between scenarios).
        per_it = one * k / sum(s.report.iterations for s in singles)
        matched.append(per_it * float(batch["iterations"].mean()) / per)
    sf = np.stack([s.flows for s in singles])
    bf = batch["flows"][:k]
    agree = {
        "same_iterations": int(sum(int(s.report.iterations) == int(batch["iterations"][i])
                                   for i, s in enumerate(singles))),
        "compared": k,
        "max_abs_flow_diff": float(np.max(np.abs(sf - bf))),
        "max_rel_flow_diff": float(np.max(np.abs(sf - bf) / np.maximum(np.abs(sf), 1.0))),
        "max_rel_tstt_diff": float(np.max(np.abs(
            batch["total_travel_time"][:k] - [s.total_travel_time for s in singles])
            / np.array([s.total_travel_time for s in singles]))),
        "max_batch_rgap": float(batch["rgap"].max()),
        "max_single_rgap": float(max(s.report.rgap for s in singles)),
    }
    out = {
        "network": net.name, "links": net.num_links, "zones": net.num_zones,
        "rgap": rgap, "method": "bfw", "scenarios": n, "singles": k, "chunk": chunk,
        "width": width, "repeat": repeat,
        "single_ms_per_scenario": 1e3 * statistics.median(one_s),
        "batch_ms_per_scenario": 1e3 * statistics.median(batch_s),
        "speedup": statistics.median(ratios),
        "speedup_rounds": ratios,
        "speedup_iteration_matched": statistics.median(matched),
        "speedup_iteration_matched_rounds": matched,
        "cpu_time_speedup": statistics.median(cpu_ratios),
        "cpu_time_speedup_rounds": cpu_ratios,
        "iterations_single_mean": float(np.mean([s.report.iterations for s in singles])),
        "iterations_batch_mean": float(batch["iterations"].mean()),
        "iterations_batch_max": int(batch["iterations"].max()),
        "agreement": agree,
        "run_scenarios": {},
    }
    one_ref = out["single_ms_per_scenario"]
    print(f"\n== {net.name} ({net.num_links} links, {net.num_zones} zones), rgap {rgap:g}, "
          f"{n} scenarios")
    print(f"one-by-one solve_ue : {one_ref:8.2f} ms/scenario ({k} scenarios, "
          f"{out['iterations_single_mean']:.0f} it. avg)")
    print(f"solve_ue_batch      : {out['batch_ms_per_scenario']:8.2f} ms/scenario (chunks of "
          f"{chunk}, width {width or 'all'}, {out['iterations_batch_mean']:.0f} it. avg)")
    print(f"speed-up per scenario: {out['speedup']:.1f}x wall (median of rounds "
          f"{', '.join(f'{r:.1f}' for r in ratios)}), {out['cpu_time_speedup']:.1f}x CPU time; "
          f"{out['speedup_iteration_matched']:.1f}x matched to the batch's iteration counts")
    print(f"agreement on {k}: same iterations {agree['same_iterations']}/{k}, max |flow diff| "
          f"{agree['max_abs_flow_diff']:.2e} veh (rel {agree['max_rel_flow_diff']:.1e}), "
          f"max batch rgap {agree['max_batch_rgap']:.2e}")
    for j in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_scenarios(net, n, tmp, sampler=sampler, rgap=rgap, chunk_size=max(1, n // 4),
                          n_jobs=j, progress=False, width=width)
            per = 1e3 * (time.perf_counter() - t0) / n
            disk = load_scenarios(tmp)
        same = float(np.max(np.abs(disk["flows"] - batch["flows"])))
        one_matched = (one_ref / out["iterations_single_mean"]) * out["iterations_batch_mean"]
        out["run_scenarios"][str(j)] = {"ms_per_scenario": per, "speedup": one_ref / per,
                                        "speedup_iteration_matched": one_matched / per,
                                        "chunk_size": max(1, n // 4),
                                        "max_abs_flow_diff_vs_batch": same}
        print(f"run_scenarios n_jobs={j} (to disk, chunks of {max(1, n // 4)}): {per:8.2f} "
              f"ms/scenario -> {one_ref / per:.1f}x vs one-by-one ({one_matched / per:.1f}x "
              f"iteration-matched; max |flow diff| vs batch {same:.1e})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ema-dir", default="/work/shared/data/transport/Eastern-Massachusetts")
    ap.add_argument("--gaps", default="1e-4,1e-6")
    ap.add_argument("--scenarios", type=int, default=256)
    ap.add_argument("--singles", type=int, default=24)
    ap.add_argument("--ema-scenarios", type=int, default=64)
    ap.add_argument("--ema-gaps", default="1e-4")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--width", type=int, default=128,
                    help="scenarios iterating together within a chunk (0: all); a converged "
                         "one makes room for the next, see solve_ue_batch")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"
                                         / "batch_generation.json"))
    ap.add_argument("--fast", action="store_true", help="tiny settings (smoke test)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    gaps = [float(x) for x in a.gaps.split(",")]
    ema_gaps = [float(x) for x in a.ema_gaps.split(",")] if a.ema_gaps else []
    jobs = tuple(int(x) for x in a.jobs.split(",") if x)
    if a.fast:
        gaps, ema_gaps, jobs = [1e-3], [], (1,)
        a.scenarios, a.singles, a.repeat, a.chunk = 16, 4, 1, 8
    backend = aon_backend()
    print(f"AON backend: {backend} (${BACKEND_ENV}={os.environ.get(BACKEND_ENV, 'auto')}), "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    runs = []
    sf = sioux_falls()
    for gap in gaps:
        runs.append(bench(sf, a.scenarios, a.singles, gap, a.chunk, a.repeat, jobs,
                          a.width or None))
    if ema_gaps and Path(a.ema_dir).is_dir():
        ema = load_network(a.ema_dir)
        for gap in ema_gaps:
            runs.append(bench(ema, a.ema_scenarios, max(4, a.singles // 3), gap, a.chunk,
                              a.repeat, jobs, a.width or None))
    result = {
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, no GPU, shared/loaded",
        "benchmark": "batched UE scenario generation vs one-by-one solve_ue",
        "command": "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(sys.argv),
        "aon_backend": backend,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "note": "shared 2-core machine, timings noisy; speedup = median over rounds of "
                "(one-by-one s/scenario) / (batched s/scenario) measured in the same process "
                "(wall clock; cpu_time_speedup the same with process CPU time, insensitive to "
                "other jobs); run_scenarios n_jobs=2 only gains when both cores are free",
        "runs": runs,
    }
    if not a.fast:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
        print(f"\nresults -> {a.out}")


if __name__ == "__main__":
    main()
