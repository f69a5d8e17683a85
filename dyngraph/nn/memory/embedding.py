"""Embedding modules ``z_i(t) = emb(i, t)`` on dense ``[q, k]`` neighbour blocks, the DyRep
structural attention, and the link decoder."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dyngraph.nn.memory.time_encoding import TimeEncoder

__all__ = [
    "NeighborContext",
    "IdentityEmbedding",
    "TimeProjectionEmbedding",
    "GraphAttentionEmbedding",
    "StructuralAttention",
    "LinkDecoder",
]


class NeighborContext(NamedTuple):
    """The ``k`` most recent neighbours of ``q`` query nodes, as dense blocks.

    ``node_mem``: ``[n, D]`` memory of the ``n`` distinct nodes involved; ``index``:
    ``[q, k]`` row of each neighbour in ``node_mem`` (node-level projections are computed once
    per node and gathered, not once per slot); ``feat``: ``[q, k, F]`` features of the
    connecting events; ``dt``: ``[q, k]`` float32 ``t_query - t_event``; ``mask``: ``[q, k]``
    True where a neighbour exists.
    """

    node_mem: Tensor
    index: Tensor
    feat: Tensor
    dt: Tensor
    mask: Tensor


class IdentityEmbedding(nn.Module):
    r""":math:`z_i(t) = s_i(t)` (DyRep, APAN)."""

    needs_neighbors = False

    def __init__(self, memory_dim: int) -> None:
        super().__init__()
        self.out_channels = memory_dim

    def reset_parameters(self) -> None:
        """No parameters."""

    def forward(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        return mem

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.out_channels})"


class TimeProjectionEmbedding(nn.Module):
    r"""JODIE's projection (Kumar et al. 2019, eq. 3):
    :math:`z_i(t) = (1 + w\,\Delta t / \tau) \odot s_i(t)`, with :math:`\Delta t` the time since
    the node's last update and :math:`\tau` = ``time_scale`` (JODIE normalises
    :math:`\Delta t`; the trainer sets it to the std of the training inter-event times).
    ``w`` is initialised :math:`\mathcal N(0, 1/\sqrt D)` as in JODIE's ``NormalLinear``."""

    needs_neighbors = False

    def __init__(self, memory_dim: int, time_scale: float = 1.0) -> None:
        super().__init__()
        self.out_channels = memory_dim
        self.weight = nn.Parameter(torch.empty(memory_dim))
        self.register_buffer("time_scale", torch.tensor(float(time_scale), dtype=torch.float64))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / math.sqrt(self.out_channels))

    def forward(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        """``mem``: ``[q, D]``, ``dt``: ``[q]`` (float64 ok) -> ``[q, D]``."""
        rel = (dt.to(torch.float64) / self.time_scale).to(mem.dtype).unsqueeze(-1)
        return mem * (1.0 + rel * self.weight)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.out_channels})"


