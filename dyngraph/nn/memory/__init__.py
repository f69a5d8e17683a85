"""Memory-based dynamic GNNs: TGN, JODIE, DyRep, APAN from swappable parts.

Parts: :class:`MemoryState` (memory + last update), :class:`MessageStore` (dense per-node raw
message ring buffers), message functions, aggregators, updaters, time encoding, embedding
modules and the :class:`LinkDecoder`; :class:`MemoryModel` runs TGN's Algorithm 1 without
leaking the future.
"""

from dyngraph.nn.memory.aggregate import (
    LastAggregator,
    MailboxAttentionAggregator,
    MeanAggregator,
)
from dyngraph.nn.memory.attention import dense_attention
from dyngraph.nn.memory.embedding import (
    GraphAttentionEmbedding,
    IdentityEmbedding,
    LinkDecoder,
    NeighborContext,
    StructuralAttention,
    TimeProjectionEmbedding,
)
from dyngraph.nn.memory.message import IdentityMessage, MLPMessage
from dyngraph.nn.memory.model import MemoryModel, MemoryUpdate, NeighborQuery
from dyngraph.nn.memory.presets import APAN, JODIE, PRESETS, TGN, DyRep, build_memory_model
from dyngraph.nn.memory.state import (
    ROLE_DST,
    ROLE_NBR,
    ROLE_SRC,
    MemoryState,
    MessageBlock,
    MessageStore,
)
from dyngraph.nn.memory.time_encoding import TimeEncoder
from dyngraph.nn.memory.updater import GRUUpdater, ResidualUpdater, RNNUpdater

__all__ = [
    "MemoryModel", "MemoryUpdate", "NeighborQuery",
    "MemoryState", "MessageStore", "MessageBlock", "ROLE_SRC", "ROLE_DST", "ROLE_NBR",
    "TimeEncoder",
    "IdentityMessage", "MLPMessage",
    "LastAggregator", "MeanAggregator", "MailboxAttentionAggregator",
    "GRUUpdater", "RNNUpdater", "ResidualUpdater",
    "IdentityEmbedding", "TimeProjectionEmbedding", "GraphAttentionEmbedding",
    "StructuralAttention", "NeighborContext", "LinkDecoder", "dense_attention",
    "TGN", "JODIE", "DyRep", "APAN", "PRESETS", "build_memory_model",
]
