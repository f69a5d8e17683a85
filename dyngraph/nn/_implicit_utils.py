"""Helpers of the implicit layers: normalised transition weights, head expansion, projections."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["softmax_with_sink", "expand_heads", "project_rows_l1"]


def softmax_with_sink(logits: Tensor, sink: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """w_e = exp(s_e) / (exp(c_i) + Σ_{e' into i} exp(s_e')) for every edge e into node i.

    Args:
        logits: s, [E, M] (one column per head).
        sink: c, [N, M] — the logit of a virtual "sink" edge of each node; it absorbs part of
            the mass so that rows of A sum to strictly less than one and can differ per node.
        index: target node of each edge, [E].
    Returns:
        [E, M] non-negative weights with Σ_{e into i} w_e = 1 − σ_i < 1 for every node i.
    """
    M = logits.size(1)
    idx = index.view(-1, 1).expand(-1, M)
    # Per-node max over the node's incoming logits and its sink logit, for stability.
    mx = sink.detach().clone().scatter_reduce(0, idx, logits.detach(), "amax", include_self=True)
    e = (logits - mx.index_select(0, index)).exp()
    denom = (sink - mx).exp().index_add(0, index, e)
    return e / denom.index_select(0, index)


def expand_heads(
    edge_index: Tensor, weight: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor, int]:
    """M graphs with the same edges and per-head weights [E, M] → one block-diagonal graph on
    M·N nodes (node i of head m ↦ m·N + i), so a single sparse solve handles every head."""
    M = weight.size(1)
    offs = (torch.arange(M, device=edge_index.device) * num_nodes).view(M, 1, 1)
    big = (edge_index.unsqueeze(0) + offs).permute(1, 0, 2).reshape(2, -1)
    return big, weight.T.reshape(-1), M * num_nodes


def project_rows_l1(W: Tensor, radius: float) -> Tensor:
    """Euclidean projection of every row of W onto the ℓ1 ball of the given radius (Duchi et
    al., 2008), i.e. onto {W : ‖W‖∞ ≤ radius}. Rows already inside are left unchanged."""
    a = W.abs()
    inside = a.sum(1) <= radius
    if bool(inside.all()):
        return W
    u, _ = a.sort(1, descending=True)
    css = u.cumsum(1) - radius
    k = torch.arange(1, W.size(1) + 1, dtype=W.dtype, device=W.device)
    cond = u - css / k > 0
    rho = cond.to(W.dtype).mul(k).argmax(1, keepdim=True)  # last index where cond holds
    theta = css.gather(1, rho) / (rho + 1).to(W.dtype)
    proj = W.sign() * (a - theta).clamp_min(0)
    return torch.where(inside.view(-1, 1), W, proj)
