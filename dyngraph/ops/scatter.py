"""COO scatter reductions: ``out[index[i]] (+)= src[i]`` along one dimension."""

from __future__ import annotations

import torch
from torch import Tensor

from dyngraph.errors import ShapeError
from dyngraph.ops import _impl_scatter, _impl_torch  # noqa: F401  (register implementations)
from dyngraph.ops._common import (
    check_index,
    normalize_dim,
    normalize_reduce,
    resolve_dim_size,
    want_check,
)
from dyngraph.ops.backend import resolve

__all__ = ["scatter", "scatter_argmax", "scatter_argmin"]

REDUCES = ("sum", "mean", "max", "min", "mul")


def scatter(
    src: Tensor,
    index: Tensor,
    dim: int = 0,
    dim_size: int | None = None,
    reduce: str = "sum",
    *,
    check: bool | None = None,
) -> Tensor:
    r"""Reduce the slices of ``src`` that share an index: :math:`\mathrm{out}_g =
    \bigoplus_{i:\,\mathrm{index}_i = g} \mathrm{src}_i` along ``dim``.

    Args:
        src: any shape; the reduced dimension is ``dim``.
        index: 1-D with ``src.size(dim)`` entries (PyG style), or of ``src``'s shape
            (torch-scatter style); integer dtype; values in ``[0, dim_size)``.
        dim: dimension of ``src`` to reduce over.
        dim_size: size of the output along ``dim`` (default ``index.max() + 1``); may exceed
            the largest index (trailing groups are empty).
        reduce: ``"sum"`` (alias ``"add"``), ``"mean"``, ``"max"`` (``"amax"``), ``"min"``
            (``"amin"``), ``"mul"`` (``"prod"``).
        check: value validation policy, see :mod:`dyngraph.ops._common` (``None``: only where
            free or needed for memory safety; ``True``: always; ``False``: never).

    Returns:
        ``src``'s shape with ``dim`` replaced by ``dim_size``. Empty groups give 0 for
        sum/mean/max/min and 1 for mul (the PyG and torch-scatter conventions). Integer
        ``mean`` uses floor division. Differentiable w.r.t. ``src`` (for max/min the gradient
        follows torch's ``scatter_reduce``: shared evenly among tied maxima).
    """
    reduce = normalize_reduce(reduce, REDUCES, "scatter")
    dim = normalize_dim(src, dim, "scatter")
    index = check_index(src, index, dim, "scatter")
    check = want_check(check)
    name, fn = resolve("scatter", reduce, grad=src.requires_grad and torch.is_grad_enabled())
    dim_size = resolve_dim_size(index, dim_size, check, "scatter", strict=name != "torch")
    return fn(src, index, dim, dim_size)


def _scatter_arg(
    src: Tensor, index: Tensor, dim_size: int | None, check: bool | None, reduce: str
) -> Tensor:
    op = "scatter_arg" + reduce
    dim = normalize_dim(src, 0, op)
    if index.dim() != 1:
        raise ShapeError(f"{op}: index must be 1-D over dim 0, got shape {tuple(index.shape)}")
    index = check_index(src, index, dim, op)
    if src.is_complex():
        raise ShapeError(f"{op}: complex src has no ordering")
    check = want_check(check)
    name, fn = resolve("scatter_arg", reduce)
    dim_size = resolve_dim_size(index, dim_size, check, op, strict=name != "torch")
    return fn(src, index, dim_size)


def scatter_argmax(
    src: Tensor, index: Tensor, dim_size: int | None = None, *, check: bool | None = None
) -> Tensor:
    """Position (along dim 0) of each group's maximum.

    Args:
        src: ``[E]`` or ``[E, ...]``; index: ``[E]``; dim_size: number of groups.

    Returns:
        LongTensor ``[dim_size, ...]``; empty groups give ``src.size(0)`` (torch-scatter's
        convention, safe to use as a padded gather index); ties give the smallest position.
        Not differentiable (an index).
    """
    return _scatter_arg(src, index, dim_size, check, "max")


def scatter_argmin(
    src: Tensor, index: Tensor, dim_size: int | None = None, *, check: bool | None = None
) -> Tensor:
    """Like :func:`scatter_argmax` for the minimum."""
    return _scatter_arg(src, index, dim_size, check, "min")
