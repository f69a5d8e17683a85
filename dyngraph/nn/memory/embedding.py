"""Embedding modules ``z_i(t) = emb(i, t)`` on dense ``[q, k]`` neighbour blocks, the DyRep
structural attention, and the link decoder."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dyngraph.nn.memory.attention import slot_attention
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
    connecting events (``None``: look them up as ``event_feat[eid]``); ``dt``: ``[q, k]``
    float32 ``t_query - t_event``; ``mask``: ``[q, k]`` True where a neighbour exists.

    Optional, for embeddings that precompute per-event quantities: ``eid`` ``[q, k]`` id of
    the connecting event in the indexed stream (-1 where padded), ``t`` ``[q]`` float64 query
    times, ``event_t`` ``[E]`` float64 times and ``event_feat`` ``[E, F]`` features of the
    indexed stream's events, ``query_index`` ``[q]`` row of each query node in ``node_mem``
    (then the query's memory is ``node_mem[query_index]``, and work that depends only on the
    node, not on the time, is done once per distinct node).
    """

    node_mem: Tensor
    index: Tensor
    feat: Tensor | None
    dt: Tensor
    mask: Tensor
    eid: Tensor | None = None
    t: Tensor | None = None
    event_t: Tensor | None = None
    event_feat: Tensor | None = None
    query_index: Tensor | None = None


