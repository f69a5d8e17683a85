"""`TemporalNeighborIndex`: the k most recent neighbours of a node strictly before a time."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dyngraph.data.events import EventStream
from dyngraph.errors import DataError, ShapeError

__all__ = ["NeighborBlock", "TemporalNeighborIndex"]


def _native_ok() -> bool:
    """Whether ``torch.ops.dyngraph.tgn_neighbors`` (``kernels/temporal_neighbors.cpp``) may
    be used (:func:`dyngraph.ops._native.op_usable`)."""
    from dyngraph.ops import _native

    return _native.op_usable("tgn_neighbors")


class NeighborBlock(NamedTuple):
    """Neighbours of ``B`` query nodes, most recent first, padded to ``k``.

    ``nbr [B, k]`` neighbour id (0 where padded), ``eid [B, k]`` event id in the indexed
    stream (-1 where padded), ``t [B, k]`` event time (0 where padded), ``mask [B, k]``
    True for real entries.
    """

    nbr: Tensor
    eid: Tensor
    t: Tensor
    mask: Tensor


class TemporalNeighborIndex:
    r"""Per-node time-sorted adjacency (CSR) of an :class:`EventStream`.

    Each node's incident events are stored contiguously in event order; a query
    :math:`(v, t)` finds with one ``searchsorted`` how many of them happened strictly
    before :math:`t` and gathers the last :math:`k`. Everything is batched: no per-node
    Python loop. Build cost :math:`O(E \log E)`, query :math:`O(B (\log E + k))`.

    Args:
        stream: the events to index (usually ``split.full``: "strictly before t" already
            hides the future).
        undirected: an event :math:`u \to v` makes each a neighbour of the other
            (TGN, DyGLib); if False only :math:`v` becomes a neighbour of :math:`u`.
    """

    def __init__(self, stream: EventStream, undirected: bool = True) -> None:
        self.num_nodes = stream.num_nodes
        self.num_events = stream.num_events
        self.undirected = undirected
        self.event_t = stream.t
        e = stream.num_events
        eid = torch.arange(e, device=stream.src.device)
        if undirected:
            # interleave (src side, dst side) per event so a stable sort by node keeps each
            # node's entries in event order, ties in time included
            node = torch.stack([stream.src, stream.dst], dim=1).view(-1)
            nbr = torch.stack([stream.dst, stream.src], dim=1).view(-1)
            eid = eid.repeat_interleave(2)
        else:
            node, nbr = stream.src, stream.dst
        order = torch.sort(node, stable=True).indices
        node = node[order]
        # entry 0 of each padded array is the padding value, so one masked gather fills
        # both real and padded slots
        eid = eid[order]
        self._nbr_p = torch.cat([nbr.new_zeros(1), nbr[order]])
        self._eid_p = torch.cat([eid.new_full((1,), -1), eid])
        self._t_p = torch.cat([stream.t.new_zeros(1), stream.t[eid]])
        self.nbr, self.eid, self.t = self._nbr_p[1:], self._eid_p[1:], self._t_p[1:]
        counts = torch.bincount(node, minlength=self.num_nodes)
        self.ptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=node.device)
        torch.cumsum(counts, 0, out=self.ptr[1:])
        # composite key node * (E + 1) + eid is sorted, so a global searchsorted answers the
        # per-node "how many entries before event e" question for a whole batch at once
        self._stride = e + 1
        self._key = node * self._stride + self.eid
        self.t = self.t.to(torch.float64).contiguous()
        self._native: bool | None = None  # decided at the first query

    def degree(self, nodes: Tensor, t: Tensor | None = None) -> Tensor:
        """Number of indexed events of each node (strictly before ``t`` when given)."""
        nodes = torch.as_tensor(nodes, dtype=torch.long).view(-1)
        if t is None:
            return self.ptr[nodes + 1] - self.ptr[nodes]
        return self._end(nodes, self._cutoff(t, nodes.numel())) - self.ptr[nodes]

    def _per_query(self, values, b: int, dtype: torch.dtype, what: str) -> Tensor:
        """``values`` as one entry per query node (a scalar is broadcast)."""
        v = torch.as_tensor(values, dtype=dtype, device=self.event_t.device).view(-1)
        if v.numel() == 1 and b != 1:
            v = v.expand(b)
        if v.numel() != b:
            raise ShapeError(f"query: {b} nodes but {v.numel()} {what}; pass one per node.")
        return v

    def _cutoff(self, t, b: int) -> Tensor:
        t = self._per_query(t, b, torch.float64, "times")
        # events are time-sorted, so "time < t" is exactly "event id < cutoff"
        return torch.searchsorted(self.event_t, t.contiguous(), right=False)

    def _end(self, nodes: Tensor, cutoff: Tensor) -> Tensor:
        return torch.searchsorted(self._key, nodes * self._stride + cutoff, right=False)

    def query(self, nodes: Tensor, t: Tensor | float, k: int) -> NeighborBlock:
        """The ``k`` most recent neighbours of each ``nodes[i]`` strictly before ``t[i]``.

        Args:
            nodes: LongTensor ``[B]``.
            t: times ``[B]`` (or one scalar for all).
            k: neighbours per node.

        Returns:
            :class:`NeighborBlock` with tensors of shape ``[B, k]``, most recent first.
        """
        nodes = torch.as_tensor(nodes, dtype=torch.long).view(-1)
        if self._native is None:
            self._native = self.t.device.type == "cpu" and _native_ok()
        if self._native and k >= 0 and nodes.device.type == "cpu":
            t = self._per_query(t, nodes.numel(), torch.float64, "times")
            self._check_nodes(nodes)
            # one pass: per-node binary search on the entries' times, then the k slots
            return NeighborBlock(*torch.ops.dyngraph.tgn_neighbors(
                self.ptr, self.t, self.nbr, self.eid, nodes, t.contiguous(), k))
        return self._gather(nodes, self._cutoff(t, nodes.numel()), k)

    def query_before_event(self, nodes: Tensor, eid: Tensor | int, k: int) -> NeighborBlock:
        """Like :meth:`query` but the cut is by event position: only events with id
        ``< eid[i]`` are visible (streaming semantics; ties in time are split by order)."""
        nodes = torch.as_tensor(nodes, dtype=torch.long).view(-1)
        eid = self._per_query(eid, nodes.numel(), torch.long, "event ids")
        return self._gather(nodes, eid.clamp(0, self.num_events), k)

    def _check_nodes(self, nodes: Tensor) -> None:
        if nodes.numel():
            lo, hi = (int(v) for v in torch.aminmax(nodes))
            if lo < 0 or hi >= self.num_nodes:
                raise DataError(f"query nodes must be in [0, {self.num_nodes}); got ids "
                                f"{lo}..{hi}.")

    def _gather(self, nodes: Tensor, cutoff: Tensor, k: int) -> NeighborBlock:
        if k < 0:
            raise ShapeError(f"k={k} must be non-negative.")
        self._check_nodes(nodes)
        start = self.ptr[nodes]
        end = self._end(nodes, cutoff)
        # padded-array position of the j-th most recent entry is end - j (entry 0 = padding)
        pos = end.unsqueeze(1) - torch.arange(k, device=nodes.device)
        mask = pos > start.unsqueeze(1)
        flat = pos.where(mask, 0).view(-1)
        # index_select on the flat positions: ~2.5x faster than advanced indexing with [B, k]
        return NeighborBlock(*(a.index_select(0, flat).view(mask.shape)
                               for a in (self._nbr_p, self._eid_p, self._t_p)), mask)

    def __repr__(self) -> str:
        return (f"TemporalNeighborIndex(num_nodes={self.num_nodes}, "
                f"num_events={self.num_events}, undirected={self.undirected})")
