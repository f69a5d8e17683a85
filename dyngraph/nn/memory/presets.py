"""Presets reproducing the update rules of TGN, JODIE, DyRep and APAN in the memory framework.

Each is a :class:`~dyngraph.nn.memory.MemoryModel` built from the parts named in its docstring.
"""

from __future__ import annotations

from dyngraph.errors import ConfigError
from dyngraph.nn.memory.aggregate import (
    LastAggregator,
    MailboxAttentionAggregator,
    MeanAggregator,
)
from dyngraph.nn.memory.embedding import (
    GraphAttentionEmbedding,
    IdentityEmbedding,
    StructuralAttention,
    TimeProjectionEmbedding,
)
from dyngraph.nn.memory.message import IdentityMessage
from dyngraph.nn.memory.model import MemoryModel
from dyngraph.nn.memory.time_encoding import TimeEncoder
from dyngraph.nn.memory.updater import GRUUpdater, ResidualUpdater, RNNUpdater

__all__ = ["TGN", "JODIE", "DyRep", "APAN", "PRESETS", "build_memory_model"]


class TGN(MemoryModel):
    r"""Temporal Graph Network (Rossi et al. 2020), the paper's default configuration.

    .. math::
        m_i(t) = s_i(t^-) \| s_j(t^-) \| \phi(t - t_i^-) \| e_{ij}(t),\quad
        \bar m_i = m_i(t_{last}),\quad s_i = \mathrm{GRU}(\bar m_i, s_i),\\
        z_i(t) = \mathrm{MLP}\big(s_i \,\|\, \mathrm{MHA}(s_i\|\phi(0),\,
        \{s_j \| e_{ij} \| \phi(t - t_{ij})\}_{j \in N_i^k(t)})\big)

    Args:
        num_nodes, feat_dim: graph size and event feature dimension.
        memory_dim, time_dim, embedding_dim: sizes (100 each in the paper).
        num_neighbors: ``k`` most recent neighbours (10); heads: attention heads (2);
        dropout: attention dropout (0.1); aggregator: ``"last"`` or ``"mean"``.
        time_learnable: train the time encoding's frequencies (TGN) or keep TGN's initial
            schedule fixed (GraphMixer). Fixed is the default: it is as accurate here and
            skips the backward pass through ``cos`` over every ``[q, k, T]`` neighbour slot,
            the largest elementwise cost of a training step.
    """

    def __init__(self, num_nodes: int, feat_dim: int = 0, memory_dim: int = 100,
                 time_dim: int = 100, embedding_dim: int = 100, num_neighbors: int = 10,
                 heads: int = 2, dropout: float = 0.1, aggregator: str = "last",
                 store_size: int = 10, time_learnable: bool = False) -> None:
        time_enc = TimeEncoder(time_dim, learnable=time_learnable)
        message = IdentityMessage(memory_dim, time_dim, feat_dim)
        aggr, size = _aggregator(aggregator, store_size)
        super().__init__(
            num_nodes, memory_dim, time_enc, message, aggr,
            GRUUpdater(message.out_channels, memory_dim),
            GraphAttentionEmbedding(memory_dim, time_enc, feat_dim, embedding_dim, heads, dropout),
            feat_dim=feat_dim, num_neighbors=num_neighbors, store_size=size,
        )


class JODIE(MemoryModel):
    r"""JODIE (Kumar et al. 2019) as formulated in the TGN framework.

    .. math::
        s_i(t) = \tanh\big(W_1^{r} s_i(t^-) + W_2^{r} s_j(t^-) + W_3^{r} e_{ij}
        + W_4^{r} \phi(\Delta_i)\big)\quad(r = \text{source or destination RNN}),\\
        z_i(t) = (1 + w\, \Delta_i / \tau) \odot s_i(t)

    (JODIE's user/item RNNs are the source/destination RNNs; :math:`\phi` replaces JODIE's
    scalar :math:`\Delta`, as in TGN's Table 1.)
    """

    def __init__(self, num_nodes: int, feat_dim: int = 0, memory_dim: int = 100,
                 time_dim: int = 100, time_scale: float = 1.0, aggregator: str = "last",
                 store_size: int = 10) -> None:
        time_enc = TimeEncoder(time_dim)
        message = IdentityMessage(memory_dim, time_dim, feat_dim)
        aggr, size = _aggregator(aggregator, store_size)
        super().__init__(
            num_nodes, memory_dim, time_enc, message, aggr,
            RNNUpdater(message.out_channels, memory_dim, per_role=True),
            TimeProjectionEmbedding(memory_dim, time_scale),
            feat_dim=feat_dim, store_size=size,
        )


