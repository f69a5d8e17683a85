"""EvolveGCN-O / EvolveGCN-H / static GCN on the paper's datasets, mean ± std over seeds.

Runs ``dyngraph.train.snapshot.run_snapshot_linkpred`` for every (task, dataset, model, seed)
of the grid, stores one JSON report per run in ``--out`` (runs already there are skipped, so
the script resumes after an interruption), prints the tables next to the numbers
published in the EvolveGCN paper (Table 3) and ROLAND's MRR, and writes the summary
(mean ± std per cell, published values, every run's settings) into ``--summary``, replacing
the cells it ran and keeping the others.

The protocol is the authors' (see ``dyngraph.train.snapshot``): window mode (every sample
restarts from the learnt initial weights and reads 10 + 1 snapshots), MLP on [h_u || h_v],
their per-dataset and per-model learning rate / class weights / negatives / widths
(``OFFICIAL_CONFIGS``), model selection on validation MAP over all node pairs (F1 of the
negative class for edge classification), and their budget by default: up to 1000 epochs on
UCI and 500 on Bitcoin, stopping after 50 validations without improvement (100 for edge
classification); ``--epochs``/``--patience`` override it.

    python benchmarks/evolvegcn_results.py --out /tmp/egcn_runs \\
        --tasks linkpred:uci --seeds 0 1 2 --lrs 0.001 0.002 0.005 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _results import update_json

from dyngraph.train.snapshot import PAPER_RESULTS, run_snapshot_linkpred

MODELS = ["gcn", "evolvegcn-h", "evolvegcn-o"]


def _fmt(vals: list[float]) -> str:
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}"


def _metrics(task: str) -> tuple[str, ...]:
    return ("map", "mrr") if task == "linkpred" else ("f1", "f1_macro", "f1_micro")


def _run_one(ns: argparse.Namespace) -> str:
    t0 = time.perf_counter()
    res = run_snapshot_linkpred(ns)
    keys = _metrics(ns.task)
    return (
        f"{Path(ns.report).stem}: "
        + ", ".join(f"{k}={res[k]:.4f}" for k in keys)
        + f" ({time.perf_counter() - t0:.0f} s)"
    )


def run_grid(args: argparse.Namespace) -> None:
    """Run every missing (task, dataset, model, lr, seed); ``--jobs`` runs at a time, each in
    its own process with ``--threads`` threads."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pending = []
    for spec in args.tasks:
        task, dataset = spec.split(":")
        for model, lr, seed in [
            (m, lr, seed) for m in args.models for lr in args.lrs or [args.lr]
            for seed in args.seeds
        ]:
            tag = f"_lr{lr:g}" if args.lrs else ""
            path = out / f"{task}_{dataset}_{model}{tag}_s{seed}.json"
            if path.exists():
                continue
            pending.append(argparse.Namespace(
                dataset=dataset,
                model=model,
                task=task,
                seed=seed,
                epochs=args.epochs,
                mode=args.mode_h if model == "evolvegcn-h" and args.mode_h else args.mode,
                neg_train=args.neg_train,
                eval_every=args.eval_every,
                patience=args.patience,
                hidden=args.hidden,
                cls_hidden=args.cls_hidden,
                threads=args.threads,
                lr=lr,
                progress=args.progress and args.jobs == 1,
                report=str(path),
                cls_product=args.cls_product,
                tune_threshold=args.tune_threshold,
                class_weights=args.class_weights,
                full_val_max_nodes=args.full_val_max_nodes,
                select=args.select,
                eval_after=args.eval_after,
                checkpoint=str(out / f".{path.stem}.ckpt"),
            ))
    if args.jobs == 1:
        for ns in pending:
            print(_run_one(ns), flush=True)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a forked child would inherit the parent's OpenMP state
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(_run_one, ns) for ns in pending]):
            print(fut.result(), flush=True)