class IdentityEmbedding(nn.Module):
    r""":math:`z_i(t) = s_i(t)` (DyRep, APAN)."""

    needs_neighbors = False

    def __init__(self, memory_dim: int) -> None:
        super().__init__()
        self.out_channels = memory_dim

    def reset_parameters(self) -> None:
        """No parameters."""

    def forward(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        """``mem``: ``[q, D]`` -> ``mem`` unchanged (``dt`` and ``nbr`` are unused)."""
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
        r"""Draw the projection vector ``w`` ``[D]`` from :math:`\mathcal N(0, 1/D)`."""
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
    A node with no neighbour gets :math:`\tilde h_i = 0`.

    Computation: keys and values are affine in the slot input
    :math:`y_{ij} = [s_j \| e_{ij} \| \phi(t - t_{ij}) \| 1]`, so the query is mapped into
    slot space once (:math:`W_{key}^\top q_i`) and the values are projected after the weighted
    sum (:math:`W_{val} \sum_j a_{ij} y_{ij}`): per slot only :math:`y_{ij}` is touched. With
    a frozen time encoding (the default) :func:`~dyngraph.nn.memory.attention.slot_attention`
    does this in one native kernel that builds each query's slots (memory gather, cosine
    encoding) in cache and scatters the memory gradient back, forward and backward; a trained
    encoding materialises the slot block for
    :func:`~dyngraph.nn.memory.attention.dense_attention` (contiguous batched matmuls,
    hand-written backward). With ``NeighborContext.query_index`` the query projections and
    the memory half of the merge MLP run once per distinct node; ``lin_o`` is folded into
    ``merge1``.

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
        """Re-initialise the query, key/value, edge, output and merge layers."""
        for lin in (self.lin_q, self.lin_kv, self.lin_edge, self.lin_o, self.merge1,
                    self.merge2):
            lin.reset_parameters()

    def forward(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        """``mem``: ``[q, D]`` query-node memory; ``nbr``: neighbour blocks -> ``[q, out]``."""
        return self.merge2(self.hidden(mem, dt, nbr))

    @property
    def output_layer(self) -> nn.Linear:
        """The final affine map: ``forward = output_layer(hidden(...))`` (a consumer that
        applies its own linear map next can fold the two, see
        :meth:`LinkDecoder.score_candidates`)."""
        return self.merge2

    def hidden(self, mem: Tensor, dt: Tensor, nbr: NeighborContext | None = None) -> Tensor:
        """The embedding before :attr:`output_layer`: ``ReLU(merge1(s || h~))`` ``[q, out]``."""
        if nbr is None:
            raise ValueError("GraphAttentionEmbedding needs a NeighborContext")
        q_n, k = nbr.mask.shape
        h, d = self.heads, self.head_dim
        hd = h * d
        # the query projections and merge1's memory term depend on the node only: with
        # query_index they are computed once per distinct node (a node is queried at several
        # times per batch, e.g. as source and as negative) and gathered
        inv = None
        if nbr.query_index is not None:
            # distinct rows and inverse by a bitmap over node_mem's rows (cheaper than a sort)
            mark = torch.zeros(nbr.node_mem.size(0), dtype=torch.bool, device=mem.device)
            mark.index_fill_(0, nbr.query_index, True)
            uq = mark.nonzero().view(-1)
            inv = (torch.cumsum(mark, 0) - 1).index_select(0, nbr.query_index)
            mem = nbr.node_mem.index_select(0, uq)
        u_n = mem.size(0)
        # merge1(s || W_o a + b_o) = M_s s + (M_a W_o) a + (b_1 + M_a b_o): lin_o folded in;
        # the node-level maps (lin_q and M_s) run as one matmul
        d_mem = mem.size(-1)
        # split (one backward node that concatenates) rather than two slices (each of whose
        # backward writes into a fresh zero tensor of the full size)
        m_s, m_a = self.merge1.weight.split([d_mem, hd], dim=1)
        node_w = torch.cat([self.lin_q.weight, m_s])
        node_b = torch.cat([self.lin_q.bias, self.merge1.bias + m_a @ self.lin_o.bias])
        node_out = torch.addmm(node_b, mem, node_w.t())
        query, h_mem = node_out.split([hd, node_out.size(1) - hd], dim=1)
        query = query.reshape(u_n, h, d)
        # Keys and values are affine maps of the slot input y_j = [s_j | e_j | phi_j | 1]:
        # K_j = W_key y_j, V_j = W_val y_j (W_e shared, the last column holds the biases).
        # Scores q.K_j = (W_key^T q).y_j and sum_j a_j V_j = W_val sum_j a_j y_j, so per slot
        # only y_j is touched (never a [q, k, h, d] key/value block) and the projections are
        # thin per-head matmuls, head-major ([h, u, E] in, [h, q, E] out) like the kernel.
        w_kv, b_kv = self.lin_kv.weight, self.lin_kv.bias
        w_e = self.lin_edge.weight.view(h, d, -1)
        wk, wv = w_kv.split(hd)
        bk, bv = b_kv.split(hd)
        w_key = torch.cat([wk.view(h, d, -1), w_e, bk.view(h, d, 1)], dim=-1)
        w_val = torch.cat([wv.view(h, d, -1), w_e, bv.view(h, d, 1)], dim=-1)
        qv = torch.bmm(query.transpose(0, 1), w_key)  # [h, u, E]
        if inv is not None:
            h_mem = h_mem.index_select(0, inv)
        node_mem = nbr.node_mem
        drop = None
        if self.training and self.dropout.p > 0:
            keep = 1.0 - self.dropout.p
            drop = torch.empty(q_n, k, h, dtype=node_mem.dtype, device=node_mem.device)
            drop.bernoulli_(keep).div_(keep)
        feat = nbr.feat
        if feat is None:
            feat = (nbr.event_feat[nbr.eid.clamp(min=0)].to(node_mem.dtype)
                    if nbr.event_feat is not None and nbr.eid is not None
                    else node_mem.new_zeros(q_n, k, 0))
        enc = self.time_enc
        if torch.is_grad_enabled() and enc.learnable and (enc.weight.requires_grad
                                                         or enc.bias.requires_grad):
            # trained encoding: the PyTorch path, so autograd reaches w and b
            w_t, b_t, native = enc.weight, enc.bias, False
        else:
            # frozen encoding (or no gradient): gather, cos(dt w + b) and attention fused in
            # one native kernel when the extension is built
            w_t = enc.weight.detach()
            b_t = enc.bias.detach() if enc.learnable else torch.zeros_like(w_t)
            native = None
        out, _ = slot_attention(qv, node_mem, nbr.index, feat, nbr.dt, w_t, b_t, nbr.mask,
                                drop, 1.0 / math.sqrt(d), query_row=inv, native=native)
        att = torch.bmm(out, w_val.transpose(1, 2))  # [h, q, d]
        att = att.transpose(0, 1).reshape(q_n, hd)
        h1 = torch.addmm(h_mem, att, (m_a @ self.lin_o.weight).t())
        return torch.relu(h1)

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
        """Re-initialise the value, query and key projections."""
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
        """Re-initialise the source, destination and output linear layers."""
        for lin in (self.lin_src, self.lin_dst, self.lin_out):
            lin.reset_parameters()

    def forward(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        """``z_src``, ``z_dst``: ``[*, C]`` (broadcastable) -> logits ``[*]``."""
        h = torch.relu(self.lin_src(z_src) + self.lin_dst(z_dst))
        return self.lin_out(h).squeeze(-1)

    def score_candidates(self, z_src: Tensor, z_cand: Tensor,
                         pre: nn.Linear | None = None) -> Tensor:
        """Logits of each source against several candidates: ``z_src`` ``[B, C]``, ``z_cand``
        ``[J, B, C]`` (e.g. the positive destination and ``K`` negatives) -> ``[J, B]``.
        Same as ``forward(z_src.unsqueeze(0), z_cand)`` with ``W_s z_src`` computed once and
        one matmul per layer for all candidates.

        ``pre``: the embedding's last linear layer when ``z_*`` are its inputs (the embedding's
        :meth:`hidden`); it is folded into ``W_s`` and ``W_d``
        (:math:`W_s (W_p x + b_p) + b_s = (W_s W_p) x + (W_s b_p + b_s)`), which saves its
        own pass over all ``(J + 1) B`` rows."""
        w_s, b_s, w_d, b_d = (self.lin_src.weight, self.lin_src.bias, self.lin_dst.weight,
                              self.lin_dst.bias)
        if pre is not None:
            w_p, b_p = pre.weight, pre.bias
            b_s = b_s if b_p is None else torch.addmv(b_s, w_s, b_p)
            b_d = b_d if b_p is None else torch.addmv(b_d, w_d, b_p)
            w_s, w_d = w_s @ w_p, w_d @ w_p
        hs = torch.addmm(b_s, z_src, w_s.t())
        j, b, c = z_cand.shape
        h = torch.addmm(b_d, z_cand.reshape(j * b, c), w_d.t())
        h = torch.relu(h.view(j, b, -1) + hs)
        return self.lin_out(h).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.lin_src.in_features})"
