"""Native-kernel implementations (``kernels/``), registered as backend ``native``.

Each function takes the same validated arguments as its ``_impl_torch`` counterpart and hands
dtypes or reductions the kernels do not cover (integers, half precision, ``mul``) to it. The
extension is built lazily: the backend's probe (:func:`dyngraph.ops._native.unavailable_reason`)
runs on the first call that resolves to ``native``.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor

from dyngraph.ops import _impl_torch, _native
from dyngraph.ops._sparse import SPARSE_DTYPES
from dyngraph.ops.backend import AUTO_PREFERENCE, register_backend, register_impl
from dyngraph.ops.csr import CSR

NATIVE_DTYPES = SPARSE_DTYPES  # float32, float64


def _grad_on(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def segment(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    if src.dtype not in NATIVE_DTYPES or reduce not in _native.REDUCE_CODES:
        return _impl_torch.segment(src, ptr, reduce)
    flat = src.reshape(src.size(0), math.prod(src.shape[1:]))
    code = _native.REDUCE_CODES[reduce]
    out = torch.ops.dyngraph.segment_reduce(flat, ptr, code, code >= 2 and _grad_on(src))[0]
    return out.view(ptr.numel() - 1, *src.shape[1:])


def transpose_tensors(csr: CSR) -> list[Tensor]:
    """What the sum/mean backward needs: the transposed graph and the two position maps."""
    t = csr.transpose()
    return [t.ptr, t.index_tensors()[1], csr.transpose_index(), t.transpose_index()]


def gather_aggregate(x: Tensor, csr: CSR, weight: Tensor | None, reduce: str) -> Tensor:
    if x.dtype not in NATIVE_DTYPES:
        return _impl_torch_gather_aggregate(x, csr, weight, reduce)
    from dyngraph.ops.aggregate import _Permute

    w = None if weight is None else _Permute.apply(weight, csr.perm, csr.inv_perm)
    code = _native.REDUCE_CODES[reduce]
    grad = _grad_on(x, weight)
    tr = transpose_tensors(csr) if grad and code < 2 else []
    col = csr.index_tensors()[1]
    return torch.ops.dyngraph.csr_aggregate(x, csr.ptr, col, w, code, grad and code >= 2, tr)[0]


def _impl_torch_gather_aggregate(x: Tensor, csr: CSR, weight: Tensor | None, reduce: str):
    from dyngraph.ops.aggregate import _torch_gather_aggregate

    return _torch_gather_aggregate(x, csr, weight, reduce)


def segment_softmax(src: Tensor, ptr: Tensor, log: bool) -> Tensor:
    """Softmax of ``src [E, ...]`` (float32/64) within CSR segments along dim 0."""
    flat = src.reshape(src.size(0), math.prod(src.shape[1:]))
    return torch.ops.dyngraph.segment_softmax(flat, ptr, log).view_as(src)


def time_encode(dt: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    if weight.dtype not in NATIVE_DTYPES:
        from dyngraph.ops.time_encoding import _torch_time_encode

        return _torch_time_encode(dt, weight, bias)
    flat = dt.reshape(-1)
    out = torch.ops.dyngraph.time_encode(flat, weight, bias)
    return out.view(*dt.shape, weight.numel())


register_backend("native", _native.unavailable_reason)
for _r in ("sum", "mean", "max", "min"):
    register_impl("segment", _r, "native", partial(segment, reduce=_r))
    register_impl("gather_aggregate", _r, "native", gather_aggregate)

# Auto-mode preferences for the keys the native kernels implement, from benchmarks/kernels.py
# (E = 4M, N = 200k, F = 64, float32, 2 threads on the shared 2-core box; see kernels/README.md
# for the table). Forward segment sums are memory-bound for every backend (native ~1.2x over
# torch's spmm_reduce); the backward passes and the fused gather-aggregate are where native wins.
for _key in (
    ("segment", "sum"),
    ("segment", "mean"),
    ("segment", "max"),
    ("segment", "min"),
    ("gather_aggregate", "sum"),
    ("gather_aggregate", "mean"),
    ("gather_aggregate", "max"),
    ("gather_aggregate", "min"),
):
    AUTO_PREFERENCE[_key] = ("native", *[b for b in AUTO_PREFERENCE.get(_key, ("torch",))
                                        if b != "native"])
