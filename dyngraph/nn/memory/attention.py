"""Dense masked attention over ``[q, k]`` neighbour blocks with a hand-written backward.

The TGN embedding attends, for each of ``q`` queries, over its ``k`` most recent neighbours.
With ``h`` heads and per-slot inputs ``y`` of width ``E`` the whole computation is three small
batched contractions:

.. math::
    s_{qjh} = \\tau\\, y_{qj} \\cdot c_{qh},\\quad
    a_{q\\cdot h} = \\mathrm{softmax}_j(s_{q\\cdot h})\\ (\\text{masked}),\\quad
    o_{qh} = \\textstyle\\sum_j \\delta_{qjh}\\, a_{qjh}\\, y_{qj}

(``tau`` the ``1/sqrt(d)`` scale, ``delta`` the attention-dropout multipliers). Autograd of the
obvious expression spends most of its time in broadcast multiplies and in ``bmm`` calls with
an inner dimension of ``h = 2`` on transposed views, which are an order of magnitude slower
on CPU than the same contraction laid out contiguously. :class:`_DenseAttention` keeps every
contraction a contiguous ``bmm`` (and fuses the two ``[q, k, E]`` gradient terms into one
contraction over ``2h``), and only computes the gradient of the part of ``y`` that needs one.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dense_attention", "slot_attention", "slot_time_data"]


class _DenseAttention(torch.autograd.Function):
    # the slot input is split in two column groups, y = [y_g | y_d]: y_g needs a gradient
    # (gathered memories), y_d usually is data (fixed time encodings, event features), so its
    # gradient is skipped; keeping them apart avoids materialising their concatenation
    @staticmethod
    def forward(ctx, q_g: Tensor, q_d: Tensor, y_g: Tensor, y_d: Tensor, mask: Tensor,
                drop: Tensor | None, scale: float):
        score = torch.bmm(y_g, q_g.transpose(1, 2))  # [q, k, h]
        score.baddbmm_(y_d, q_d.transpose(1, 2))
        score.mul_(scale).masked_fill_(~mask.unsqueeze(-1), float("-inf"))
        alpha = torch.softmax(score, dim=1).nan_to_num_(0.0)  # all-masked rows -> 0
        ad = alpha if drop is None else alpha * drop
        adt = ad.transpose(1, 2)
        out_g, out_d = torch.bmm(adt, y_g), torch.bmm(adt, y_d)  # [q, h, E_g], [q, h, E_d]
        ctx.save_for_backward(q_g, q_d, y_g, y_d, alpha, ad, drop)
        ctx.scale = scale
        ctx.mark_non_differentiable(alpha)
        return out_g, out_d, alpha

    @staticmethod
    def backward(ctx, g_og: Tensor, g_od: Tensor, _g_alpha: Tensor):
        q_g, q_d, y_g, y_d, alpha, ad, drop = ctx.saved_tensors
        g_og, g_od = g_og.contiguous(), g_od.contiguous()
        g_ad = torch.bmm(y_g, g_og.transpose(1, 2))  # [q, k, h]
        g_ad.baddbmm_(y_d, g_od.transpose(1, 2))
        g_a = g_ad if drop is None else g_ad * drop
        g_s = alpha * (g_a - (alpha * g_a).sum(1, keepdim=True))
        g_s.mul_(ctx.scale)
        g_st = g_s.transpose(1, 2)
        g_qg = torch.bmm(g_st, y_g) if ctx.needs_input_grad[0] else None
        g_qd = torch.bmm(g_st, y_d) if ctx.needs_input_grad[1] else None
        g_yg = g_yd = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            # one contraction over 2h for both terms: sum_h ad g_out + sum_h g_s q
            lhs = torch.cat([ad, g_s], dim=-1)  # [q, k, 2h]
            if ctx.needs_input_grad[2]:
                g_yg = torch.bmm(lhs, torch.cat([g_og, q_g], dim=1))
            if ctx.needs_input_grad[3]:  # e.g. a learnable time encoding
                g_yd = torch.bmm(lhs, torch.cat([g_od, q_d], dim=1))
        return g_qg, g_qd, g_yg, g_yd, None, None, None


def dense_attention(q_g: Tensor, q_d: Tensor, y_g: Tensor, y_d: Tensor, mask: Tensor,
                    drop: Tensor | None = None,
                    scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Masked multi-head attention of ``q`` queries over ``k`` slots each.

    The slot input is ``y = [y_g | y_d]``; keys and values are linear maps of it applied by
    the caller (keys folded into the query, values after the sum), so only ``y`` is
    contracted here.

    Args:
        q_g, q_d: ``[q, h, E_g]``, ``[q, h, E_d]`` per-head query vectors in slot space
            (``W_k^T q`` for keys ``W_k y``), split like ``y``.
        y_g: ``[q, k, E_g]`` slot columns that need a gradient (e.g. neighbour memories).
        y_d: ``[q, k, E_d]`` further slot columns, usually data without a gradient (fixed
            time encodings, event features); a gradient is computed only when it needs one.
        mask: ``[q, k]`` bool, True for real slots. A query without any gets ``alpha = 0``.
        drop: optional ``[q, k, h]`` dropout multipliers applied to ``alpha`` (0 or
            ``1 / (1 - p)``).
        scale: score scale (``1 / sqrt(d)``).

    Returns:
        ``(out_g [q, h, E_g], out_d [q, h, E_d], alpha [q, k, h])`` with
        ``out = sum_j drop_j alpha_j y_j`` split like ``y``, and ``alpha`` the pre-dropout
        attention weights (not differentiable).
    """
    return _DenseAttention.apply(q_g.contiguous(), q_d.contiguous(), y_g.contiguous(),
                                 y_d.to(y_g.dtype).contiguous(), mask, drop, float(scale))


