"""Fused gather-aggregate over a CSR graph: message passing without the E x F message tensor."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from dyngraph.errors import DataError, ShapeError
from dyngraph.ops import _impl_native, _impl_torch  # noqa: F401  (register implementations)
from dyngraph.ops._common import normalize_reduce, want_check
from dyngraph.ops._sparse import SPARSE_DTYPES, SpMMArg, SpMMSum
from dyngraph.ops.backend import register_impl, resolve
from dyngraph.ops.csr import CSR

__all__ = ["gather_aggregate"]

REDUCES = ("sum", "mean", "max", "min")


class _Permute(Function):
    # index_select's backward is a serial index_add_; for a permutation the adjoint is a
    # gather with the inverse permutation, which is parallel.
    @staticmethod
    def forward(ctx, values: Tensor, perm: Tensor, inv_perm: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(perm, inv_perm)
        return values.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        perm, inv_perm = ctx.saved_tensors
        return _Permute.apply(grad, inv_perm, perm), None, None


def _mean_scale(csr: CSR, dtype: torch.dtype) -> Tensor:
    """``1 / in_degree(row_e)`` for every edge in CSR order (cached per dtype)."""
    key = ("mean_scale", dtype)
    scale = csr._cache.get(key)
    if scale is None:
        inv = 1.0 / csr.deg.clamp(min=1).to(dtype)
        scale = inv.index_select(0, csr.row)
        csr._cache[key] = scale
    return scale


# Below _impl_torch.SMALL_WORK edge-feature products the materialising path is used: the
# spmm_reduce kernel always opens an OpenMP parallel region (no grain size), which costs ~1 ms
# per call on a busy 2-core machine (1.4 ms vs 3.4 us single-threaded for a 76-edge graph),
# while gather/scatter ops stay serial for small inputs. Small graphs (road networks, solver
# inner loops) call this thousands of times.
def _torch_gather_aggregate(x: Tensor, csr: CSR, weight: Tensor | None, reduce: str) -> Tensor:
    if (
        x.dtype not in SPARSE_DTYPES
        or csr.num_edges == 0
        or x.size(1) == 0
        or csr.num_edges * x.size(1) < _impl_torch.SMALL_WORK
    ):
        return _materialised(x, csr, weight, reduce)
    w = None if weight is None else _Permute.apply(weight, csr.perm, csr.inv_perm)
    if reduce == "sum":
        return SpMMSum.apply(x, w, csr)
    if reduce == "mean":
        scale = _mean_scale(csr, x.dtype)
        return SpMMSum.apply(x, scale if w is None else w * scale, csr)
    return SpMMArg.apply(x, w, csr, reduce)


def _materialised(x: Tensor, csr: CSR, weight: Tensor | None, reduce: str) -> Tensor:
    """Gather-then-reduce, for small graphs and for dtypes/shapes the sparse kernels reject
    (half precision, empty)."""
    msg = x.index_select(0, csr.col)
    if weight is not None:
        msg = msg * csr.permute(weight).unsqueeze(-1)
    # csr.row is cached: no repeat_interleave per call (it opens a parallel region)
    return _impl_torch.scatter(msg, csr.row, 0, csr.num_nodes, reduce)


register_impl("gather_aggregate", "sum", "torch", _torch_gather_aggregate)
register_impl("gather_aggregate", "mean", "torch", _torch_gather_aggregate)
register_impl("gather_aggregate", "max", "torch", _torch_gather_aggregate)
register_impl("gather_aggregate", "min", "torch", _torch_gather_aggregate)


def gather_aggregate(
    x: Tensor,
    csr: CSR,
    edge_weight: Tensor | None = None,
    reduce: str = "sum",
    *,
    check: bool | None = None,
) -> Tensor:
    r"""Message passing in one fused step: :math:`\mathrm{out}_i = \bigoplus_{j \to i}
    w_{ji}\, x_j` over the in-edges of every target node ``i``.

    Args:
        x: ``[num_src_nodes, ...]`` floating node features (trailing dims are features).
        csr: the graph, from :meth:`CSR.from_edge_index` (rows = targets).
        edge_weight: optional ``[E]`` per-edge scalar in the **original** ``edge_index``
            order, same dtype as ``x``.
        reduce: ``"sum"``, ``"mean"`` (sum divided by in-degree), ``"max"``, ``"min"``.
        check: ``True`` also verifies that ``edge_weight`` is finite (one pass over E);
            the graph itself was validated when the ``CSR`` was built.

    Returns:
        ``[num_nodes, ...]``; nodes without in-edges get 0.

    Autograd w.r.t. ``x`` and ``edge_weight`` for every reduce. sum/mean never allocate the
    ``E x F`` message tensor, forward or backward (float32/float64; other float dtypes take a
    materialising fallback): the x-gradient is a product with the cached transposed graph and
    the edge-weight gradient a sampled dot product :math:`\partial L/\partial w_{ji} =
    \langle \partial L/\partial \mathrm{out}_i, x_j\rangle`. sum/mean are twice
    differentiable; max/min once (the gradient goes to the first maximal edge).
    """
    reduce = normalize_reduce(reduce, REDUCES, "gather_aggregate")
    if not isinstance(csr, CSR):
        raise ShapeError(
            f"gather_aggregate: csr must be a dyngraph.ops.CSR, got {type(csr).__name__}; build "
            f"it once with CSR.from_edge_index(edge_index, num_nodes)"
        )
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ShapeError("gather_aggregate: x must be a tensor of shape [num_nodes, ...]")
    if not x.is_floating_point():
        raise ShapeError(f"gather_aggregate: x must be floating point, got {x.dtype}")
    if x.size(0) != csr.num_src_nodes:
        raise ShapeError(
            f"gather_aggregate: x has {x.size(0)} rows but the graph has {csr.num_src_nodes} "
            f"source nodes; pass num_nodes to CSR.from_edge_index to match x"
        )
    if x.device != csr.device:
        raise ShapeError(f"gather_aggregate: x is on {x.device} but the graph on {csr.device}")
    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor) or edge_weight.shape != (csr.num_edges,):
            shape = tuple(edge_weight.shape) if isinstance(edge_weight, Tensor) else edge_weight
            raise ShapeError(
                f"gather_aggregate: edge_weight must have shape [E] = [{csr.num_edges}], got "
                f"{shape}"
            )
        if edge_weight.dtype != x.dtype:
            raise ShapeError(
                f"gather_aggregate: edge_weight is {edge_weight.dtype} but x is {x.dtype}; "
                f"cast one of them"
            )
        if want_check(check) and not bool(torch.isfinite(edge_weight).all()):
            e = int((~torch.isfinite(edge_weight)).nonzero()[0])
            raise DataError(f"gather_aggregate: edge_weight[{e}] is not finite")
    feat_shape = x.shape[1:]
    flat = x.reshape(x.size(0), -1)
    grad = torch.is_grad_enabled() and (
        x.requires_grad or (edge_weight is not None and edge_weight.requires_grad)
    )
    _, fn = resolve("gather_aggregate", reduce, grad=grad)
    out = fn(flat, csr, edge_weight, reduce)
    return out.view(csr.num_nodes, *feat_shape)
