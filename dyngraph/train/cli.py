"""``dyngraph linkpred``: the link-prediction main job.

Memory models (``tgn``, ``jodie``, ``dyrep``, ``apan``) run the streaming trainer of
:mod:`dyngraph.train.streaming`; snapshot models (``evolvegcn-o``, ``evolvegcn-h``, ``gcn``)
are dispatched to :func:`dyngraph.train.snapshot.run_snapshot_linkpred`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from dyngraph.errors import ConfigError

__all__ = ["register", "run_linkpred", "MEMORY_MODELS", "SNAPSHOT_MODELS"]

MEMORY_MODELS = ("tgn", "jodie", "dyrep", "apan")
SNAPSHOT_MODELS = ("evolvegcn-o", "evolvegcn-h", "gcn")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``linkpred`` subcommand to an ``argparse`` subparsers object."""
    from dyngraph.train.streaming import StreamingConfig

    d = StreamingConfig()
    p = subparsers.add_parser(
        "linkpred", help="temporal link prediction (TGN, JODIE, DyRep, APAN, EvolveGCN)",
        description="Train and evaluate a temporal link predictor on an event stream: "
                    "chronological 70/15/15 split, AP/AUC (transductive and inductive) and MRR.")
    p.add_argument("--model", default="tgn", choices=MEMORY_MODELS + SNAPSHOT_MODELS)
    p.add_argument("--dataset", default="uci",
                   help="bundled name (uci, wikipedia, bitcoin-otc, bitcoin-alpha, sfhh) or the "
                        "path of an event file load_events reads")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    # None = the model family's own default (memory models: StreamingConfig; snapshot
    # models: dyngraph.train.snapshot.TrainConfig), so one family's tuning never leaks into
    # the other's.
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (memory models: {d.epochs}; snapshot models: the "
                        "authors' budget for uci/bitcoin-* (500-1000, with early stopping), "
                        "else 50)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (memory models: {d.lr}; snapshot models: the authors' "
                        "value for uci/bitcoin-*, else 0.005)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: validations without improvement (snapshot models: the "
                        "authors' 50-100 for uci/bitcoin-*, else 10)")
    p.add_argument("--negatives", default=d.negatives,
                   choices=("random", "historical", "inductive"),
                   help="evaluation negative sampler (DyGLib protocol)")
    p.add_argument("--mrr-negatives", type=int, default=d.mrr_negatives,
                   help="negatives per test event for MRR (0 disables)")
    p.add_argument("--memory-dim", type=int, default=d.memory_dim)
    p.add_argument("--time-dim", type=int, default=d.time_dim)
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim)
    p.add_argument("--num-neighbors", type=int, default=d.num_neighbors)
    p.add_argument("--heads", type=int, default=d.heads)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--max-events", type=int, default=None,
                   help="use only the first N events of the stream (quick runs)")
    p.add_argument("--window", type=float, default=None,
                   help="snapshot models: snapshot length in time units")
    p.add_argument("--num-snapshots", type=int, default=None,
                   help="snapshot models: number of equal-time snapshots")
    p.add_argument("--checkpoint-dir", default=None,
                   help="write a checkpoint every epoch here")
    p.add_argument("--resume", action="store_true",
                   help="continue bit-for-bit from the checkpoint in --checkpoint-dir")
    p.add_argument("--report", default=None, help="write the run's figures as JSON here")
    p.add_argument("--plot", default=None, help="write the learning curve PNG here")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (small temporal batches gain nothing from more; "
                        "on shared machines extra threads spin and slow everything down)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sg = p.add_argument_group("snapshot models (evolvegcn-o, evolvegcn-h, gcn)")
    sg.add_argument("--task", default="linkpred", choices=("linkpred", "edgecls"),
                    help="link prediction at t+1, or edge-sign classification (Bitcoin)")
    sg.add_argument("--hidden", type=int, default=None, help="GCN hidden size (100)")
    sg.add_argument("--history", type=int, default=None, help="snapshots of history (10)")
    sg.add_argument("--mode", default=None, choices=("window", "stream"),
                    help="window: the paper's restart per sample; stream: truncated BPTT")
    sg.add_argument("--cell", default=None, choices=("gru", "lstm"),
                    help="EvolveGCN-O weight-evolution cell (gru: official code; lstm: paper)")
    sg.add_argument("--neg-train", type=int, default=None,
                    help="sampled non-edges per edge in training (50)")
    sg.add_argument("--cls-product", action="store_true",
                    help="also feed h_u * h_v to the pair classifier")
    sg.add_argument("--cls-hidden", type=int, default=None,
                    help="hidden size of the pair classifier (authors' value per dataset)")
    sg.add_argument("--class-weights", default=None,
                    help="cross-entropy weights 'w0,w1' (class 0 = non-edge / negative "
                         "rating) or 'balanced'; default: the authors' per dataset")
    sg.add_argument("--edge-offset", type=int, default=None, choices=(0, 1),
                    help="edgecls: classify the edges of the last snapshot read (0, authors' "
                         "code) or of the next step (1)")
    sg.add_argument("--tune-threshold", action="store_true",
                    help="edgecls: pick the decision threshold maximising validation F1 of the "
                         "minority class (default: argmax, the authors' rule)")
    sg.add_argument("--select", default=None, choices=("map", "mrr", "f1"),
                    help="linkpred model selection on validation: all-pairs MAP (default), "
                         "MRR, or the edge-class F1 at the argmax decision (what the authors' "
                         "code selects on)")
    sg.add_argument("--loss-norm", dest="loss_norm", default=None,
                    choices=("weights", "samples"),
                    help="divide the class-weighted cross-entropy by the summed weights "
                         "(default, PyTorch) or by the number of pairs (the authors' code)")
    sg.add_argument("--eval-after", dest="eval_after", type=int, default=None,
                    help="epochs before the first validation (0; the authors' code: 6)")
    sg.add_argument("--no-official", dest="official", action="store_false",
                    help="ignore the authors' per-dataset hyper-parameters")
    g = p.add_argument_group("PRES and data-parallel training (memory models)")
    g.add_argument("--pres", action="store_true",
                   help="PRES prediction-correction + memory-coherence loss (Su et al. 2024) "
                        "for large temporal batches")
    g.add_argument("--pres-mode", default=d.pres_mode, choices=("both", "prediction",
                                                                "coherence"),
                   help="ablation: both (PRES), prediction (PRES-V), coherence (PRES-S)")
    g.add_argument("--pres-components", type=int, default=d.pres_components,
                   help="Gaussian-mixture components of each node's memory-transition model")
    g.add_argument("--pres-gamma", type=float, default=d.pres_gamma,
                   help="initial fusion weight of the predicted memory (learned)")
    g.add_argument("--pres-beta", type=float, default=d.pres_beta,
                   help="weight of the memory-coherence loss")
    g.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes (torchrun, gloo on CPU); --batch-size is the "
                        "global temporal batch")
    p.set_defaults(func=_main)
    return p


