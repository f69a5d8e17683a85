"""Data-parallel scaling of the memory models: ``dyngraph linkpred --nproc N`` vs one process at
the same *global* temporal batch (so both runs see the same batches, memory and weights up to
float rounding). Prints training events/second (median over epochs, rank 0's wall clock),
the ratio, and test AP of each run.

    .venv/bin/python benchmarks/ddp_scaling.py --model tgn --dataset uci --batch-size 1600 \\
        --epochs 3 --pres --nproc 2

On a 2-core machine shared with other jobs the ratio is bounded by the free cores; the
communication per batch is one gradient all-reduce and one all-gather of O(batch x memory).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"


def run(nproc: int, a: argparse.Namespace) -> dict:
    from dyngraph.train.cli import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    with tempfile.TemporaryDirectory() as tmp:
        rep = str(Path(tmp) / "r.json")
        argv = ["linkpred", "--model", a.model, "--dataset", a.dataset, "--batch-size",
                str(a.batch_size), "--epochs", str(a.epochs), "--patience", str(a.epochs + 1),
                "--mrr-negatives", "0", "--no-progress", "--seed", str(a.seed),
                "--nproc", str(nproc), "--report", rep]
        if a.pres:
            argv.append("--pres")
        args = p.parse_args(argv)
        t0 = time.perf_counter()
        args.func(args)
        wall = time.perf_counter() - t0
        r = json.loads(Path(rep).read_text())
    return {"nproc": nproc, "events_per_s": r["train_events_per_s"],
            "epoch_times": r["epoch_times"], "test_ap": r["test"]["ap"], "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tgn")
    ap.add_argument("--dataset", default="uci")
    ap.add_argument("--batch-size", type=int, default=1600)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pres", action="store_true")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--out", default=str(OUT / "ddp_scaling.json"))
    a = ap.parse_args()
    rows = [run(1, a), run(a.nproc, a)]
    base = rows[0]["events_per_s"]
    print(f"\n{a.model.upper()}{' + PRES' if a.pres else ''} on {a.dataset}, global batch "
          f"{a.batch_size}, {a.epochs} epochs")
    print(f"{'procs':>5s} {'train events/s':>15s} {'ratio':>6s} {'test AP':>8s} {'wall s':>7s}")
    for r in rows:
        print(f"{r['nproc']:5d} {r['events_per_s']:15,.0f} {r['events_per_s'] / base:6.2f} "
              f"{100 * r['test_ap']:8.2f} {r['wall_s']:7.1f}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
