"""Checkpoint and resume utilities shared by the training loops.

A checkpoint is one ``torch.save``'d dict written atomically (temporary file + ``os.replace``),
so an interrupted run never leaves a truncated file behind. :func:`capture_rng_state` /
:func:`restore_rng_state` carry every random stream a training loop draws from (torch CPU,
CUDA when present, numpy, ``random``), which together with model/optimizer state is what a
bit-for-bit resume needs.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dyngraph.errors import ConfigError, DataError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "capture_rng_state",
    "restore_rng_state",
]

_FILE = "last.pt"


def checkpoint_path(directory: str | os.PathLike) -> Path:
    """Path of the rolling checkpoint kept in ``directory``."""
    return Path(directory) / _FILE


def save_checkpoint(state: dict[str, Any], directory: str | os.PathLike) -> Path:
    """Atomically write ``state`` to ``directory/last.pt`` and return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ckpt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


def load_checkpoint(directory: str | os.PathLike, required: bool = True) -> dict[str, Any] | None:
    """Load ``directory/last.pt``; ``None`` when absent and not ``required``."""
    path = checkpoint_path(directory)
    if not path.exists():
        if required:
            raise ConfigError(f"no checkpoint at {path}; run once without --resume "
                              "(with --checkpoint-dir) to create one")
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # corrupted / foreign file
        raise DataError(f"cannot read checkpoint {path}: {e}; delete it to start over") from e


def capture_rng_state() -> dict[str, Any]:
    """Snapshot of all global random number generators."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
