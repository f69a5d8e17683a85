"""Temporal graph data model: event streams, splits, negative samplers, neighbour index,
snapshots."""

from __future__ import annotations

from dyngraph.data.events import EventStream
from dyngraph.data.negatives import (
    HistoricalNegativeSampler,
    InductiveNegativeSampler,
    RandomNegativeSampler,
    make_negative_sampler,
)
from dyngraph.data.neighbors import NeighborBlock, TemporalNeighborIndex
from dyngraph.data.snapshots import Snapshot, SnapshotSequence, to_snapshots
from dyngraph.data.split import TemporalSplit, temporal_split

__all__ = [
    "EventStream",
    "TemporalSplit",
    "temporal_split",
    "RandomNegativeSampler",
    "HistoricalNegativeSampler",
    "InductiveNegativeSampler",
    "make_negative_sampler",
    "NeighborBlock",
    "TemporalNeighborIndex",
    "Snapshot",
    "SnapshotSequence",
    "to_snapshots",
]
