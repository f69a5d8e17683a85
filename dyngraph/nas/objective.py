"""Trial objectives: train-and-validate a node classifier, or look an architecture up in a table.

An objective is called as ``objective(space, arch, init_state=None, seed=0, keep_state=False)``
and returns a :class:`TrialResult`; the reward the controllers maximise is validation accuracy.
Objectives are plain picklable objects so the Ray runner can ship them to workers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from dyngraph.datasets import load_planetoid
from dyngraph.errors import ConfigError, DataError
from dyngraph.nas._threads import torch_threads
from dyngraph.nas.architecture import Architecture
from dyngraph.nas.space import SearchSpace

__all__ = [
    "TrialResult",
    "TrainConfig",
    "NodeClassificationObjective",
    "train_node_classifier",
    "load_planetoid",
]


@dataclass
class TrialResult:
    """Outcome of one trial. ``reward`` is what the controller sees (validation accuracy)."""

    reward: float
    metrics: dict[str, Any] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None


@dataclass
class TrainConfig:
    """Training protocol of a trial (GraphNAS / Planetoid defaults).

    ``epochs`` from scratch; ``shared_epochs`` when the child inherited weights from its
    parent (constrained parameter sharing: inherited weights need only fine-tuning).
    ``threads``: torch intra-op threads during a trial (``None``: leave as is).
    """

    epochs: int = 200
    shared_epochs: int = 50
    lr: float = 0.005
    weight_decay: float = 5e-4
    patience: int = 100
    threads: int | None = None


def _prepare(data: Data) -> Data:
    """Row-normalised features (sparse COO: Planetoid features are >98 % zeros, so the first
    projection becomes a sparse matmul) and validated masks."""
    for attr in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        if getattr(data, attr, None) is None:
            raise DataError(f"data has no {attr!r}; node classification needs x, y and split masks")
    x = data.x.float()
    if not torch.isfinite(x).all():
        raise DataError("node features contain NaN/inf")
    rs = x.sum(1, keepdim=True)
    x = x / rs.clamp_min(1e-12)
    return Data(
        x=x.to_sparse(),
        edge_index=data.edge_index,
        y=data.y,
        train_mask=data.train_mask,
        val_mask=data.val_mask,
        test_mask=data.test_mask,
        num_nodes=data.num_nodes,
    )


def train_node_classifier(
    model: torch.nn.Module,
    data: Data,
    epochs: int,
    lr: float = 0.005,
    weight_decay: float = 5e-4,
    patience: int = 100,
    keep_state: bool = False,
) -> dict[str, Any]:
    """Full-batch training with Adam; the model of the best validation accuracy (ties: lower
    validation loss) is the one reported. Returns ``val_acc``, ``test_acc``, ``epochs`` and,
    with ``keep_state``, ``state`` (that model's state dict)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, math.inf)
    out: dict[str, Any] = {"val_acc": 0.0, "test_acc": 0.0, "epochs": 0, "state": None}
    since = 0
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits[data.train_mask], data.y[data.train_mask])
        if not torch.isfinite(loss):
            break  # diverged (e.g. unstable activation): keep the best model so far
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(data.x, data.edge_index)
            pred = logits.argmax(1)
            val_loss = F.cross_entropy(logits[data.val_mask], data.y[data.val_mask]).item()
            val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
            test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
        out["epochs"] = epoch
        if val > best[0] or (val == best[0] and val_loss < best[1]):
            best = (val, val_loss)
            out.update(val_acc=val, test_acc=test)
            since = 0
            if keep_state:
                out["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    return out


class NodeClassificationObjective:
    """Train the architecture on a transductive split; reward = best validation accuracy.

    Args:
        data: a PyG ``Data`` with ``x``, ``edge_index``, ``y`` and train/val/test masks.
        config: :class:`TrainConfig`.
    """

    supports_sharing = True

    def __init__(self, data: Data, config: TrainConfig | None = None) -> None:
        self.data = _prepare(data)
        self.config = config or TrainConfig()
        self.in_channels = int(data.x.size(1))
        self.num_classes = int(data.y.max()) + 1

    def describe(self) -> dict[str, Any]:
        """JSON description stored in trial logs: kind and the training configuration."""
        return {"kind": "node-classification", **self.config.__dict__}

    def __call__(
        self,
        space: SearchSpace,
        arch: Architecture,
        init_state: dict[str, torch.Tensor] | None = None,
        seed: int = 0,
        keep_state: bool = False,
    ) -> TrialResult:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        model = space.build(arch, self.in_channels, self.num_classes)
        inherited = 0
        if init_state:
            own = model.state_dict()
            for k, v in init_state.items():
                if k not in own or own[k].shape != v.shape:
                    raise ConfigError(f"inherited parameter {k!r} does not fit the child model")
            model.load_state_dict(init_state, strict=False)
            inherited = len(init_state)
        cfg = self.config
        epochs = cfg.shared_epochs if inherited else cfg.epochs
        with torch_threads(cfg.threads):
            res = train_node_classifier(
                model, self.data, epochs, cfg.lr, cfg.weight_decay, cfg.patience, keep_state
            )
        metrics = {
            "val_acc": res["val_acc"],
            "test_acc": res["test_acc"],
            "epochs": res["epochs"],
            "inherited_tensors": inherited,
            "seconds": time.perf_counter() - t0,
        }
        return TrialResult(res["val_acc"], metrics, res["state"])
