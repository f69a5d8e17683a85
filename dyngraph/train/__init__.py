"""Training loops shared by examples and the command line: streaming link prediction for the
memory models, checkpoint + resume utilities."""

from dyngraph.train.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from dyngraph.train.streaming import (
    LinkPredResult,
    StreamingConfig,
    build_model,
    evaluate_stream,
    node_time_scale,
    plot_learning_curve,
    train_epoch,
    train_link_prediction,
    write_report,
)

__all__ = [
    "StreamingConfig",
    "LinkPredResult",
    "build_model",
    "train_epoch",
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
]
