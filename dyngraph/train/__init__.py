"""Training loops shared by examples and the command line: streaming link prediction for the
memory models, snapshot link prediction / edge classification for EvolveGCN, checkpoint +
resume utilities, data-parallel training."""

from dyngraph.train.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from dyngraph.train.distributed import DistContext, train_epoch_distributed
from dyngraph.train.optim import LeanAdam
from dyngraph.train.snapshot import (
    OFFICIAL_CONFIGS,
    PAPER_RESULTS,
    PAPER_WINDOWS,
    SnapshotTrainer,
    all_pairs_ap_mrr,
    chronological_split,
    grouped_ap_mrr,
    official_config,
    prepare_task,
    run_snapshot_linkpred,
)
from dyngraph.train.snapshot import TrainConfig as SnapshotConfig
from dyngraph.train.streaming import (
    LinkPredResult,
    StreamingConfig,
    build_model,
    evaluate_stream,
    node_time_scale,
    plot_learning_curve,
    train_epoch,
    train_link_prediction,
    training_loss,
    write_report,
)

__all__ = [
    "LeanAdam",
    "StreamingConfig",
    "LinkPredResult",
    "build_model",
    "train_epoch",
    "training_loss",
    "train_epoch_distributed",
    "DistContext",
    "evaluate_stream",
    "train_link_prediction",
    "plot_learning_curve",
    "write_report",
    "node_time_scale",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "capture_rng_state",
    "restore_rng_state",
    "SnapshotTrainer",
    "SnapshotConfig",
    "prepare_task",
    "chronological_split",
    "all_pairs_ap_mrr",
    "grouped_ap_mrr",
    "official_config",
    "run_snapshot_linkpred",
    "PAPER_RESULTS",
    "PAPER_WINDOWS",
    "OFFICIAL_CONFIGS",
]
