"""Discrete-time view of an event stream: a sequence of graphs over fixed time windows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from dyngraph.data.events import EventStream
from dyngraph.errors import ConfigError

__all__ = ["Snapshot", "SnapshotSequence", "to_snapshots"]


@dataclass
class Snapshot:
    """The graph of the events with ``t_start <= t < t_end``.

    Attributes:
        edge_index: ``[2, E_t]`` distinct (source, destination) pairs, sorted.
        edge_weight: ``[E_t]`` float, how many events each pair had in the window.
        edge_attr: ``[E_t, D]`` mean event feature per pair, or None.
        edge_label: ``[E_t]`` mean event label per pair, or None.
        num_nodes: global node count (same for every snapshot).
        t_start, t_end: the half-open window.
        node_mask: bool ``[N]``, nodes with at least one event in the window.
    """

    edge_index: Tensor
    edge_weight: Tensor
    edge_attr: Tensor | None
    edge_label: Tensor | None
    num_nodes: int
    t_start: float
    t_end: float
    node_mask: Tensor

    @property
    def num_edges(self) -> int:
        """Number of edges ``E`` of the snapshot (columns of ``edge_index``)."""
        return self.edge_index.size(1)

    def to_pyg(self):
        """This snapshot as a ``torch_geometric.data.Data``."""
        from torch_geometric.data import Data

        data = Data(edge_index=self.edge_index, edge_weight=self.edge_weight,
                    num_nodes=self.num_nodes, node_mask=self.node_mask)
        if self.edge_attr is not None:
            data.edge_attr = self.edge_attr
        if self.edge_label is not None:
            data.edge_label = self.edge_label
        return data

    def __repr__(self) -> str:
        return (f"Snapshot([{self.t_start:g}, {self.t_end:g}), num_edges={self.num_edges}, "
                f"active_nodes={int(self.node_mask.sum())})")


class SnapshotSequence:
    """List-like sequence of :class:`Snapshot` sharing ``num_nodes``; ``window`` is the
    width of every window and ``t0`` the start of the first."""

    def __init__(self, snapshots: list[Snapshot], num_nodes: int, t0: float,
                 window: float) -> None:
        self.snapshots = snapshots
        self.num_nodes = num_nodes
        self.t0 = t0
        self.window = window

    def __len__(self) -> int:
        return len(self.snapshots)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return SnapshotSequence(self.snapshots[idx], self.num_nodes, self.t0, self.window)
        return self.snapshots[idx]

    def __iter__(self) -> Iterator[Snapshot]:
        return iter(self.snapshots)

    def __repr__(self) -> str:
        return (f"SnapshotSequence(len={len(self)}, num_nodes={self.num_nodes}, "
                f"window={self.window:g})")


def to_snapshots(stream: EventStream, window: float | None = None,
                 num_snapshots: int | None = None) -> SnapshotSequence:
    r"""Cut ``stream`` into windows: snapshot :math:`k` holds events with
    :math:`t_0 + k w \le t < t_0 + (k+1) w`, :math:`t_0` the first event time.

    Give exactly one of ``window`` (width :math:`w`; as many snapshots as needed to cover
    the last event) or ``num_snapshots`` (then :math:`w = (t_{last} - t_0)/n`, and the last
    event, which sits exactly on the right edge, is put in the last snapshot). Empty
    windows are kept as empty snapshots so index equals time step.
    """
    if (window is None) == (num_snapshots is None):
        raise ConfigError("to_snapshots: give exactly one of window= or num_snapshots=.")
    if stream.num_events == 0:
        raise ConfigError("to_snapshots: the stream has no events.")
    t = stream.t
    t0, t1 = float(t[0]), float(t[-1])
    if window is not None:
        if not (window > 0 and math.isfinite(window)):
            raise ConfigError(f"window={window} must be a positive finite number.")
        w = float(window)
        num = int(math.floor((t1 - t0) / w)) + 1
        last_closed = False
    else:
        num = int(num_snapshots)
        if num <= 0:
            raise ConfigError(f"num_snapshots={num_snapshots} must be positive.")
        w = (t1 - t0) / num if t1 > t0 else 1.0
        last_closed = True
    k = torch.floor((t - t0) / w).long()
    if last_closed:
        k = k.clamp(max=num - 1)
    # float rounding can push (t - t0) / w onto the next integer; the definition wins
    k = k - (t < t0 + k.double() * w).long()
    k = k + ((t >= t0 + (k + 1).double() * w) & (k < num - 1)).long()

    n = stream.num_nodes
    src, dst = stream.src, stream.dst
    if num * n * n < 2**62:
        key = (k * n + src) * n + dst
        uniq, inv = torch.unique(key, return_inverse=True)
        uk, us, ud = uniq // (n * n), (uniq // n) % n, uniq % n
    else:
        uniq, inv = torch.unique(torch.stack([k, src, dst], 1), dim=0, return_inverse=True)
        uk, us, ud = uniq.unbind(1)
    m = uniq.size(0)
    count = torch.zeros(m, dtype=torch.float32).index_add_(0, inv, torch.ones_like(t,
                                                           dtype=torch.float32))
    attr = label = None
    if stream.msg is not None:
        attr = torch.zeros(m, stream.msg_dim).index_add_(0, inv, stream.msg) / count[:, None]
    if stream.label is not None:
        lab = stream.label.to(torch.float32)
        label = torch.zeros(m).index_add_(0, inv, lab) / count
    bounds = torch.searchsorted(uk, torch.arange(num + 1))
    ev_bounds = torch.searchsorted(k, torch.arange(num + 1))
    snaps = []
    for i in range(num):
        a, b = int(bounds[i]), int(bounds[i + 1])
        ea, eb = int(ev_bounds[i]), int(ev_bounds[i + 1])
        mask = torch.zeros(n, dtype=torch.bool)
        mask[src[ea:eb]] = True
        mask[dst[ea:eb]] = True
        snaps.append(Snapshot(
            edge_index=torch.stack([us[a:b], ud[a:b]]),
            edge_weight=count[a:b],
            edge_attr=None if attr is None else attr[a:b],
            edge_label=None if label is None else label[a:b],
            num_nodes=n, t_start=t0 + i * w, t_end=t0 + (i + 1) * w, node_mask=mask,
        ))
    return SnapshotSequence(snaps, n, t0, w)
