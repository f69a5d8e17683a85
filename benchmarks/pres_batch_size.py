"""PRES vs plain training of the memory models at temporal batch 200 / 800 / 1600.

For every (dataset, model, batch size, PRES mode, seed) it trains with
:func:`dyngraph.train.train_link_prediction` for a fixed number of epochs (no early stop, so
every run sees the same data volume) and records the transductive test AP (random negatives),
the median training-epoch time and the learned PRES fusion weight. Results are appended to a
JSON file after every run (re-running skips finished runs, so the study can be resumed), then
summarised (mean ± std over seeds) and plotted: AP vs batch size, epoch time vs batch size.

PRES modes: ``none`` (plain), ``both`` (PRES), ``prediction`` (PRES-V), ``coherence`` (PRES-S).

    .venv/bin/python benchmarks/pres_batch_size.py --datasets uci --models tgn jodie \\
        --seeds 0 1 2 --epochs 6
    .venv/bin/python benchmarks/pres_batch_size.py --datasets uci --models tgn \\
        --batches 1600 --modes none prediction coherence both --seeds 0 1 2   # ablation
    .venv/bin/python benchmarks/pres_batch_size.py --summary-only   # table + plots

Timings on a shared 2-core machine are noisy; compare ratios within one run of the script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent / "results"


def _key(r) -> tuple:
    return (r["dataset"], r["model"], r["batch_size"], r["mode"], r["seed"])


def run_one(dataset: str, model: str, batch: int, mode: str, seed: int, epochs: int,
            dim: int) -> dict:
    from dyngraph.datasets import get_events
    from dyngraph.train import StreamingConfig, train_link_prediction

    stream = get_events(dataset)
    cfg = StreamingConfig(model=model, batch_size=batch, epochs=epochs, patience=epochs + 1,
                          seed=seed, memory_dim=dim, time_dim=dim, embedding_dim=dim,
                          mrr_negatives=0, progress=False, pres=mode != "none",
                          pres_mode=mode if mode != "none" else "both")
    split = stream.split(cfg.val_ratio, cfg.test_ratio, cfg.new_node_ratio, seed=seed)
    t0 = time.perf_counter()
    _, res = train_link_prediction(split, cfg, dataset=dataset, log=lambda *a, **k: None)
    times = [h["train_seconds"] for h in res.history]
    return {
        "dataset": dataset, "model": model, "batch_size": batch, "mode": mode, "seed": seed,
        "epochs": epochs, "test_ap": res.test["ap"], "test_auc": res.test["auc"],
        "val_ap": res.val["ap"], "best_epoch": res.best_epoch,
        "epoch_seconds": statistics.median(times), "epoch_seconds_all": times,
        "train_events_per_s": res.train_events_per_s,
        "pres_gamma": res.history[-1].get("pres_gamma"),
        "wall_seconds": time.perf_counter() - t0,
    }


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"], r["batch_size"], r["mode"]), []).append(r)
    out = []
    for (ds, m, b, mode), rs in sorted(groups.items()):
        ap = [r["test_ap"] * 100 for r in rs]
        t = [r["epoch_seconds"] for r in rs]
        out.append({"dataset": ds, "model": m, "batch_size": b, "mode": mode, "n": len(rs),
                    "ap_mean": statistics.mean(ap),
                    "ap_std": statistics.stdev(ap) if len(ap) > 1 else 0.0,
                    "epoch_s": statistics.median(t),
                    "gamma": statistics.mean([r["pres_gamma"] for r in rs])
                    if rs[0]["pres_gamma"] is not None else None})
    return out


def print_table(summary: list[dict]) -> None:
    print(f"{'dataset':10s} {'model':6s} {'batch':>6s} {'mode':11s} {'n':>2s} "
          f"{'test AP (%)':>14s} {'epoch s':>8s} {'speed-up':>8s} {'gamma':>6s}")
    base = {(s["dataset"], s["model"], s["mode"]): s["epoch_s"] for s in summary
            if s["batch_size"] == min(x["batch_size"] for x in summary)}
    for s in summary:
        b = base.get((s["dataset"], s["model"], s["mode"]))
        sp = f"{b / s['epoch_s']:.2f}x" if b else ""
        g = f"{s['gamma']:.3f}" if s["gamma"] is not None else ""
        print(f"{s['dataset']:10s} {s['model']:6s} {s['batch_size']:6d} {s['mode']:11s} "
              f"{s['n']:2d} {s['ap_mean']:7.2f} ± {s['ap_std']:4.2f} {s['epoch_s']:8.2f} "
              f"{sp:>8s} {g:>6s}")


def plot(summary: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for ds in sorted({s["dataset"] for s in summary}):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for (m, mode) in sorted({(s["model"], s["mode"]) for s in summary
                                 if s["dataset"] == ds}):
            ss = sorted((s for s in summary if s["dataset"] == ds and s["model"] == m
                         and s["mode"] == mode), key=lambda s: s["batch_size"])
            if len(ss) < 2:
                continue
            x = [s["batch_size"] for s in ss]
            style = "-" if mode == "none" else "--"
            lab = f"{m.upper()} {'plain' if mode == 'none' else 'PRES-' + mode}"
            a1.errorbar(x, [s["ap_mean"] for s in ss], yerr=[s["ap_std"] for s in ss],
                        fmt="o" + style, capsize=3, label=lab)
            a2.plot(x, [s["epoch_s"] for s in ss], "o" + style, label=lab)
        for a, yl in ((a1, "test AP (%)"), (a2, "training epoch (s)")):
            a.set_xscale("log", base=2)
            a.set_xlabel("temporal batch size")
            a.set_ylabel(yl)
            a.legend(fontsize=7)
        a1.set_title(f"{ds}: AP vs batch size")
        a2.set_title(f"{ds}: epoch time vs batch size")
        fig.tight_layout()
        p = out_dir / f"pres_batch_size_{ds}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["uci"])
    ap.add_argument("--models", nargs="+", default=["tgn", "jodie"])
    ap.add_argument("--batches", nargs="+", type=int, default=[200, 800, 1600])
    ap.add_argument("--modes", nargs="+", default=["none", "both"],
                    choices=("none", "both", "prediction", "coherence"))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT / "pres_batch_size.json"))
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {_key(r) for r in rows}
    if not args.summary_only:
        for seed in args.seeds:  # seed-major: a first complete picture comes early
            for ds in args.datasets:
                for m in args.models:
                    for b in args.batches:
                        for mode in args.modes:
                            k = (ds, m, b, mode, seed)
                            if k in done:
                                continue
                            r = run_one(ds, m, b, mode, seed, args.epochs, args.dim)
                            rows.append(r)
                            done.add(k)
                            out.write_text(json.dumps(rows, indent=1))
                            print(f"{ds} {m} b={b} {mode} seed={seed}: AP "
                                  f"{100 * r['test_ap']:.2f}, epoch {r['epoch_seconds']:.1f}s"
                                  f" (gamma {r['pres_gamma']})", flush=True)
    summary = summarise(rows)
    print_table(summary)
    for p in plot(summary, out.parent):
        print(f"plot: {p}")


if __name__ == "__main__":
    main()
