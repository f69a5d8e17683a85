"""EvolveGCN-O / EvolveGCN-H / static GCN on the paper's datasets, mean ± std over seeds.

Runs ``dyngraph.train.snapshot.run_snapshot_linkpred`` for every (task, dataset, model, seed)
of the grid, stores one JSON report per run in ``--out`` (runs already there are skipped, so
the script resumes after an interruption) and prints the tables next to the numbers
published in the EvolveGCN paper (Table 3) and ROLAND's MRR.

    python benchmarks/evolvegcn_results.py --out results/evolvegcn \\
        --tasks linkpred:uci edgecls:bitcoin-otc --seeds 0 1 2 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from dyngraph.train.snapshot import PAPER_RESULTS, run_snapshot_linkpred

MODELS = ["gcn", "evolvegcn-h", "evolvegcn-o"]


def _fmt(vals: list[float]) -> str:
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}"


def run_grid(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.tasks:
        task, dataset = spec.split(":")
        for model in args.models:
            for seed in args.seeds:
                path = out / f"{task}_{dataset}_{model}_s{seed}.json"
                if path.exists():
                    continue
                t0 = time.perf_counter()
                ns = argparse.Namespace(
                    dataset=dataset,
                    model=model,
                    task=task,
                    seed=seed,
                    epochs=args.epochs,
                    mode=args.mode,
                    neg_train=args.neg_train,
                    eval_every=args.eval_every,
                    patience=args.patience,
                    hidden=args.hidden,
                    threads=args.threads,
                    lr=args.lr,
                    progress=args.progress,
                    report=str(path),
                    cls_product=args.cls_product,
                    full_val_max_nodes=args.full_val_max_nodes,
                    checkpoint=str(out / f".{path.stem}.ckpt"),
                )
                res = run_snapshot_linkpred(ns)
                keys = ("map", "mrr") if task == "linkpred" else ("f1", "f1_macro")
                print(
                    f"{path.stem}: "
                    + ", ".join(f"{k}={res[k]:.4f}" for k in keys)
                    + f" ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )


def print_tables(out: Path) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for task in ("linkpred", "edgecls"):
        sel = [r for r in runs if r["task"] == task]
        if not sel:
            continue
        datasets = sorted({r["dataset"] for r in sel})
        metrics = ("map", "mrr") if task == "linkpred" else ("f1", "f1_macro")
        print(
            f"\n### {task} ({sel[0]['mode']} mode, history {sel[0]['history']}, "
            f"product decoder {sel[0].get('cls_product')}, "
            f"neg x{sel[0].get('neg_train')})\n"
        )
        head = ["model"] + [f"{d} {m.upper()}" for d in datasets for m in metrics]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for model in MODELS:
            cells = [model]
            for d in datasets:
                rs = [r for r in sel if r["model"] == model and r["dataset"] == d]
                for m in metrics:
                    cells.append(_fmt([r[m] for r in rs]) + (f" (n={len(rs)})" if rs else ""))
            print("| " + " | ".join(cells) + " |")
            if task == "linkpred" and model in PAPER_RESULTS:
                paper = ["paper " + model]
                for d in datasets:
                    pm = PAPER_RESULTS[model].get(d, (None, None))
                    paper += [f"{v:.4f}" if v is not None else "—" for v in pm]
                print("| " + " | ".join(paper) + " |")
        if task == "linkpred":
            rol = ["ROLAND-GRU (MRR)"]
            for d in datasets:
                rol += ["—", f"{PAPER_RESULTS['roland-gru'].get(d, (None, None))[1]}"]
            print("| " + " | ".join(rol) + " |")
        times = {}
        for r in sel:
            times.setdefault((r["dataset"], r["model"]), []).append(r["times"]["epoch_s_median"])
        print(
            "\nmedian train-epoch seconds (shared, noisy CPU): "
            + ", ".join(
                f"{d}/{m} {statistics.median(v):.1f}" for (d, m), v in sorted(times.items())
            )
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/evolvegcn")
    p.add_argument(
        "--tasks",
        nargs="+",
        default=[
            "linkpred:uci",
            "edgecls:bitcoin-otc",
            "edgecls:bitcoin-alpha",
            "linkpred:bitcoin-otc",
            "linkpred:bitcoin-alpha",
        ],
    )
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--mode", default="stream", choices=["stream", "window"])
    p.add_argument("--neg-train", dest="neg_train", type=int, default=10)
    p.add_argument("--eval-every", dest="eval_every", type=int, default=3)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--full-val-max-nodes",
        dest="full_val_max_nodes",
        type=int,
        default=0,
        help="validate on all node pairs up to this many nodes (default: always "
        "sampled negatives x100, the test always ranks all pairs)",
    )
    p.add_argument(
        "--concat-classifier",
        dest="cls_product",
        action="store_false",
        help="the authors' MLP on [h_u || h_v] only (default adds h_u * h_v)",
    )
    p.add_argument("--progress", action="store_true")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    if not args.table_only:
        run_grid(args)
    print_tables(Path(args.out))


if __name__ == "__main__":
    main()
