"""Segment reductions over CSR pointers: rows ``ptr[s]:ptr[s+1]`` of ``src`` form segment ``s``."""

from __future__ import annotations

import torch
from torch import Tensor

from dyngraph.ops import (  # noqa: F401  (register implementations)
    _impl_native,
    _impl_scatter,
    _impl_torch,
)
from dyngraph.ops._common import check_ptr, normalize_dim, normalize_reduce, want_check
from dyngraph.ops.backend import resolve

__all__ = ["segment"]

REDUCES = ("sum", "mean", "max", "min", "mul")


def segment(src: Tensor, ptr: Tensor, reduce: str = "sum", *, check: bool | None = None) -> Tensor:
    r"""Reduce contiguous row blocks: :math:`\mathrm{out}_s = \bigoplus_{i=\mathrm{ptr}_s}^{
    \mathrm{ptr}_{s+1}-1} \mathrm{src}_i` (``src`` sorted by group, e.g. messages in CSR order).

    Args:
        src: ``[E, ...]``; reduced over dim 0.
        ptr: ``[S + 1]`` integer pointers, ``ptr[0] = 0``, non-decreasing,
            ``ptr[-1] = E``.
        reduce: ``"sum"``, ``"mean"``, ``"max"``, ``"min"``, ``"mul"`` (aliases as in
            :func:`~dyngraph.ops.scatter`).
        check: ``None`` (default) validates ``ptr`` in O(S) — cheap next to the O(E·F)
            reduction, and a bad ``ptr`` would make the sparse kernels read out of bounds;
            ``False`` skips it (caller guarantees ``ptr``); ``True`` is the same as ``None``.

    Returns:
        ``[S, ...]``; empty segments give 0 (1 for mul). Differentiable w.r.t. ``src``
        (max/min: the gradient goes to the first maximal row of each segment).
    """
    reduce = normalize_reduce(reduce, REDUCES, "segment")
    normalize_dim(src, 0, "segment")
    ptr = check_ptr(ptr, src.size(0), want_check(check), "segment")
    if ptr.device != src.device:
        ptr = ptr.to(src.device)
    _, fn = resolve("segment", reduce, grad=src.requires_grad and torch.is_grad_enabled())
    return fn(src, ptr)
