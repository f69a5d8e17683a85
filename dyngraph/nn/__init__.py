"""Neural network layers: evolving GCNs, memory-based dynamic GNNs, implicit layers, convs."""

from dyngraph.nn.conv import ATTENTIONS, EdgeAttention, GeneralAttentionConv, register_attention
from dyngraph.nn.evolve import (
    EvolveGCN,
    EvolveGCNH,
    EvolveGCNO,
    MatGRUCell,
    MatLSTMCell,
    detach_state,
    summarize,
)
from dyngraph.nn.gcn_norm import DiagonalSplit, GCNAdjacency, gcn_norm, gcn_split
from dyngraph.nn.implicit import CGS, IGNN, ConvergentGraphSolver
from dyngraph.nn.memory import (
    APAN,
    JODIE,
    TGN,
    DyRep,
    LinkDecoder,
    MemoryModel,
    TimeEncoder,
    build_memory_model,
)
from dyngraph.nn.pres import (
    PRES,
    GaussianMixtureTransition,
    enable_pres,
    fuse_memory,
    memory_coherence_loss,
)

__all__ = [
    "GeneralAttentionConv",
    "EdgeAttention",
    "register_attention",
    "ATTENTIONS",
    "EvolveGCN",
    "EvolveGCNO",
    "EvolveGCNH",
    "MatGRUCell",
    "MatLSTMCell",
    "summarize",
    "detach_state",
    "DiagonalSplit",
    "GCNAdjacency",
    "gcn_norm",
    "gcn_split",
    "CGS",
    "IGNN",
    "ConvergentGraphSolver",
    "MemoryModel",
    "TGN",
    "JODIE",
    "DyRep",
    "APAN",
    "TimeEncoder",
    "LinkDecoder",
    "build_memory_model",
    "PRES",
    "enable_pres",
    "GaussianMixtureTransition",
    "memory_coherence_loss",
    "fuse_memory",
]
