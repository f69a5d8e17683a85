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

# Auto-mode routing. benchmarks/kernels.py at E = 4M, N = 200k, F = 64, float32, uniform and
# power-law in-degrees, median of 5 with all candidates interleaved in one process (table and
# commands in kernels/README.md, raw rows in benchmarks/results/ops.json). The bar (issue #10):
# native is preferred only where it is >= 1.5x the best of plain torch and torch-scatter, on
# the forward and on forward + backward. Ratios below: thread CPU time, one thread (the
# load-robust figure on the shared 2-core box), uniform / power-law. Everything else keeps the
# torch / torch-scatter order and reaches the kernels only when forced
# (DYNGRAPH_OPS_BACKEND=native):
#   segment sum/mean/max/min  fwd 0.99-1.10x (one outlier 1.63x), fwd+bwd 0.98-1.13x: memory
#       bound for every backend (the forward streams E*F once; the backward is dominated by
#       first-touch page faults of the fresh [E, F] gradient), so there is no 1.5x to win;
#   gather_aggregate max/min  fwd 1.14 / 1.19x, fwd+bwd 1.33 / 1.25x;
#   softmax, unsorted index   fwd 1.25 / 1.32x (argsort + permutations; see softmax.py);
#   time_encode               slower than torch's vectorised cos.
NATIVE_AUTO: dict[tuple[str, ...], str] = {
    ("gather_aggregate", "sum"): "fwd 2.20 / 2.78x, fwd+bwd 2.03 / 2.28x (one-pass backward)",
    ("gather_aggregate", "mean"): "fwd 2.17 / 2.69x, fwd+bwd 1.82 / 2.16x",
    ("softmax", "softmax"): "sorted index: fwd 1.85 / 1.90x, fwd+bwd 2.21 / 1.94x",
    ("softmax", "log_softmax"): "same kernel as softmax",
}
for _key in NATIVE_AUTO:
    _base = AUTO_PREFERENCE.get(_key, ("torch",))
    AUTO_PREFERENCE[_key] = ("native", *[b for b in _base if b != "native"])