# ------------------------------------------------------------------ fused native path
def _native_slot_attention_ok() -> bool:
    """Whether the fused kernel (``kernels/tgn_attention.cpp``) may be used
    (:func:`dyngraph.ops._native.op_usable`)."""
    from dyngraph.ops import _native

    return _native.op_usable("tgn_slot_attention")


class _SlotAttention(torch.autograd.Function):
    # the native kernel builds each query's slot block y = [mem[index] | feat | phi | 1] in
    # one pass (gather and cosines); when a backward will run it keeps the blocks ([q, k, E],
    # each query's real slots first) so the backward reads them in place; the memory gradient
    # is scattered straight into [n, D]
    @staticmethod
    def forward(ctx, qv, mem, index, feat, dt, w, b, mask, drop, qrow, scale):
        # keep the slot blocks for the backward when one will run
        save = torch.is_grad_enabled() and (qv.requires_grad or mem.requires_grad)
        out, alpha, slots = torch.ops.dyngraph.tgn_slot_attention(
            qv, mem, index, feat, dt, w, b, mask, drop, qrow, scale, save)
        ctx.save_for_backward(qv, mem, index, feat, dt, w, b, mask, drop, qrow, alpha, slots)
        ctx.scale = scale
        ctx.mark_non_differentiable(alpha)
        return out, alpha

    @staticmethod
    def backward(ctx, g_out, _g_alpha):
        qv, mem, index, feat, dt, w, b, mask, drop, qrow, alpha, slots = ctx.saved_tensors
        need_q, need_mem = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g_out is None:
            g_out = qv.new_zeros(qv.size(0), index.size(0), qv.size(2))
        g_q, g_mem = torch.ops.dyngraph.tgn_slot_attention_backward(
            g_out, qv, mem, index, feat, dt, w, b, mask, drop, qrow, alpha, slots, ctx.scale,
            need_q, need_mem)
        return (g_q if need_q else None, g_mem if need_mem else None) + (None,) * 9