class DyRep(MemoryModel):
    r"""DyRep (Trivedi et al. 2019) in the TGN framework.

    .. math::
        s_v(t) = \tanh\big(W^S h^u_{struct}(t^-) + W^R s_v(t^-) + W^t \phi(t - t_v^-)
        + W^e e_{uv}\big),\quad z_v(t) = s_v(t)

    with :math:`h^u_{struct}` the :class:`StructuralAttention` embedding of the counterpart
    ``u`` over its ``k`` most recent neighbours before the event.
    """

    def __init__(self, num_nodes: int, feat_dim: int = 0, memory_dim: int = 100,
                 time_dim: int = 100, num_neighbors: int = 10) -> None:
        time_enc = TimeEncoder(time_dim)
        message = IdentityMessage(memory_dim, time_dim, feat_dim, include_self=False)
        super().__init__(
            num_nodes, memory_dim, time_enc, message, LastAggregator(),
            RNNUpdater(message.out_channels, memory_dim),
            IdentityEmbedding(memory_dim),
            feat_dim=feat_dim, num_neighbors=num_neighbors, store_size=1,
            counterpart=StructuralAttention(memory_dim),
        )


class APAN(MemoryModel):
    r"""APAN (Wang et al. 2021): asynchronous mail propagation.

    Each event ``(i, j, t, e)`` creates the mail :math:`\mu = s_i \| s_j \| e \| \phi(\cdot)`,
    delivered to ``i``, ``j`` and their ``k`` most recent neighbours (mailboxes of
    ``mailbox_size`` slots). A node that received mail updates its state by attention over its
    mailbox with its state as the query:

    .. math::
        \bar m_v = \mathrm{MHA}(s_v, \mathcal M_v),\quad
        s_v = \mathrm{LayerNorm}(s_v + \mathrm{MLP}(\bar m_v \| s_v)),\quad z_v = s_v

    Scoring reads only node states (no graph query at inference, APAN's point).
    """

    def __init__(self, num_nodes: int, feat_dim: int = 0, memory_dim: int = 100,
                 time_dim: int = 100, num_neighbors: int = 10, mailbox_size: int = 10,
                 heads: int = 2, dropout: float = 0.1) -> None:
        time_enc = TimeEncoder(time_dim)
        message = IdentityMessage(memory_dim, time_dim, feat_dim)
        super().__init__(
            num_nodes, memory_dim, time_enc, message,
            MailboxAttentionAggregator(message.out_channels, memory_dim, heads, dropout),
            ResidualUpdater(memory_dim, memory_dim),
            IdentityEmbedding(memory_dim),
            feat_dim=feat_dim, num_neighbors=num_neighbors, store_size=mailbox_size,
            deliver_to_neighbors=True, event_order_mail=True,
        )


def _aggregator(name: str, store_size: int):
    if name == "last":
        return LastAggregator(), 1
    if name == "mean":
        return MeanAggregator(), store_size
    raise ConfigError(f"aggregator must be 'last' or 'mean', got {name!r}")


PRESETS = {"tgn": TGN, "jodie": JODIE, "dyrep": DyRep, "apan": APAN}


def build_memory_model(name: str, num_nodes: int, feat_dim: int = 0, **kwargs) -> MemoryModel:
    """Build a preset by name (``tgn``, ``jodie``, ``dyrep``, ``apan``); ``kwargs`` go to its
    constructor (unknown keys for that preset are ignored, so one config serves all)."""
    import inspect

    key = name.lower()
    if key not in PRESETS:
        raise ConfigError(f"unknown memory model {name!r}; choose one of {sorted(PRESETS)}")
    cls = PRESETS[key]
    params = inspect.signature(cls.__init__).parameters
    return cls(num_nodes, feat_dim, **{k: v for k, v in kwargs.items() if k in params})
