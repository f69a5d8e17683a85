"""`EventStream`: a continuous-time dynamic graph as a time-sorted list of interaction events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dyngraph.errors import DataError

if TYPE_CHECKING:  # imported lazily at call time to keep modules independent
    from dyngraph.data.snapshots import SnapshotSequence
    from dyngraph.data.split import TemporalSplit

__all__ = ["EventStream"]


def _first_true(mask: Tensor) -> int:
    return int(mask.reshape(mask.size(0), -1).any(dim=1).nonzero()[0, 0])


def _as_tensor(x, dtype: torch.dtype, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError) as e:
            raise DataError(f"EventStream: `{name}` cannot be converted to a tensor ({e}).") from e
    if dtype == torch.long and x.is_floating_point():
        if x.numel() and not torch.isfinite(x).all():
            row = _first_true(~torch.isfinite(x))
            raise DataError(
                f"EventStream: `{name}` has a non-finite node id at row {row}; "
                "node ids must be finite integers."
            )
        if x.numel() and not (x == x.round()).all():
            row = _first_true(x != x.round())
            raise DataError(
                f"EventStream: `{name}` has a non-integer node id {x[row].item()} at row {row}; "
                "node ids must be integers."
            )
    return x.to(dtype)


class EventStream:
    r"""A continuous-time dynamic graph: events :math:`(s_i, d_i, t_i, m_i, y_i)` sorted by time.

    Args:
        src (LongTensor): source node of each event, shape ``[E]``.
        dst (LongTensor): destination node of each event, shape ``[E]``.
        t (Tensor): event time, shape ``[E]``, stored as ``float64`` (Unix seconds keep full
            precision); must be non-decreasing unless ``sort=True``.
        msg (Tensor, optional): event features, ``float32 [E, D]`` (a 1-D tensor is read as
            ``D = 1``).
        label (Tensor, optional): one label per event, ``[E]`` (e.g. Bitcoin trust rating).
        num_nodes (int, optional): number of nodes; default ``max id + 1``.
        sort (bool): sort events by time (stable, so ties keep file order) instead of
            raising on unsorted input.
        name (str): dataset name, used in messages and reports.
        item_offset (int, optional): for a bipartite stream (users -> items, JODIE layout),
            nodes ``>= item_offset`` are items; every destination must be an item and every
            source a user.
        original_ids (LongTensor, optional): ``original_ids[i]`` is node ``i``'s id in the
            source file, kept when a loader remapped ids to ``0..N-1``.

    Raises:
        DataError: naming the first bad row -- unsorted time, negative id or id
            ``>= num_nodes``, non-finite time or feature, length mismatch.
    """

    def __init__(
        self,
        src,
        dst,
        t,
        msg=None,
        label=None,
        num_nodes: int | None = None,
        *,
        sort: bool = False,
        name: str = "",
        item_offset: int | None = None,
        original_ids: Tensor | None = None,
        _validate: bool = True,
    ) -> None:
        self.name = name
        src = _as_tensor(src, torch.long, "src").reshape(-1)
        dst = _as_tensor(dst, torch.long, "dst").reshape(-1)
        t = _as_tensor(t, torch.float64, "t").reshape(-1)
        if msg is not None:
            msg = _as_tensor(msg, torch.float32, "msg")
            if msg.dim() == 1:
                msg = msg.unsqueeze(-1)
        if label is not None:
            label = torch.as_tensor(label).reshape(-1)
        if _validate:
            self._check_lengths(src, dst, t, msg, label)
            if t.numel() and not torch.isfinite(t).all():
                row = _first_true(~torch.isfinite(t))
                raise DataError(f"{self._who()}: time at row {row} is {t[row].item()}; "
                                "event times must be finite.")
            if sort and t.numel() > 1 and (t[1:] < t[:-1]).any():
                perm = torch.sort(t, stable=True).indices
                src, dst, t = src[perm], dst[perm], t[perm]
                msg = msg[perm] if msg is not None else None
                label = label[perm] if label is not None else None
        self.src, self.dst, self.t, self.msg, self.label = src, dst, t, msg, label
        max_id = int(torch.maximum(src.max(), dst.max())) if src.numel() else -1
        self.num_nodes = int(num_nodes) if num_nodes is not None else max_id + 1
        self.item_offset = None if item_offset is None else int(item_offset)
        self.original_ids = original_ids
        if _validate:
            self._check_values()

    # ------------------------------------------------------------------ validation
    def _who(self) -> str:
        return f"EventStream{f' {self.name!r}' if self.name else ''}"

    def _check_lengths(self, src, dst, t, msg, label) -> None:
        e = src.numel()
        for nm, v in (("dst", dst), ("t", t), ("msg", msg), ("label", label)):
            if v is not None and v.size(0) != e:
                raise DataError(
                    f"{self._who()}: `{nm}` has {v.size(0)} rows but `src` has {e}; "
                    "every per-event tensor needs one row per event."
                )

    def _check_values(self) -> None:
        src, dst, t, n = self.src, self.dst, self.t, self.num_nodes
        if t.numel() > 1:
            bad = t[1:] < t[:-1]
            if bad.any():
                row = _first_true(bad) + 1
                raise DataError(
                    f"{self._who()}: time goes backwards at row {row} "
                    f"({t[row - 1].item()} then {t[row].item()}); sort the events by time "
                    "or pass sort=True."
                )
        for nm, ids in (("src", src), ("dst", dst)):
            if ids.numel() == 0:
                continue
            bad = (ids < 0) | (ids >= n)
            if bad.any():
                row = _first_true(bad)
                raise DataError(
                    f"{self._who()}: {nm} id {ids[row].item()} at row {row} is outside "
                    f"[0, {n}); ids must be non-negative and below num_nodes={n}."
                )
        if self.msg is not None and self.msg.numel() and not torch.isfinite(self.msg).all():
            row = _first_true(~torch.isfinite(self.msg).all(dim=-1))
            raise DataError(f"{self._who()}: event features (msg) at row {row} are not finite; "
                            "drop or impute NaN/inf features before building the stream.")
        if self.label is not None and self.label.is_floating_point() and self.label.numel():
            if not torch.isfinite(self.label).all():
                row = _first_true(~torch.isfinite(self.label))
                raise DataError(f"{self._who()}: label at row {row} is not finite; "
                                "drop or impute it.")
        if self.item_offset is not None and src.numel():
            k = self.item_offset
            bad = (src >= k) | (dst < k)
            if bad.any():
                row = _first_true(bad)
                raise DataError(
                    f"{self._who()}: bipartite stream with item_offset={k}, but event {row} "
                    f"goes {src[row].item()} -> {dst[row].item()}; sources must be < {k} "
                    f"and destinations >= {k}."
                )

    # ------------------------------------------------------------------ basic protocol
    @property
    def num_events(self) -> int:
        """Number of events ``B`` in the stream."""
        return self.src.numel()

    @property
    def msg_dim(self) -> int:
        """Width ``F`` of the event features ``msg`` ``[B, F]`` (0 without features)."""
        return 0 if self.msg is None else self.msg.size(-1)

    @property
    def is_bipartite(self) -> bool:
        """Whether node ids are split into users ``[0, item_offset)`` and items (``item_offset``
        set).
        """
        return self.item_offset is not None

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]`` (source, destination) of every event, PyG layout."""
        return torch.stack([self.src, self.dst], dim=0)

    def __len__(self) -> int:
        return self.num_events

    def _derive(self, **kw) -> EventStream:
        fields = dict(src=self.src, dst=self.dst, t=self.t, msg=self.msg, label=self.label)
        fields.update(kw)
        return EventStream(
            **fields, num_nodes=self.num_nodes, name=self.name, item_offset=self.item_offset,
            original_ids=self.original_ids, _validate=False,
        )

    def __getitem__(self, idx) -> EventStream:
        """Events selected by a slice, a bool mask ``[E]`` or a LongTensor of positions.

        The selection keeps ``num_nodes``; an index tensor must be increasing so the result
        stays time-sorted.
        """
        if isinstance(idx, int):
            idx = slice(idx, idx + 1 if idx != -1 else None)
        if isinstance(idx, Tensor):
            if idx.dtype == torch.bool:
                if idx.numel() != self.num_events:
                    raise DataError(f"{self._who()}: bool mask has {idx.numel()} entries for "
                                    f"{self.num_events} events.")
            else:
                idx = idx.long()
                if idx.numel() > 1 and (idx[1:] < idx[:-1]).any():
                    raise DataError(f"{self._who()}: index tensor is not increasing, the "
                                    "selection would not be time-sorted; sort the index first.")
        sel = {k: (v[idx] if v is not None else None)
               for k, v in dict(src=self.src, dst=self.dst, t=self.t, msg=self.msg,
                                label=self.label).items()}
        return self._derive(**sel)

    def to(self, device) -> EventStream:
        """A copy with ``src``, ``dst``, ``t``, ``msg`` and ``label`` moved to ``device``."""
        return self._derive(**{
            k: (v.to(device) if v is not None else None)
            for k, v in dict(src=self.src, dst=self.dst, t=self.t, msg=self.msg,
                             label=self.label).items()
        })

    def batches(self, batch_size: int) -> Iterator[EventStream]:
        """Consecutive chronological slices of ``batch_size`` events (the last may be shorter)."""
        if batch_size <= 0:
            raise DataError(f"batch_size must be positive, got {batch_size}.")
        for s in range(0, self.num_events, batch_size):
            yield self[s:s + batch_size]

    # ------------------------------------------------------------------ derived views
    @property
    def time_span(self) -> tuple[float, float]:
        """``(first, last)`` event time as floats; ``(0.0, 0.0)`` for an empty stream."""
        if self.num_events == 0:
            return (0.0, 0.0)
        return float(self.t[0]), float(self.t[-1])

    def active_nodes(self) -> Tensor:
        """Bool mask ``[num_nodes]``: nodes that take part in at least one event."""
        mask = torch.zeros(self.num_nodes, dtype=torch.bool, device=self.src.device)
        mask[self.src] = True
        mask[self.dst] = True
        return mask

    def dst_pool(self) -> Tensor:
        """Candidate negative destinations: all items of a bipartite stream, else every node
        that occurs as a destination (DyGLib's ``unique_dst_node_ids``)."""
        if self.item_offset is not None:
            return torch.arange(self.item_offset, self.num_nodes, device=self.src.device)
        return torch.unique(self.dst)

    def split(self, val_ratio: float = 0.15, test_ratio: float = 0.15,
              new_node_ratio: float = 0.1, seed: int = 0) -> TemporalSplit:
        """Chronological train/validation/test split with held-out new nodes.

        Shorthand for :func:`dyngraph.data.temporal_split` (see there for the protocol).

        Args:
            val_ratio: fraction of events (by time) for validation.
            test_ratio: fraction of events (by time) for testing.
            new_node_ratio: fraction of the nodes first seen after training that are removed
                from training, for the inductive ("new node") evaluation.
            seed: seed of the new-node draw.

        Returns:
            a :class:`dyngraph.data.TemporalSplit`.
        """
        from dyngraph.data.split import temporal_split

        return temporal_split(self, val_ratio=val_ratio, test_ratio=test_ratio,
                              new_node_ratio=new_node_ratio, seed=seed)

    def to_snapshots(self, window: float | None = None,
                     num_snapshots: int | None = None) -> SnapshotSequence:
        """Discretise the stream into a snapshot sequence.

        Shorthand for :func:`dyngraph.data.to_snapshots`: give either ``window`` (time width of
        each snapshot) or ``num_snapshots`` (equal-width windows over the time span).

        Returns:
            a :class:`dyngraph.data.SnapshotSequence`.
        """
        from dyngraph.data.snapshots import to_snapshots

        return to_snapshots(self, window=window, num_snapshots=num_snapshots)

    def __repr__(self) -> str:
        extra = f", msg_dim={self.msg_dim}" if self.msg is not None else ""
        extra += ", label" if self.label is not None else ""
        extra += f", item_offset={self.item_offset}" if self.item_offset is not None else ""
        nm = f"{self.name}, " if self.name else ""
        return (f"EventStream({nm}num_events={self.num_events}, num_nodes={self.num_nodes}"
                f"{extra})")
