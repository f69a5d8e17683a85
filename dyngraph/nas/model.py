"""The PyG model an AGNN-space architecture describes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dyngraph.nn.conv import GeneralAttentionConv, sparse_dropout

__all__ = ["SearchedGNN"]


class SearchedGNN(torch.nn.Module):
    """A stack of :class:`~dyngraph.nn.conv.GeneralAttentionConv` layers.

    Layer ``l`` applies dropout to its input, the convolution and its activation (the output
    layer too, GraphNAS convention). Hidden layers concatenate heads; the output layer has
    ``out_channels`` units per head and averages heads. Parameters of layer ``l`` are named
    ``convs.{l}.*`` — the unit of constrained parameter sharing.

    Args:
        layers: per-layer dicts with ``attention``, ``aggregation``, ``activation``, ``heads``
            and ``hidden`` (``None`` for the output layer).
        in_channels: input feature size.
        out_channels: number of classes.
        dropout: dropout on every layer's input and on attention coefficients.
    """

    def __init__(
        self,
        layers: Sequence[dict[str, Any]],
        in_channels: int,
        out_channels: int,
        dropout: float = 0.6,
    ) -> None:
        super().__init__()
        from dyngraph.nas.space import ACTIVATIONS

        self.specs = [dict(s) for s in layers]
        self.dropout = dropout
        self.convs = torch.nn.ModuleList()
        self.acts = []
        prev = in_channels
        for i, s in enumerate(self.specs):
            last = i == len(self.specs) - 1
            out = out_channels if last else int(s["hidden"])
            self.convs.append(
                GeneralAttentionConv(
                    prev,
                    out,
                    heads=int(s["heads"]),
                    attention=s["attention"],
                    aggregation=s["aggregation"],
                    concat=not last,
                    dropout=dropout,
                )
            )
            self.acts.append(ACTIVATIONS[s["activation"]])
            prev = out if last else out * int(s["heads"])

    def reset_parameters(self) -> None:
        """Re-initialise the parameters of every layer."""
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``x`` ``[N, F]`` (dense or sparse COO), ``edge_index`` ``[2, E]`` → logits ``[N, K]``."""
        for conv, act in zip(self.convs, self.acts):
            x = sparse_dropout(x, self.dropout, self.training)
            x = act(conv(x, edge_index))
        return x

    def __repr__(self) -> str:
        inner = ", ".join(f"{c!r}->{s['activation']}" for c, s in zip(self.convs, self.specs))
        return f"{self.__class__.__name__}({inner})"
