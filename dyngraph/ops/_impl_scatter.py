"""torch-scatter implementations, registered as backend ``scatter`` (used only when importable).

Not registered, on purpose: ``mul`` (torch-scatter's gradient divides by ``src`` and is wrong
at zeros; torch's ``prod`` backward handles them) and the fused gather-aggregate (torch-scatter
has none). Integer ``mean`` is delegated to torch: segment_csr truncates toward zero, while the
scatter convention (and torch-scatter's own ``scatter_mean``) is floor division.
"""

from __future__ import annotations

from functools import partial

from torch import Tensor

from dyngraph.ops import _impl_torch
from dyngraph.ops.backend import register_impl


def scatter(src: Tensor, index: Tensor, dim: int, dim_size: int, reduce: str) -> Tensor:
    import torch_scatter

    return torch_scatter.scatter(src, index, dim, dim_size=dim_size, reduce=reduce)


def segment(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    if reduce == "mean" and not src.dtype.is_floating_point:
        return _impl_torch.segment(src, ptr, reduce)
    import torch_scatter

    return torch_scatter.segment_csr(src, ptr, reduce=reduce)


def scatter_arg(src: Tensor, index: Tensor, dim_size: int, reduce: str) -> Tensor:
    import torch_scatter

    fn = torch_scatter.scatter_max if reduce == "max" else torch_scatter.scatter_min
    return fn(src.detach(), index, 0, dim_size=dim_size)[1]


for _r in ("sum", "mean", "max", "min"):
    register_impl("scatter", _r, "scatter", partial(scatter, reduce=_r))
    register_impl("segment", _r, "scatter", partial(segment, reduce=_r))
for _r in ("max", "min"):
    register_impl("scatter_arg", _r, "scatter", partial(scatter_arg, reduce=_r))
