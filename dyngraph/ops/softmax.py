"""Softmax and log-softmax within the groups of a scatter index (attention over in-edges)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from dyngraph.errors import DataError, ShapeError
from dyngraph.ops import _impl_native, _impl_torch
from dyngraph.ops._common import check_index, normalize_dim, resolve_dim_size, want_check
from dyngraph.ops._sparse import SPARSE_DTYPES
from dyngraph.ops.backend import get_backend, register_impl, resolve
from dyngraph.ops.scatter import scatter

__all__ = ["scatter_softmax", "scatter_log_softmax"]


def _take(per_group: Tensor, index: Tensor, dim: int) -> Tensor:
    """Broadcast per-group values back to the members of each group."""
    if index.dim() == 1:
        return per_group.index_select(dim, index)
    return per_group.gather(dim, index)


class _ScatterSoftmax(Function):
    # A Function (rather than autograd through max/exp/sum/div) keeps only the output for
    # backward: grad = y * (g - sum_group(g * y)). The backward is written with differentiable
    # ops, so double backward works.
    @staticmethod
    def forward(ctx, src: Tensor, index: Tensor, dim: int, dim_size: int, log: bool) -> Tensor:  # type: ignore[override]
        group_max = scatter(src, index, dim, dim_size, "max", check=False)
        shifted = src - _take(group_max, index, dim)
        if log:
            lse = scatter(shifted.exp(), index, dim, dim_size, "sum", check=False).log_()
            out = shifted.sub_(_take(lse, index, dim))
        else:
            e = shifted.exp_()
            # every non-empty group sums to >= 1 (its maximum contributes exp(0)), so no epsilon
            out = e.div_(_take(scatter(e, index, dim, dim_size, "sum", check=False), index, dim))
        ctx.save_for_backward(out, index)
        ctx.dim, ctx.dim_size, ctx.log = dim, dim_size, log
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        out, index = ctx.saved_tensors
        dim, dim_size = ctx.dim, ctx.dim_size
        if ctx.log:
            total = scatter(grad, index, dim, dim_size, "sum", check=False)
            return grad - out.exp() * _take(total, index, dim), None, None, None, None
        gy = grad * out
        total = scatter(gy, index, dim, dim_size, "sum", check=False)
        return gy - out * _take(total, index, dim), None, None, None, None


def _softmax(
    src: Tensor, index: Tensor, dim: int, dim_size: int | None, check: bool | None, log: bool
) -> Tensor:
    op = "scatter_log_softmax" if log else "scatter_softmax"
    if not src.is_floating_point():
        raise ShapeError(f"{op}: src must be floating point, got {src.dtype}; cast it first")
    dim = normalize_dim(src, dim, op)
    index = check_index(src, index, dim, op)
    check = want_check(check)
    strict = resolve("scatter", "max")[0] != "torch"
    dim_size = resolve_dim_size(index, dim_size, check, op, strict=strict)
    if check and not bool(torch.isfinite(src).all()):
        pos = int((~torch.isfinite(src)).reshape(-1).nonzero()[0])
        raise DataError(f"{op}: src has a non-finite value at flat position {pos}")
    if src.numel() == 0:
        return src.clone()
    grad = src.requires_grad and torch.is_grad_enabled()
    _, fn = resolve("softmax", "log_softmax" if log else "softmax", grad=grad)
    return fn(src, index, dim, dim_size, log)


def _torch_softmax(src: Tensor, index: Tensor, dim: int, dim_size: int, log: bool) -> Tensor:
    return _ScatterSoftmax.apply(src, index, dim, dim_size, log)


def _native_softmax(src: Tensor, index: Tensor, dim: int, dim_size: int, log: bool) -> Tensor:
    """One fused pass per group (max, exp-sum, normalise while the group is in cache) on the
    CSR order of the index: free when the index is sorted (messages in CSR order); an unsorted
    index takes the torch path unless native is forced (then, forward only, one stable argsort
    and two permutations)."""
    if dim != 0 or index.dim() != 1 or src.dtype not in SPARSE_DTYPES:
        return _torch_softmax(src, index, dim, dim_size, log)
    if bool((index[1:] >= index[:-1]).all()):
        ptr = _impl_torch._ptr_of_sorted(index, dim_size)
        return _impl_native.segment_softmax(src, ptr, log)
    if get_backend() != "native" or (src.requires_grad and torch.is_grad_enabled()):
        # unsorted index: argsort + two permutations eat the gain (benchmarks/kernels.py,
        # E=4M, [E, 8]: fwd 1.25x, below the 1.5x bar; with grad the permutations' backward
        # made it 0.76-1.1x), so only a forced native backend takes this path, forward only
        return _torch_softmax(src, index, dim, dim_size, log)
    perm = torch.argsort(index, stable=True)
    ptr = _impl_torch._ptr_of_sorted(index.index_select(0, perm), dim_size)
    out = _impl_native.segment_softmax(src.index_select(0, perm), ptr, log)
    # scatter back through perm: O(E), where inverting perm by a second argsort is O(E log E)
    return torch.empty_like(out).index_copy_(0, perm, out)


for _kind in ("softmax", "log_softmax"):
    register_impl("softmax", _kind, "torch", _torch_softmax)
    register_impl("softmax", _kind, "native", _native_softmax)
    # auto routing for softmax is set in _impl_native (NATIVE_AUTO), from the measurements


def scatter_softmax(
    src: Tensor,
    index: Tensor,
    dim: int = 0,
    dim_size: int | None = None,
    *,
    check: bool | None = None,
) -> Tensor:
    r"""Softmax of ``src`` within each group of ``index`` along ``dim``:
    :math:`y_i = \exp(s_i - m_g) / \sum_{j:\,\mathrm{index}_j = g} \exp(s_j - m_g)`, with the
    group maximum :math:`m_g` subtracted for stability.

    Args:
        src: floating tensor.
        index: 1-D with ``src.size(dim)`` entries, or of ``src``'s shape.
        dim: the dimension of ``src`` that ``index`` groups.
        dim_size: number of groups (default ``index.max() + 1``).
        check: see :func:`~dyngraph.ops.scatter` (``True`` also rejects non-finite ``src``).

    Returns:
        Same shape as ``src``; each group sums to 1. Differentiable (twice).
    """
    return _softmax(src, index, dim, dim_size, check, log=False)


def scatter_log_softmax(
    src: Tensor,
    index: Tensor,
    dim: int = 0,
    dim_size: int | None = None,
    *,
    check: bool | None = None,
) -> Tensor:
    r"""Log-softmax within groups: :math:`y_i = s_i - m_g - \log\sum_{j \in g}\exp(s_j - m_g)`.
    Arguments as :func:`scatter_softmax`."""
    return _softmax(src, index, dim, dim_size, check, log=True)
