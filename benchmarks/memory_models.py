"""TGN, JODIE, DyRep and APAN side by side: test AP/AUC/MRR and training events/second.

Each model trains with the same split, negatives, batch size and epoch budget (early stopping
on validation AP), over one or more seeds; the table gives mean ± std. Timings on a shared
machine are noisy.

    python benchmarks/memory_models.py --dataset uci --epochs 10 --seeds 0 1 2
    python benchmarks/memory_models.py --dataset wikipedia --epochs 3 --models tgn jodie
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from dyngraph.datasets import get_events
from dyngraph.train import StreamingConfig, train_link_prediction


def _ms(xs):
    if any(x != x for x in xs):  # a figure not computed in this run (e.g. MRR off)
        return (float("nan"), float("nan"))
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="uci")
    ap.add_argument("--models", nargs="+", default=["tgn", "jodie", "dyrep", "apan"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--lr", type=float, default=StreamingConfig.lr)
    ap.add_argument("--mrr-negatives", type=int, default=100)
    ap.add_argument("--max-events", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    stream = get_events(args.dataset)
    if args.max_events:
        stream = stream[: args.max_events]
    rows = {}
    for name in args.models:
        runs = []
        for seed in args.seeds:
            split = stream.split(seed=seed)
            cfg = StreamingConfig(model=name, epochs=args.epochs, seed=seed, lr=args.lr,
                                  batch_size=args.batch_size, progress=False,
                                  mrr_negatives=args.mrr_negatives)
            _, res = train_link_prediction(split, cfg, dataset=args.dataset,
                                           log=lambda *a: None)
            runs.append(res)
            print(f"{name} seed {seed}: test AP {res.test['ap']:.4f}  "
                  f"MRR {res.test.get('mrr', float('nan')):.4f}  "
                  f"{res.train_events_per_s:,.0f} events/s  "
                  f"(best epoch {res.best_epoch})", flush=True)
        rows[name] = {
            "ap": _ms([r.test["ap"] for r in runs]),
            "auc": _ms([r.test["auc"] for r in runs]),
            "mrr": _ms([r.test.get("mrr", float("nan")) for r in runs]),
            "ind_ap": _ms([r.test.get("ind_ap", float("nan")) for r in runs]),
            "events_per_s": _ms([r.train_events_per_s for r in runs]),
            "epoch_s": _ms([statistics.mean(r.epoch_times) for r in runs]),
        }
    print(f"\n{args.dataset}, {len(args.seeds)} seed(s), <= {args.epochs} epochs, "
          f"batch {args.batch_size}, random negatives")
    print(f"{'model':7s} {'test AP':>15s} {'AUC':>15s} {'MRR':>15s} {'ind. AP':>15s} "
          f"{'events/s':>14s}")
    for name, r in rows.items():
        cells = " ".join(f"{r[k][0]:.4f}±{r[k][1]:.4f}".rjust(15)
                         for k in ("ap", "auc", "mrr", "ind_ap"))
        print(f"{name:7s} {cells} {r['events_per_s'][0]:>14,.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