def slot_time_data(feat: Tensor, dt: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``[q, k, F + T + 1]`` slot data ``[feat | cos(dt w + b) | 1]`` (PyTorch, differentiable in
    ``weight``, ``bias`` and ``feat``)."""
    phi = torch.cos(dt.to(weight.dtype).unsqueeze(-1) * weight + bias)
    return torch.cat([feat.to(weight.dtype), phi, phi.new_ones(*phi.shape[:-1], 1)], dim=-1)


def slot_attention(qv: Tensor, mem: Tensor, index: Tensor, feat: Tensor, dt: Tensor,
                   weight: Tensor, bias: Tensor, mask: Tensor, drop: Tensor | None = None,
                   scale: float = 1.0, query_row: Tensor | None = None,
                   native: bool | None = None) -> tuple[Tensor, Tensor]:
    r"""Masked multi-head attention over slot inputs built from their parts: slot ``j`` of query
    ``i`` is :math:`y_{ij} = [\mathrm{mem}_{\mathrm{index}_{ij}} \| e_{ij} \|
    \cos(\Delta t_{ij} w + b) \| 1]` (width ``E = D + F + T + 1``) and

    .. math::
        a_{i\cdot h} = \mathrm{softmax}_j(\tau\, y_{ij} \cdot c_{hi}) \text{ (real slots)},
        \quad o_{hi} = \textstyle\sum_j \delta_{ijh} a_{ijh} y_{ij}.

    The native kernel (``kernels/tgn_attention.cpp``, used when the extension is available,
    ``weight``/``bias``/``feat`` need no gradient and ``native`` is not ``False``) fuses the
    gather, the cosine time encoding and the attention, forward and backward; otherwise the
    slot block is materialised and :func:`dense_attention` runs. Layouts are head-major, as
    the per-head projections around it produce and consume them.

    Args:
        qv: ``[h, u, E]`` per-head queries in slot space, one row per query (``u = q``) or,
            with ``query_row``, per distinct query node.
        mem: ``[n, D]`` node memories (differentiable); index: ``[q, k]`` rows of ``mem``.
        feat: ``[q, k, F]`` event features (``F`` may be 0); dt: ``[q, k]`` time differences.
        weight, bias: ``[T]`` time-encoding frequencies and phases.
        mask, drop, scale: as in :func:`dense_attention`.
        query_row: ``[q]`` row of ``qv`` used by each query (``None``: row ``i``).
        native: force (``True``) or forbid (``False``) the kernel; ``None`` picks.

    Returns:
        ``(out [h, q, E], alpha [q, k, h])``; ``alpha`` is not differentiable.
    """
    dtype = qv.dtype
    if native is None:
        native = (not (weight.requires_grad or bias.requires_grad or feat.requires_grad)
                  and _native_slot_attention_ok())
    if native:
        if not _native_slot_attention_ok():
            from dyngraph.ops import _native

            _native.load()  # raises BackendError with the reason
        return _SlotAttention.apply(
            qv.contiguous(), mem.contiguous(), index.contiguous(), feat.to(dtype).contiguous(),
            dt.to(dtype).contiguous(), weight.detach().to(dtype), bias.detach().to(dtype),
            mask.contiguous(), None if drop is None else drop.to(dtype).contiguous(),
            None if query_row is None else query_row.contiguous(), float(scale))
    d_mem = mem.size(1)
    q = qv.transpose(0, 1)  # [u, h, E]
    if query_row is not None:
        q = q[query_row]
    q_n, k = index.shape
    y_g = mem.index_select(0, index.reshape(-1)).view(q_n, k, -1)
    out_g, out_d, alpha = dense_attention(q[..., :d_mem], q[..., d_mem:], y_g,
                                          slot_time_data(feat, dt, weight, bias), mask, drop,
                                          scale)
    return torch.cat([out_g, out_d], dim=-1).transpose(0, 1), alpha
