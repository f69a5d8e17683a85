"""Torch sparse-CSR kernels behind the fused aggregation and the float segment reductions.

Why these kernels: ``torch.ops.aten._sparse_mm_reduce_impl`` (the CPU "spmm_reduce" kernel that
``torch.sparse.mm(A, X, reduce=...)`` uses) is parallel over rows and vectorised over features,
and it beat MKL's ``A @ X``, ``torch.segment_reduce`` and ``scatter_reduce_`` on this machine
(see ``benchmarks/ops.py``). ``torch.sparse.sampled_addmm`` gives the per-edge dot products that
an edge-weight gradient needs without an ``E x F`` temporary.

Why custom autograd: torch's own backward of a CSR product returns a *coalesced* gradient for
the values, which has fewer entries than E as soon as the graph has parallel edges (it raises
"invalid gradient ... got [E'] but expected [E]"). The Functions here return per-edge gradients
and never materialise ``E x F``: the x-gradient is a product with the cached transposed graph,
the value gradient a sampled dense-dense product. Sum/mean backward passes are themselves built
from these Functions, so higher-order gradients work; max/min are once-differentiable.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from dyngraph.ops._common import arange, ones
from dyngraph.ops.csr import CSR

# torch emits a one-time "Sparse CSR tensor support is in beta" notice on the first CSR
# construction; it is not actionable for dyngraph users, so trigger it once here, silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(
        torch.zeros(2, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0), (1, 1)
    )

_mm_reduce = torch.ops.aten._sparse_mm_reduce_impl

# float dtypes the CPU spmm_reduce / sampled_addmm kernels accept
SPARSE_DTYPES = (torch.float32, torch.float64)


def csr_tensor(ptr: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(ptr, col, values, shape, check_invariants=False)


def _spmm_raw(
    ptr: Tensor, col: Tensor, values: Tensor, x: Tensor, shape: tuple[int, int], reduce: str
) -> Tensor:
    out, _ = _mm_reduce(csr_tensor(ptr, col, values, shape), x, reduce)
    return out


# Kernel for weighted sums over a CSR graph: "spmm_reduce" (torch's parallel row kernel) or
# "mkl" (torch.sparse.mm -> MKL). MKL measured faster for the gather-heavy graph product at
# E=4M, N=200k, F=64: 202 vs 247 ms single-thread CPU, 956 vs 1147 ms wall on 2 busy threads.
# (For segment reductions, whose access is sequential, spmm_reduce stays: ~2x faster there.)
SUM_KERNEL = "mkl"


def _spmm_sum(
    ptr: Tensor, col: Tensor, values: Tensor, x: Tensor, shape: tuple[int, int]
) -> Tensor:
    if SUM_KERNEL == "mkl":
        return torch.sparse.mm(csr_tensor(ptr, col, values, shape), x)
    return _spmm_raw(ptr, col, values, x, shape, "sum")


def _spmm_arg_raw(
    ptr: Tensor, col: Tensor, values: Tensor, x: Tensor, shape: tuple[int, int], reduce: str
) -> tuple[Tensor, Tensor]:
    # The kernel only records arg-max positions when it believes a gradient is needed.
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        out, arg = _mm_reduce(csr_tensor(ptr, col, values.detach(), shape), xr, reduce)
    return out.detach(), arg


# ---------------------------------------------------------------------------------- CSR graphs
def _values_or_ones(values: Tensor | None, csr: CSR, dtype: torch.dtype) -> Tensor:
    if values is None:
        return ones(csr.num_edges, dtype, csr.device)
    return values.contiguous()


class SpMMSum(Function):
    """``out[i] = sum_{e in row i} v_e * x[col_e]`` (``v = 1`` when values is None)."""

    @staticmethod
    def forward(ctx, x: Tensor, values: Tensor | None, csr: CSR) -> Tensor:  # type: ignore[override]
        ptr, col = csr.index_tensors()
        x = x.contiguous()
        out = _spmm_sum(ptr, col, _values_or_ones(values, csr, x.dtype), x, csr.shape)
        ctx.csr = csr
        ctx.save_for_backward(x, values)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        x, values = ctx.saved_tensors
        csr: CSR = ctx.csr
        grad_x = grad_v = None
        if ctx.needs_input_grad[0]:
            vt = None if values is None else values.index_select(0, csr.transpose_index())
            grad_x = SpMMSum.apply(grad_out, vt, csr.transpose())
        if ctx.needs_input_grad[1]:
            grad_v = EdgeDot.apply(grad_out, x, csr)
        return grad_x, grad_v, None


class EdgeDot(Function):
    """``v[e] = <a[row_e], b[col_e]>`` for every edge in CSR order, without ``E x F`` memory."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, csr: CSR) -> Tensor:  # type: ignore[override]
        ptr, col = csr.index_tensors()
        pattern = csr_tensor(ptr, col, ones(csr.num_edges, a.dtype, a.device), csr.shape)
        out = torch.sparse.sampled_addmm(pattern, a.contiguous(), b.t(), beta=0.0).values()
        ctx.csr = csr
        ctx.save_for_backward(a, b)
        return out

    @staticmethod
    def backward(ctx, grad_v: Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        csr: CSR = ctx.csr
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = SpMMSum.apply(b, grad_v, csr)
        if ctx.needs_input_grad[1]:
            gt = grad_v.index_select(0, csr.transpose_index())
            grad_b = SpMMSum.apply(a, gt, csr.transpose())
        return grad_a, grad_b, None


class SpMMArg(Function):
    """``out[i] = max_e v_e * x[col_e]`` (or min) over the edges of row ``i``; 0 for empty rows."""

    @staticmethod
    def forward(ctx, x: Tensor, values: Tensor | None, csr: CSR, reduce: str) -> Tensor:  # type: ignore[override]
        ptr, col = csr.index_tensors()
        x = x.contiguous()
        vals = _values_or_ones(values, csr, x.dtype)
        op = "amax" if reduce == "max" else "amin"
        if any(ctx.needs_input_grad[:2]):
            out, arg = _spmm_arg_raw(ptr, col, vals, x, csr.shape, op)
            ctx.save_for_backward(x, values, arg)
        else:
            out = _spmm_raw(ptr, col, vals, x, csr.shape, op)
        ctx.csr = csr
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        x, values, arg = ctx.saved_tensors
        csr: CSR = ctx.csr
        num_edges = csr.num_edges
        # arg == E marks an empty row: pad col/values with a dummy edge whose weight is 0.
        zero = csr.col.new_zeros(1)
        src_node = torch.cat([csr.col, zero]).index_select(0, arg.view(-1)).view_as(arg)
        if values is None:
            w_at = (arg < num_edges).to(grad_out.dtype)
        else:
            w_at = torch.cat([values, values.new_zeros(1)]).index_select(0, arg.view(-1))
            w_at = w_at.view_as(arg)
        grad_x = grad_v = None
        if ctx.needs_input_grad[0]:
            grad_x = x.new_zeros(x.shape).scatter_add_(0, src_node, grad_out * w_at)
        if ctx.needs_input_grad[1]:
            contrib = grad_out * x.gather(0, src_node)
            grad_v = contrib.new_zeros(num_edges + 1)
            grad_v.index_add_(0, arg.reshape(-1), contrib.reshape(-1))
            grad_v = grad_v[:num_edges]
        return grad_x, grad_v, None, None


# ------------------------------------------------------------------------------ segments (ptr)
def segment_raw(
    src: Tensor, ptr: Tensor, reduce: str, with_arg: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Segment reduce of a contiguous ``src [E, F]`` over ``ptr`` with the spmm_reduce kernel
    (rows = segments, columns = the E input rows, unit values). With ``with_arg`` (max/min),
    also the winning row of every output entry (``E`` for empty segments)."""
    num_rows = src.size(0)
    use32 = num_rows <= 2**31 - 1
    kptr = ptr.int() if use32 else ptr
    kcol = arange(num_rows, src.device)
    kcol = kcol.int() if use32 else kcol
    shape = (ptr.numel() - 1, num_rows)
    vals = ones(num_rows, src.dtype, src.device)
    op = {"max": "amax", "min": "amin"}.get(reduce, reduce)
    if with_arg:
        return _spmm_arg_raw(kptr, kcol, vals, src, shape, op)
    return _spmm_raw(kptr, kcol, vals, src, shape, op), None


def scatter_from_arg(grad_out: Tensor, arg: Tensor, num_rows: int) -> Tensor:
    """Adjoint of picking rows ``arg`` (``num_rows`` = nothing picked): route each output
    gradient to its winning input row."""
    grad = grad_out.new_zeros((num_rows + 1, grad_out.size(1)))
    grad.scatter_(0, arg, grad_out)  # empty groups write to the pad row
    return grad[:num_rows]


class SegmentSpMM(Function):
    """Differentiable :func:`segment_raw`."""

    @staticmethod
    def forward(ctx, src: Tensor, ptr: Tensor, reduce: str) -> Tensor:  # type: ignore[override]
        src = src.contiguous()
        ctx.reduce = reduce
        ctx.num_rows = src.size(0)
        with_arg = reduce in ("max", "min") and ctx.needs_input_grad[0]
        out, arg = segment_raw(src, ptr, reduce, with_arg)
        ctx.save_for_backward(arg if with_arg else ptr)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        if ctx.reduce in ("max", "min"):
            (arg,) = ctx.saved_tensors
            return scatter_from_arg(grad_out, arg, ctx.num_rows), None, None
        (ptr,) = ctx.saved_tensors
        counts = ptr.diff()
        seg = torch.repeat_interleave(
            torch.arange(counts.numel(), device=ptr.device), counts, output_size=ctx.num_rows
        )
        if ctx.reduce == "mean":
            grad_out = grad_out / counts.clamp(min=1).to(grad_out.dtype).unsqueeze(-1)
        return grad_out.index_select(0, seg), None, None
