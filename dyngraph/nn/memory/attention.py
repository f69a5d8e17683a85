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

__all__ = ["dense_attention"]


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
