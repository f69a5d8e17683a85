"""Chronological train/val/test split with held-out new nodes (TGN / DyGLib protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dyngraph.data.events import EventStream
from dyngraph.errors import ConfigError

__all__ = ["TemporalSplit", "temporal_split"]


@dataclass
class TemporalSplit:
    """Result of :meth:`EventStream.split`.

    Attributes:
        full: the whole stream.
        train: events up to the validation time, minus events touching a held-out node.
        val, test: events in ``(val_time, test_time]`` and after ``test_time``.
        new_node_mask: bool ``[N]``, nodes that occur in the stream but not in ``train``.
        val_inductive, test_inductive: bool masks over ``val`` / ``test`` events that touch
            a new node (the inductive evaluation setting).
        val_time, test_time: the two time thresholds (quantiles of event times).
    """

    full: EventStream
    train: EventStream
    val: EventStream
    test: EventStream
    new_node_mask: Tensor
    val_inductive: Tensor
    test_inductive: Tensor
    val_time: float
    test_time: float

    @property
    def train_end_time(self) -> float:
        """Last time whose events count as observed during training (``val_time``)."""
        return self.val_time

    def __repr__(self) -> str:
        return (f"TemporalSplit(train={self.train.num_events}, val={self.val.num_events} "
                f"({int(self.val_inductive.sum())} inductive), test={self.test.num_events} "
                f"({int(self.test_inductive.sum())} inductive), "
                f"new_nodes={int(self.new_node_mask.sum())})")


def temporal_split(stream: EventStream, val_ratio: float = 0.15, test_ratio: float = 0.15,
                   new_node_ratio: float = 0.1, seed: int = 0) -> TemporalSplit:
    r"""Split chronologically at the time quantiles :math:`1-v-\tau` and :math:`1-\tau`.

    Follows TGN's ``get_data`` (used unchanged by DyGLib): a ``new_node_ratio`` fraction of
    all nodes, drawn among nodes that appear after the validation time, is held out; training
    events touching them are removed, so they are unseen at test time. ``new_node_mask`` is
    then every node absent from ``train`` (held out or first appearing later).
    """
    if not (0 <= val_ratio and 0 <= test_ratio and val_ratio + test_ratio < 1):
        raise ConfigError(f"val_ratio={val_ratio}, test_ratio={test_ratio}: need both >= 0 "
                          "and val_ratio + test_ratio < 1.")
    if not 0 <= new_node_ratio < 1:
        raise ConfigError(f"new_node_ratio={new_node_ratio} must be in [0, 1).")
    if stream.num_events == 0:
        raise ConfigError("cannot split an empty EventStream.")
    t_np = stream.t.cpu().numpy()
    # numpy's linear-interpolated quantile, as TGN/DyGLib compute it
    val_time, test_time = (float(q) for q in
                           np.quantile(t_np, [1 - val_ratio - test_ratio, 1 - test_ratio]))
    t, src, dst, n = stream.t, stream.src, stream.dst, stream.num_nodes

    present = stream.active_nodes()
    after = t > val_time
    later_nodes = torch.zeros(n, dtype=torch.bool, device=src.device)
    later_nodes[src[after]] = True
    later_nodes[dst[after]] = True
    candidates = later_nodes.nonzero().view(-1)
    num_new = min(int(new_node_ratio * int(present.sum())), candidates.numel())
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(candidates.numel(), generator=gen)[:num_new]
    held_out = candidates[pick.to(src.device)]
    held = torch.zeros(n, dtype=torch.bool, device=src.device)
    held[held_out] = True

    train_mask = (t <= val_time) & ~held[src] & ~held[dst]
    val_mask = (t > val_time) & (t <= test_time)
    test_mask = t > test_time
    train = stream[train_mask]
    seen = torch.zeros(n, dtype=torch.bool, device=src.device)
    seen[train.src] = True
    seen[train.dst] = True
    new_node_mask = present & ~seen
    val, test = stream[val_mask], stream[test_mask]
    return TemporalSplit(
        full=stream, train=train, val=val, test=test, new_node_mask=new_node_mask,
        val_inductive=new_node_mask[val.src] | new_node_mask[val.dst],
        test_inductive=new_node_mask[test.src] | new_node_mask[test.dst],
        val_time=val_time, test_time=test_time,
    )
