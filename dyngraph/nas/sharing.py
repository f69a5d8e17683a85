"""Constrained parameter sharing (Auto-GNN, Sec. "constrained parameter sharing").

Rules implemented (and tested):

1. A child inherits weights only from its **parent** — the architecture the controller
   modified to obtain it — never from other stored architectures.
2. Only **homogeneous** layers share: layer ``l`` of the child takes layer ``l`` of the
   parent iff both have the same shape of trainable projection (input size, heads, output
   size, concat), the same attention function and the same activation function
   (``space.layer_signatures``). Other layers start from a fresh initialisation.
3. Only the parameters of the graph-convolution layers (``convs.{l}.*``) are shared; anything
   else in a model (batch-norm statistics, skip connections, heads outside the conv stack) is
   re-initialised, since its input statistics change with the architecture.
4. A child with inherited weights is fine-tuned for fewer epochs
   (``TrainConfig.shared_epochs``, with the same early stopping) instead of being trained
   from scratch.

Rules 1-3 are the paper's homogeneity constraints (same weight shapes, same attention and
activation functions; batch-norm / skip-connection parameters are never shared). Two
safeguards are this implementation's, added because inherited weights bias a child's reward
(measured in ``benchmarks/nas_cora.py``: the fine-tuned validation accuracy of a child differs
from its from-scratch one by several points, in either direction):

5. Only good parents pass weights on: the bank keeps the weights of the ``capacity`` best
   architectures only (by reward), which covers the RCC's top-k parent pool.
6. ``search(verify_shared=k)``: a shared child whose reward would enter the best ``k`` so far
   is retrained from scratch and that reward replaces the fine-tuned one, so the search's
   winner — and every RCC parent — is ranked by a from-scratch validation accuracy.

``ParameterBank(enabled=False)`` switches sharing off for the ablation.
"""

from __future__ import annotations

from typing import Any

import torch

from dyngraph.errors import ConfigError
from dyngraph.nas.architecture import Architecture
from dyngraph.nas.space import SearchSpace

__all__ = ["ParameterBank", "homogeneous_layers"]


def homogeneous_layers(
    space: SearchSpace,
    parent: Architecture,
    child: Architecture,
    in_channels: int,
    out_channels: int,
) -> list[int]:
    """Indices ``l`` whose child layer is homogeneous with the parent's layer ``l``."""
    if not hasattr(space, "layer_signatures"):
        raise ConfigError(f"space {space.name!r} has no layer_signatures: sharing unsupported")
    ps = space.layer_signatures(parent, in_channels, out_channels)
    cs = space.layer_signatures(child, in_channels, out_channels)
    return [i for i, (a, b) in enumerate(zip(ps, cs)) if a == b]


class ParameterBank:
    """Stores trained weights of the best architectures and hands homogeneous layers to
    children.

    Args:
        enabled: ``False`` turns sharing off (every child trains from scratch).
        capacity: how many architectures' weights to keep (the best by reward); the RCC's
            parent is always the best so far, so a small capacity suffices.
    """

    def __init__(self, enabled: bool = True, capacity: int = 5) -> None:
        if capacity < 1:
            raise ConfigError("ParameterBank capacity must be >= 1")
        self.enabled = enabled
        self.capacity = capacity
        self._store: dict[Architecture, tuple[float, dict[str, torch.Tensor]]] = {}

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, arch: object) -> bool:
        return arch in self._store

    def store(self, arch: Architecture, reward: float, state: dict[str, torch.Tensor] | None):
        """Keep ``state`` (a trained state dict) if ``arch`` is among the best ``capacity``."""
        if not self.enabled or state is None:
            return
        self._store[arch] = (float(reward), {k: v.detach().cpu() for k, v in state.items()})
        if len(self._store) > self.capacity:
            worst = min(self._store, key=lambda a: self._store[a][0])
            del self._store[worst]

    def inherit(
        self,
        space: SearchSpace,
        parent: Architecture | None,
        child: Architecture,
        in_channels: int,
        out_channels: int,
    ) -> tuple[dict[str, torch.Tensor] | None, list[int]]:
        """Weights the child may start from: ``(state or None, shared layer indices)``."""
        if not self.enabled or parent is None or parent not in self._store:
            return None, []
        layers = homogeneous_layers(space, parent, child, in_channels, out_channels)
        if not layers:
            return None, []
        _, state = self._store[parent]
        prefixes = tuple(f"convs.{i}." for i in layers)
        shared = {k: v.clone() for k, v in state.items() if k.startswith(prefixes)}
        return (shared or None), layers

    def summary(self) -> dict[str, Any]:
        """JSON description: whether sharing is enabled and the keys of the stored architectures."""
        return {"enabled": self.enabled, "stored": [a.key for a in self._store]}