def _silent(*args, **kwargs) -> None:
    """Log sink of ranks other than 0."""


def _main(args: argparse.Namespace) -> int:
    run_linkpred(args)
    return 0


def run_linkpred(args: argparse.Namespace, dist_ctx=None) -> dict[str, Any]:
    """Run the job described by parsed ``linkpred`` arguments; returns the report dict.

    With ``--nproc N > 1`` the job runs on ``N`` processes (:mod:`dyngraph.train.distributed`);
    ``dist_ctx`` is that module's per-process context (workers only)."""
    if args.threads is not None and args.threads > 0:
        torch.set_num_threads(args.threads)
    nproc = getattr(args, "nproc", 1) or 1
    if nproc > 1 and dist_ctx is None:
        if args.model not in MEMORY_MODELS:
            raise ConfigError(f"--nproc is for the memory models {MEMORY_MODELS}, got "
                              f"{args.model!r}")
        from dyngraph.train.distributed import launch

        return launch(args, nproc)
    if args.model in SNAPSHOT_MODELS:
        from dyngraph.train.snapshot import run_snapshot_linkpred

        return run_snapshot_linkpred(args)
    if args.model not in MEMORY_MODELS:
        raise ConfigError(f"unknown model {args.model!r}; choose from "
                          f"{MEMORY_MODELS + SNAPSHOT_MODELS}")
    from dyngraph.datasets import get_events
    from dyngraph.train.streaming import (
        StreamingConfig,
        plot_learning_curve,
        train_link_prediction,
        write_report,
    )

    main = dist_ctx is None or dist_ctx.is_main
    say = print if main else _silent
    epoch_fn = None
    if dist_ctx is not None and dist_ctx.world > 1:
        from dyngraph.train.distributed import make_epoch_fn

        epoch_fn = make_epoch_fn(dist_ctx)
    stream = get_events(args.dataset)
    if args.max_events is not None:
        stream = stream[: args.max_events]
    names = {f.name for f in fields(StreamingConfig)}
    opts = {k: v for k, v in vars(args).items()
            if k in names and k != "progress" and v is not None}
    cfg = StreamingConfig(**opts, progress=main and not args.no_progress
                          and sys.stderr.isatty())
    split = stream.split(cfg.val_ratio, cfg.test_ratio, cfg.new_node_ratio, seed=cfg.seed)
    world = dist_ctx.world if dist_ctx is not None else 1
    say(f"dyngraph linkpred: {cfg.model.upper()}{' + PRES' if cfg.pres else ''} on "
        f"{args.dataset} ({stream.num_events:,} events, {stream.num_nodes:,} nodes); {split}"
        f"{f'; {world} processes' if world > 1 else ''}")
    _, result = train_link_prediction(split, cfg, checkpoint_dir=args.checkpoint_dir,
                                      resume=args.resume, dataset=str(args.dataset),
                                      log=say, epoch_fn=epoch_fn, write_checkpoints=main)
    report = result.to_dict()
    report["nproc"] = world
    if not main:
        return report
    t = result.test
    print(f"test  AP {t['ap']:.4f}  AUC {t['auc']:.4f}  MRR {t.get('mrr', float('nan')):.4f}  "
          f"(inductive AP {t.get('ind_ap', float('nan')):.4f})  "
          f"best epoch {result.best_epoch}, {result.train_events_per_s:,.0f} train events/s")
    if args.report:
        write_report(result, args.report)
        if world > 1:
            Path(args.report).write_text(json.dumps(report, indent=2, default=float))
        print(f"report: {args.report}")
    if args.plot and result.history:
        plot_learning_curve(result.history, args.plot, f"{cfg.model.upper()} on {args.dataset}")
        print(f"learning curve: {args.plot}")
    if not args.report:
        print(json.dumps({"test": t}, default=float))
    return report
