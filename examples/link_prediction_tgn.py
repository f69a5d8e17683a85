"""Temporal link prediction with TGN on the bundled UCI (CollegeMsg) messages.

    python examples/link_prediction_tgn.py            # full run, a few minutes on 2 cores
    python examples/link_prediction_tgn.py --fast     # tiny settings, seconds
    python examples/link_prediction_tgn.py --model jodie --dataset wikipedia

Same job as ``dyngraph linkpred``; prints test AP / AUC / MRR (transductive and inductive).
"""

from __future__ import annotations

import argparse
import sys

import torch

from dyngraph.datasets import get_events
from dyngraph.train import StreamingConfig, train_link_prediction


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tgn", choices=["tgn", "jodie", "dyrep", "apan"])
    p.add_argument("--dataset", default="uci")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="tiny settings (smoke test)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # temporal batches of 200 do not parallelise

    stream = get_events(args.dataset)
    cfg = StreamingConfig(model=args.model, epochs=args.epochs, seed=args.seed,
                          progress=sys.stderr.isatty())
    if args.fast:
        stream = stream[:3000]
        cfg = StreamingConfig(model=args.model, epochs=1, seed=args.seed, memory_dim=16,
                              time_dim=16, embedding_dim=16, num_neighbors=5,
                              mrr_negatives=10, progress=False)
    split = stream.split(seed=args.seed)
    print(f"{args.model.upper()} on {args.dataset}: {split}")
    _, result = train_link_prediction(split, cfg, dataset=args.dataset)
    t = result.test
    print(f"test AP {t['ap']:.4f}  AUC {t['auc']:.4f}  MRR {t['mrr']:.4f}  "
          f"inductive AP {t.get('ind_ap', float('nan')):.4f}")
    return result.to_dict()


if __name__ == "__main__":
    main()
