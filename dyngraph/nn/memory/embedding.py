"""Embedding modules ``z_i(t) = emb(i, t)`` on dense ``[q, k]`` neighbour blocks, the DyRep
structural attention, and the link decoder."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dyngraph.nn.memory._ids import bitmap_unique
from dyngraph.nn.memory.attention import _native_slot_attention_ok, slot_attention
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


class _FoldAttentionWeights(torch.autograd.Function):
    r"""The weight rearrangements of :meth:`GraphAttentionEmbedding.hidden` as one autograd
    node (as separate ops they are ~15 small forward ops and as many backward nodes per step).

    With ``W_1 = [M_s | M_a]`` (merge1's memory / attention halves), ``D`` memory and ``hd``
    attention widths, ``h`` heads of ``d``:

    * ``node_w = [W_q ; M_s]`` ``[hd + out, D]``, ``node_b = [b_q ; b_1 + M_a b_o]``;
    * ``w_key = [W_k | W_e | b_k]``, ``w_val = [W_v | W_e | b_v]`` as ``[h, d, E]`` (``W_k``,
      ``W_v`` the halves of ``lin_kv``, ``W_e`` = ``lin_edge``);
    * ``w_ao = M_a W_o`` ``[out, hd]`` (``lin_o`` folded into merge1).
    """

    @staticmethod
    def forward(ctx, wq, bq, wkv, bkv, we, wo, bo, w1, b1, heads):
        hd, d_mem = wq.shape
        d = hd // heads
        m_s, m_a = w1.split([d_mem, hd], dim=1)
        node_w = torch.cat([wq, m_s])
        node_b = torch.cat([bq, torch.addmv(b1, m_a, bo)])
        wk, wv = wkv.split(hd)
        bk, bv = bkv.split(hd)
        w_e = we.view(heads, d, -1)
        w_key = torch.cat([wk.view(heads, d, -1), w_e, bk.view(heads, d, 1)], dim=-1)
        w_val = torch.cat([wv.view(heads, d, -1), w_e, bv.view(heads, d, 1)], dim=-1)
        w_ao = m_a @ wo
        ctx.save_for_backward(wo, bo, w1)
        ctx.sizes = (hd, d_mem)
        return node_w, node_b, w_key, w_val, w_ao

    @staticmethod
    def backward(ctx, g_nw, g_nb, g_key, g_val, g_ao):
        wo, bo, w1 = ctx.saved_tensors
        hd, d_mem = ctx.sizes
        m_a = w1[:, d_mem:]
        g_b1 = g_nb[hd:]
        g_w1 = torch.cat([g_nw[hd:], torch.addr(g_ao @ wo.t(), g_b1, bo)], dim=1)
        g_wo = m_a.t() @ g_ao
        g_bo = m_a.t() @ g_b1
        g_wkv = torch.cat([g_key[..., :d_mem].reshape(hd, d_mem),
                           g_val[..., :d_mem].reshape(hd, d_mem)])
        g_bkv = torch.cat([g_key[..., -1].reshape(hd), g_val[..., -1].reshape(hd)])
        g_we = (g_key[..., d_mem:-1] + g_val[..., d_mem:-1]).reshape(hd, -1)
        return g_nw[:hd], g_nb[:hd], g_wkv, g_bkv, g_we, g_wo, g_bo, g_w1, g_b1, None


class _FoldPre(torch.autograd.Function):
    r"""Compose affine maps with a shared first map ``(W_p, b_p)`` as one autograd node:
    ``(W_i, b_i) -> (W_i W_p, W_i b_p + b_i)`` for each pair (see
    :meth:`LinkDecoder.score_candidates`)."""

    @staticmethod
    def forward(ctx, w_p, b_p, *pairs):
        ctx.save_for_backward(w_p, b_p, *pairs[0::2])
        out = []
        for w, b in zip(pairs[0::2], pairs[1::2], strict=True):
            out += [w @ w_p, torch.addmv(b, w, b_p)]
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        w_p, b_p, *ws = ctx.saved_tensors
        g_wp, g_bp = torch.zeros_like(w_p), torch.zeros_like(b_p)
        out = []
        for w, g_w, g_b in zip(ws, grads[0::2], grads[1::2], strict=True):
            g_wp.addmm_(w.t(), g_w)
            g_bp.addmv_(w.t(), g_b)
            out += [torch.addr(g_w @ w_p.t(), g_b, b_p), g_b]
        return (g_wp, g_bp, *out)


class _StackedScores(torch.autograd.Function):
    r"""The link decoder on stacked embeddings as one autograd node (its ~17 small forward ops
    and backward nodes cost more than their arithmetic). ``z`` ``[(J + 1) B, C]`` holds the
    ``B`` sources, then ``J`` candidate blocks of ``B``; with a folded first map
    ``(W_p, b_p)`` (``None``: identity):

    .. math::
        W_s' = W_s W_p,\ b_s' = W_s b_p + b_s\ (\text{same for } d),\quad
        \ell_{jb} = w_o^\top \mathrm{ReLU}(W_s' z_b + b_s' + W_d' z_{jb} + b_d') + b_o.
    """

    @staticmethod
    def forward(ctx, z, n_src, w_p, b_p, w_s, b_s, w_d, b_d, w_o, b_o):
        ws, bs, wd, bd = w_s, b_s, w_d, b_d
        if w_p is not None:
            ws, wd = w_s @ w_p, w_d @ w_p
            bs, bd = torch.addmv(b_s, w_s, b_p), torch.addmv(b_d, w_d, b_p)
        z_src, z_cand = z[:n_src], z[n_src:]
        hs = torch.addmm(bs, z_src, ws.t())
        a = torch.addmm(bd, z_cand, wd.t()).view(-1, n_src, hs.size(1)).add_(hs).relu_()
        out = torch.mv(a.view(-1, a.size(-1)), w_o.view(-1)).add_(b_o).view(-1, n_src)
        ctx.save_for_backward(z, w_p, b_p, w_s, w_d, ws, wd, w_o, a)
        ctx.n_src = n_src
        return out

    @staticmethod
    def backward(ctx, g):
        z, w_p, b_p, w_s, w_d, ws, wd, w_o, a = ctx.saved_tensors
        n_src = ctx.n_src
        z_src, z_cand = z[:n_src], z[n_src:]
        hid = a.size(-1)
        a2 = a.view(-1, hid)
        g = g.reshape(-1)
        g_wo = (g @ a2).view_as(w_o)
        g_bo = g.sum().view(1)
        g_h = torch.outer(g, w_o.view(-1)).mul_(a2 > 0)  # [J B, hid] pre-ReLU gradient
        g_hs = g_h.view(-1, n_src, hid).sum(0)
        g_z = torch.cat([g_hs @ ws, g_h @ wd])
        g_ws, g_bs = g_hs.t() @ z_src, g_hs.sum(0)
        g_wd, g_bd = g_h.t() @ z_cand, g_h.sum(0)
        g_wp = g_bp = None
        if w_p is not None:
            g_wp = w_s.t() @ g_ws + w_d.t() @ g_wd
            g_bp = w_s.t() @ g_bs + w_d.t() @ g_bd
            g_ws = torch.addr(g_ws @ w_p.t(), g_bs, b_p)
            g_wd = torch.addr(g_wd @ w_p.t(), g_bd, b_p)
        return g_z, None, g_wp, g_bp, g_ws, g_bs, g_wd, g_bd, g_wo, g_bo


class _FusedAttentionHidden(torch.autograd.Function):
    r"""Everything of :meth:`GraphAttentionEmbedding.hidden` after the weight folding, with the
    native slot-attention kernel, as one autograd node (as separate ops: ~17 backward nodes):

    .. math::
        [q_u \| m_u] = W_n s_u + b_n,\quad c_{hu} = W_{key,h}^\top q_{hu},\quad
        o_{hi} = \mathrm{attn}(c_{h,r(i)}, y_{i\cdot}),\quad
        z_i = \mathrm{ReLU}(m_{r(i)} + W_{ao} [W_{val,h} o_{hi}]_h)

    for distinct query nodes ``u`` (rows ``uq`` of ``node_mem``) and queries ``i`` (row
    ``r(i) = inv[i]`` among them). The backward is the chain rule of these steps written out
    (the same matmuls autograd would run, plus the kernel's backward)."""

    @staticmethod
    def forward(ctx, node_mem, node_w, node_b, w_key, w_val, w_ao, uq, inv, index, feat, dt,
                w_t, b_t, mask, drop, scale):
        h, d, _ = w_key.shape
        hd = h * d
        q_n = inv.numel()
        mem_u = node_mem.index_select(0, uq)
        node_out = torch.addmm(node_b, mem_u, node_w.t())
        query = node_out[:, :hd].reshape(-1, h, d).transpose(0, 1).contiguous()  # [h, u, d]
        qv = torch.bmm(query, w_key)  # [h, u, E]
        out, alpha, slots = torch.ops.dyngraph.tgn_slot_attention(
            qv, node_mem, index, feat, dt, w_t, b_t, mask, drop, inv, scale, True)
        att = torch.bmm(out, w_val.transpose(1, 2)).transpose(0, 1).reshape(q_n, hd)
        z = torch.addmm(node_out[:, hd:].index_select(0, inv), att, w_ao.t()).relu_()
        ctx.save_for_backward(node_mem, node_w, w_key, w_val, w_ao, uq, inv, index, feat, dt,
                              w_t, b_t, mask, drop, mem_u, query, qv, out, alpha, slots, att, z)
        ctx.scale = scale
        return z

    @staticmethod
    def backward(ctx, g_z):
        (node_mem, node_w, w_key, w_val, w_ao, uq, inv, index, feat, dt, w_t, b_t, mask, drop,
         mem_u, query, qv, out, alpha, slots, att, z) = ctx.saved_tensors
        h, d, _ = w_key.shape
        hd, u_n, q_n = h * d, mem_u.size(0), inv.numel()
        g_h1 = g_z * (z > 0)
        g_ao = g_h1.t() @ att
        g_att = (g_h1 @ w_ao).view(q_n, h, d).transpose(0, 1).contiguous()  # [h, q, d]
        g_val = torch.bmm(g_att.transpose(1, 2), out)
        g_out = torch.bmm(g_att, w_val)  # [h, q, E]
        need_mem = ctx.needs_input_grad[0]
        g_qv, g_mem = torch.ops.dyngraph.tgn_slot_attention_backward(
            g_out, qv, node_mem, index, feat, dt, w_t, b_t, mask, drop, inv, alpha, slots,
            ctx.scale, True, need_mem)
        g_key = torch.bmm(query.transpose(1, 2), g_qv)
        g_node_out = torch.empty(u_n, node_w.size(0), dtype=g_z.dtype, device=g_z.device)
        g_node_out[:, :hd] = torch.bmm(g_qv, w_key.transpose(1, 2)).transpose(0, 1).reshape(
            u_n, hd)
        g_node_out[:, hd:] = 0
        g_node_out[:, hd:].index_add_(0, inv, g_h1)
        g_nw = g_node_out.t() @ mem_u
        g_nb = g_node_out.sum(0)
        if need_mem:
            g_mem.index_add_(0, uq, g_node_out @ node_w)
        else:
            g_mem = None
        return (g_mem, g_nw, g_nb, g_key, g_val, g_ao) + (None,) * 10


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
    ``merge1``. In training with the native kernel, the weight folding and everything after it
    are two autograd nodes (:class:`_FoldAttentionWeights`, :class:`_FusedAttentionHidden`)
    with hand-written backward passes.

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
            uq, inv = bitmap_unique(nbr.node_mem.size(0), nbr.query_index,
                                    inverse_of=nbr.query_index)
        # merge1(s || W_o a + b_o) = M_s s + (M_a W_o) a + (b_1 + M_a b_o): lin_o folded in;
        # the node-level maps (lin_q and M_s) run as one matmul. Keys and values are affine
        # maps of the slot input y_j = [s_j | e_j | phi_j | 1]: K_j = W_key y_j,
        # V_j = W_val y_j (W_e shared, the last column holds the biases). Scores
        # q.K_j = (W_key^T q).y_j and sum_j a_j V_j = W_val sum_j a_j y_j, so per slot only y_j
        # is touched (never a [q, k, h, d] key/value block) and the projections are thin
        # per-head matmuls, head-major ([h, u, E] in, [h, q, E] out) like the kernel. All the
        # weight rearranging is one autograd node (_FoldAttentionWeights).
        node_w, node_b, w_key, w_val, w_ao = _FoldAttentionWeights.apply(
            self.lin_q.weight, self.lin_q.bias, self.lin_kv.weight, self.lin_kv.bias,
            self.lin_edge.weight, self.lin_o.weight, self.lin_o.bias, self.merge1.weight,
            self.merge1.bias, h)
        node_mem = nbr.node_mem
        drop = None
        if self.training and self.dropout.p > 0:
            keep = 1.0 - self.dropout.p
            # u < keep with u ~ U[0, 1) is Bernoulli(keep); uniform_ + lt_ is half the cost
            # of bernoulli_ on CPU
            drop = torch.empty(q_n, k, h, dtype=node_mem.dtype, device=node_mem.device)
            drop.uniform_().lt_(keep).mul_(1.0 / keep)
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
        scale = 1.0 / math.sqrt(d)
        if (inv is not None and native is None and torch.is_grad_enabled()
                and _native_slot_attention_ok()):
            # training with the native kernel: the rest of the embedding is one autograd node
            dtype = node_mem.dtype
            return _FusedAttentionHidden.apply(
                node_mem.contiguous(), node_w, node_b, w_key, w_val, w_ao, uq, inv,
                nbr.index.contiguous(), feat.to(dtype).contiguous(), nbr.dt.to(dtype).contiguous(),
                w_t.to(dtype), b_t.to(dtype), nbr.mask.contiguous(),
                None if drop is None else drop.to(dtype).contiguous(), scale)
        if inv is not None:
            mem = node_mem.index_select(0, uq)
        node_out = torch.addmm(node_b, mem, node_w.t())
        query, h_mem = node_out.split([hd, node_out.size(1) - hd], dim=1)
        qv = torch.bmm(query.reshape(mem.size(0), h, d).transpose(0, 1), w_key)  # [h, u, E]
        if inv is not None:
            h_mem = h_mem.index_select(0, inv)
        out, _ = slot_attention(qv, node_mem, nbr.index, feat, nbr.dt, w_t, b_t, nbr.mask,
                                drop, scale, query_row=inv, native=native)
        att = torch.bmm(out, w_val.transpose(1, 2))  # [h, q, d]
        att = att.transpose(0, 1).reshape(q_n, hd)
        h1 = torch.addmm(h_mem, att, w_ao.t())
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
        if pre is not None and pre.bias is not None:  # one autograd node for the folding
            w_s, b_s, w_d, b_d = _FoldPre.apply(pre.weight, pre.bias, w_s, b_s, w_d, b_d)
        elif pre is not None:
            w_s, w_d = w_s @ pre.weight, w_d @ pre.weight
        hs = torch.addmm(b_s, z_src, w_s.t())
        j, b, c = z_cand.shape
        h = torch.addmm(b_d, z_cand.reshape(j * b, c), w_d.t())
        h = torch.relu(h.view(j, b, -1) + hs)
        return self.lin_out(h).squeeze(-1)

    def score_stacked(self, z: Tensor, n_src: int, pre: nn.Linear | None = None) -> Tensor:
        """:meth:`score_candidates` on stacked rows: ``z`` ``[(J + 1) B, C]`` holds the ``B``
        sources then ``J`` blocks of ``B`` candidates -> logits ``[J, B]``; the whole decoder
        (with ``pre`` folded in) is one autograd node."""
        if pre is not None and pre.bias is None:
            z_cand = z[n_src:].view(-1, n_src, z.size(1))
            return self.score_candidates(z[:n_src], z_cand, pre)
        w_p, b_p = (None, None) if pre is None else (pre.weight, pre.bias)
        return _StackedScores.apply(z, n_src, w_p, b_p, self.lin_src.weight, self.lin_src.bias,
                                    self.lin_dst.weight, self.lin_dst.bias, self.lin_out.weight,
                                    self.lin_out.bias)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.lin_src.in_features})"