def load_selected(out: Path) -> tuple[list[dict], dict]:
    """The runs in ``out``, keeping for each (task, dataset, model) only the learning rate with
    the best mean validation metric (``best_val``) among those run with the most seeds, and
    the search behind each choice: ``{cell: {lr: {"val", "test", "n"}}}`` (test = mean MAP,
    or minority F1, shown for transparency; never used to choose)."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    by_cell: dict = {}
    for r in runs:
        cell = f"{r['task']}/{r['dataset']}/{r['model']}"
        by_cell.setdefault(cell, {}).setdefault(r["lr"], []).append(r)
    kept, search = [], {}
    for cell, by_lr in by_cell.items():
        most = max(len(v) for v in by_lr.values())
        best = max(
            (lr for lr, v in by_lr.items() if len(v) == most),
            key=lambda lr: statistics.mean(r["best_val"] for r in by_lr[lr]),
        )
        kept += by_lr[best]
        if len(by_lr) > 1:
            key = "map" if cell.startswith("linkpred") else "f1"
            search[cell] = {
                f"{lr:g}": {
                    "val": statistics.mean(r["best_val"] for r in v),
                    "test": statistics.mean(r[key] for r in v),
                    "n": len(v),
                    "selected": lr == best,
                }
                for lr, v in sorted(by_lr.items())
            }
    return kept, search


def summarize(out: Path) -> dict:
    """Mean/std per (task, dataset, model) with the published values, for the JSON summary."""
    runs, search = load_selected(out)
    cells: dict = {}
    for r in runs:
        keys = _metrics(r["task"])
        c = cells.setdefault(f"{r['task']}/{r['dataset']}/{r['model']}", {"runs": []})
        c["runs"].append(
            {
                k: r.get(k)
                for k in (*keys, "seed", "epochs_run", "best_val", "budget", "select", "loss_norm")
            }
            | {
                "settings": {
                    k: r.get(k)
                    for k in (
                        "mode", "history", "hidden", "cls_hidden", "lr", "neg_train",
                        "class_weights", "cls_product", "train_frac", "edge_offset",
                        "tune_threshold", "neg_uniform",
                        "num_snapshots", "window", "split",
                    )
                },
                "epoch_s_median": r["times"]["epoch_s_median"],
            }
        )
        for k in keys:
            vals = [x[k] for x in c["runs"]]
            c[k] = {
                "mean": statistics.mean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "n": len(vals),
            }
        if r["task"] == "linkpred" and r["model"] in PAPER_RESULTS:
            pm = PAPER_RESULTS[r["model"]].get(r["dataset"])
            if pm:
                c["paper"] = {"map": pm[0], "mrr": pm[1]}
        if r["task"] == "linkpred" and r["dataset"] in PAPER_RESULTS["roland-gru"]:
            c["roland_gru_mrr"] = PAPER_RESULTS["roland-gru"][r["dataset"]][1]
    for cell, lrs in search.items():
        cells[cell]["lr_search"] = lrs
    return cells


def print_tables(out: Path) -> None:
    runs, search = load_selected(out)
    for task in ("linkpred", "edgecls"):
        sel = [r for r in runs if r["task"] == task]
        if not sel:
            continue
        datasets = sorted({r["dataset"] for r in sel})
        metrics = _metrics(task)
        modes = sorted({(r["model"], r["mode"]) for r in sel})
        print(
            f"\n### {task} (history {sel[0]['history']}, "
            f"product decoder {sel[0].get('cls_product')}, modes: "
            + ", ".join(f"{m} {md}" for m, md in modes)
            + ")\n"
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
        for cell, lrs in sorted(search.items()):
            if cell.startswith(task):
                print(
                    f"\n{cell}: learning rate chosen on validation: "
                    + ", ".join(
                        f"{lr}{' (chosen)' if v['selected'] else ''} val {v['val']:.4f} "
                        f"test {v['test']:.4f} (n={v['n']})"
                        for lr, v in lrs.items()
                    )
                )
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
    p.add_argument("--out", default="results/evolvegcn", help="per-run reports (resumable)")
    p.add_argument(
        "--summary",
        default=str(Path(__file__).parent / "results" / "evolvegcn.json"),
        help="summary JSON (mean ± std per cell, published numbers, settings); cells "
        "run here replace the same cells in it, the others are kept",
    )
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
    # None: the authors' budget for the dataset and model (official_config)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--mode", default="window", choices=["stream", "window"])
    p.add_argument(
        "--mode-h",
        dest="mode_h",
        default=None,
        choices=["stream", "window"],
        help="mode of EvolveGCN-H only (window mode costs it history+1 convolutions per "
        "sample; EGCN-O and GCN need one)",
    )
    # None: the authors' value for the dataset (dyngraph.train.snapshot.OFFICIAL_CONFIGS)
    p.add_argument("--neg-train", dest="neg_train", type=int, default=None)
    p.add_argument("--eval-every", dest="eval_every", type=int, default=1)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--cls-hidden", dest="cls_hidden", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument(
        "--lrs",
        nargs="+",
        type=float,
        default=None,
        help="learning rates to choose from: every (model, lr) runs all seeds, and the tables "
        "report each model at the rate with the best mean validation metric (the paper tunes "
        "hyper-parameters on validation)",
    )
    p.add_argument(
        "--select",
        default=None,
        choices=["map", "mrr", "f1"],
        help="linkpred validation measure (default: MAP; f1: the edge class's argmax F1, "
        "which the authors' logger.py selects on)",
    )
    p.add_argument(
        "--eval-after",
        dest="eval_after",
        type=int,
        default=None,
        help="epochs before the first validation (default 0; the authors' code: 6)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (processes)")
    p.add_argument(
        "--full-val-max-nodes",
        dest="full_val_max_nodes",
        type=int,
        default=6000,
        help="validate on all node pairs up to this many nodes, like the authors (else "
        "sampled negatives x100; the test always ranks all pairs)",
    )
    p.add_argument(
        "--product-classifier",
        dest="cls_product",
        action="store_true",
        help="also feed h_u * h_v to the pair MLP (default: the authors' [h_u || h_v])",
    )
    p.add_argument(
        "--tune-threshold",
        dest="tune_threshold",
        action="store_true",
        help="edgecls: decision threshold chosen on validation F1 (default: argmax)",
    )
    p.add_argument("--class-weights", dest="class_weights", default=None)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    if not args.table_only:
        run_grid(args)
    print_tables(Path(args.out))
    if args.summary:
        merged = merge_summary(Path(args.summary), summarize(Path(args.out)))
        print(f"\nsummary: {args.summary} ({', '.join(merged)} updated)")


def merge_summary(path: Path, cells: dict) -> list[str]:
    """Write ``cells`` into the summary at ``path``, keeping its other cells: a grid run on
    one dataset must not erase the stored results of the others. Returns the updated cells."""
    update_json(path, lambda doc: doc.update(cells), indent=2)
    return sorted(cells)


if __name__ == "__main__":
    main()
