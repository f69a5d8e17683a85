"""Cosine time encoding :math:`\\phi(\\Delta t) = \\cos(\\Delta t\\, w + b)` as one op.

TGN / TGAT / GraphMixer encode every neighbour slot's time difference this way; in TGN training
it is evaluated on every ``[q, k]`` neighbour slot of every batch. The native kernel computes
the cosine in one pass (no ``dt * w`` and ``+ b`` temporaries) and its backward reduces
``-sin(.) * grad`` straight into ``dw``/``db`` without the ``[*, T]`` intermediate tensors that
autograd through ``torch.cos`` keeps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dyngraph.errors import ShapeError
from dyngraph.ops import _impl_native  # noqa: F401  (register the native implementation)
from dyngraph.ops.backend import register_impl, resolve

__all__ = ["time_encode"]


def _torch_time_encode(dt: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return torch.cos(dt.to(weight.dtype).unsqueeze(-1) * weight + bias)


register_impl("time_encode", "cos", "torch", _torch_time_encode)
register_impl("time_encode", "cos", "native", _impl_native.time_encode)


def time_encode(dt: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Encode time differences: :math:`\phi(\Delta t)_j = \cos(\Delta t\, w_j + b_j)`.

    Args:
        dt: time differences of any shape ``[*]``; cast to ``weight``'s dtype first (take
            differences of float64 timestamps before calling, so they keep their precision).
        weight: ``[T]`` frequencies (floating).
        bias: ``[T]`` phases, or ``None`` for zeros.

    Returns:
        ``[*, T]`` in ``weight``'s dtype. Differentiable w.r.t. ``dt``, ``weight`` and ``bias``.
    """
    if not isinstance(weight, Tensor) or weight.dim() != 1 or not weight.is_floating_point():
        raise ShapeError("time_encode: weight must be a 1-D floating tensor [T]")
    if bias is None:
        bias = weight.new_zeros(weight.shape)
    if not isinstance(bias, Tensor) or bias.shape != weight.shape or bias.dtype != weight.dtype:
        raise ShapeError(
            f"time_encode: bias must match weight (shape {tuple(weight.shape)}, {weight.dtype})"
        )
    if not isinstance(dt, Tensor):
        raise ShapeError(f"time_encode: dt must be a tensor, got {type(dt).__name__}")
    if dt.device != weight.device:
        raise ShapeError(f"time_encode: dt is on {dt.device} but weight on {weight.device}")
    _, fn = resolve("time_encode", "cos")
    return fn(dt, weight, bias)