class GraphAttentionEmbedding(nn.Module):
    r"""TGN's temporal graph attention (Rossi et al. 2020 eq. 6-9, TGAT) over the ``k`` most
    recent neighbours, computed on dense ``[q, k]`` blocks (batched matmuls, no scatter):

    .. math::
        q_i = W_q s_i,\quad
        K_{ij} = W_k s_j + W_e [e_{ij} \| \phi(t - t_{ij})],\quad
        V_{ij} = W_v s_j + W_e [e_{ij} \| \phi(t - t_{ij})],\\
        \tilde h_i = W_o \textstyle\sum_j \mathrm{softmax}_j(q_i^\top K_{ij}/\sqrt{d}) V_{ij},
        \quad z_i = \mathrm{MLP}(s_i \| \tilde h_i).

    TGN's query also carries :math:`\phi(0)`, a constant absorbed by the bias of ``W_q``;
    the edge term is shared by keys and values as in PyG's ``TransformerConv`` (the PyG recipe).
    Node projections :math:`W_k s_j, W_v s_j` are computed once per distinct node and gathered.
    A node with no neighbour gets :math:`\tilde h_i = 0`.

    Args:
        memory_dim: ``D``; time_enc: shared :class:`TimeEncoder`; feat_dim: ``F``;
        out_channels: embedding size; heads: attention heads; dropout: attention dropout.
    """

    needs_neighbors = True

    def __init__(self, memory_dim: int, time_enc: TimeEncoder, feat_dim: int = 0,
                 out_channels: int = 100, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.time_enc = time_enc
        self.heads = heads
        self.head_dim = max(1, out_channels // heads)
        hd = heads * self.head_dim
        self.lin_q = nn.Linear(memory_dim, hd)
        self.lin_kv = nn.Linear(memory_dim, 2 * hd)
        self.lin_edge = nn.Linear(feat_dim + time_enc.out_channels, hd, bias=False)
        self.lin_o = nn.Linear(hd, hd)
        self.merge1 = nn.Linear(memory_dim + hd, out_channels)
        self.merge2 = nn.Linear(out_channels, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = out_channels

    def reset_parameters(self) -> None:
        for lin in (self.lin_q, self.lin_kv, self.lin_edge, self.lin_o, self.merge1,
                    self.merge2):
            lin.reset_parameters()

    def forward(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        """``mem``: ``[q, D]`` query-node memory; ``nbr``: neighbour blocks -> ``[q, out]``."""
        if nbr is None:
            raise ValueError("GraphAttentionEmbedding needs a NeighborContext")
        q_n, k = nbr.mask.shape
        h, d = self.heads, self.head_dim
        query = self.lin_q(mem).view(q_n, h, d)
        key, value = self.lin_kv(nbr.node_mem).view(-1, 2, h, d).unbind(1)
        idx = nbr.index.reshape(-1)
        key = key[idx].view(q_n, k, h, d)
        value = value[idx].view(q_n, k, h, d)
        x = self.time_enc(nbr.dt)  # [q, k, F+T]
        if nbr.feat.size(-1):
            x = torch.cat([nbr.feat, x], dim=-1)
        # The edge term W_e x_j is never formed per slot: q.(W_e x_j) = (W_e^T q).x_j and
        # sum_j a_j W_e x_j = W_e sum_j a_j x_j, which cuts the per-slot matmul (the bulk of
        # the FLOPs) to two thin batched products.
        w_e = self.lin_edge.weight.view(h, d, -1)  # [h, d, F+T]
        q_e = torch.einsum("qhd,hde->qhe", query, w_e)
        score = (query.unsqueeze(1) * key).sum(-1) + torch.bmm(x, q_e.transpose(1, 2))
        score = score / math.sqrt(d)  # [q, k, h]
        score = score.masked_fill(~nbr.mask.unsqueeze(-1), float("-inf"))
        alpha = torch.softmax(score, dim=1).nan_to_num(0.0)  # all-masked rows -> 0
        alpha = self.dropout(alpha)
        att = (alpha.unsqueeze(-1) * value).sum(1)  # [q, h, d]
        ax = torch.bmm(alpha.transpose(1, 2), x)  # [q, h, F+T]
        att = att + torch.einsum("qhe,hde->qhd", ax, w_e)
        att = self.lin_o(att.reshape(q_n, h * d))
        return self.merge2(torch.relu(self.merge1(torch.cat([mem, att], dim=-1))))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(out={self.out_channels}, heads={self.heads}, "
                f"dropout={self.dropout.p})")


class StructuralAttention(nn.Module):
    r"""DyRep's structural embedding of a node ``u`` (Trivedi et al. 2019, eq. 4):

    .. math::
        h^u_{struct} = \max_{i \in N_u}\, \sigma\big(q_{ui}\,(W_h s_i + b_h)\big),\quad
        q_{ui} = \mathrm{softmax}_{i \in N_u}\big((W_q s_u)^\top (W_k s_i)/\sqrt D\big)

    (element-wise max over neighbours; DyRep derives ``q`` from its intensity matrix, here it is
    a learned attention). A node without neighbours gets ``0``.
    """

    needs_neighbors = True

    def __init__(self, memory_dim: int) -> None:
        super().__init__()
        self.lin_h = nn.Linear(memory_dim, memory_dim)
        self.lin_q = nn.Linear(memory_dim, memory_dim, bias=False)
        self.lin_k = nn.Linear(memory_dim, memory_dim, bias=False)
        self.out_channels = memory_dim

    def reset_parameters(self) -> None:
        for lin in (self.lin_h, self.lin_q, self.lin_k):
            lin.reset_parameters()

    def forward(self, s_u: Tensor, nbr_mem: Tensor, mask: Tensor) -> Tensor:
        """``s_u``: ``[n, D]``; ``nbr_mem``: ``[n, k, D]``; ``mask``: ``[n, k]`` -> ``[n, D]``."""
        score = (self.lin_q(s_u).unsqueeze(1) * self.lin_k(nbr_mem)).sum(-1)
        score = score / math.sqrt(s_u.size(-1))
        score = score.masked_fill(~mask, float("-inf"))
        q = torch.softmax(score, dim=1).nan_to_num(0.0)
        val = torch.sigmoid(q.unsqueeze(-1) * self.lin_h(nbr_mem))
        val = val.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        out = val.max(dim=1).values
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.out_channels})"


class LinkDecoder(nn.Module):
    r"""Link decoder of TGN/PyG: :math:`p(i, j) = w^\top \mathrm{ReLU}(W_s z_i + W_d z_j) + b`
    (a logit)."""

    def __init__(self, in_channels: int, hidden_channels: int | None = None) -> None:
        super().__init__()
        hid = hidden_channels or in_channels
        self.lin_src = nn.Linear(in_channels, hid)
        self.lin_dst = nn.Linear(in_channels, hid)
        self.lin_out = nn.Linear(hid, 1)

    def reset_parameters(self) -> None:
        for lin in (self.lin_src, self.lin_dst, self.lin_out):
            lin.reset_parameters()

    def forward(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        """``z_src``, ``z_dst``: ``[*, C]`` (broadcastable) -> logits ``[*]``."""
        h = torch.relu(self.lin_src(z_src) + self.lin_dst(z_dst))
        return self.lin_out(h).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.lin_src.in_features})"
