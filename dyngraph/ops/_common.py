"""Shared argument handling for the ops: reduce names, index/shape checks, cached helpers.

Validation policy (documented once, used by every op). Checks that only look at metadata
(shapes, dtypes, dims) always run: they are free. Checks that must read every index value cost a
full pass over the index and are controlled by the ``check`` argument of each op:

``check=None`` (default)
    read index values only when it is free or when the chosen kernel cannot protect itself:
    ``dim_size=None`` (the maximum is computed anyway, so ``aminmax`` checks both ends in the
    same pass), a CSR ``ptr`` (O(S) ≤ O(E), and a bad ``ptr`` would make the sparse kernels read
    out of bounds), or the torch-scatter backend (its kernels do not bounds-check). Plain torch
    kernels bounds-check themselves; their ``RuntimeError`` is re-raised as ``DataError``.
``check=True``
    always validate values (index range, ``ptr`` monotone, finite softmax input).
``check=False``
    never read values; the caller guarantees them (fastest; out-of-range input is then
    undefined behaviour on the torch-scatter backend).

``DYNGRAPH_OPS_CHECK=1`` in the environment turns ``check=None`` into ``check=True`` everywhere
(for debugging a pipeline).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import torch
from torch import Tensor

from dyngraph.errors import ConfigError, DataError, ShapeError

_ALIASES = {"add": "sum", "amax": "max", "amin": "min", "prod": "mul"}


def normalize_reduce(reduce: str, allowed: tuple[str, ...], op: str) -> str:
    if not isinstance(reduce, str):
        raise ConfigError(f"{op}: reduce must be a string, got {type(reduce).__name__}")
    name = _ALIASES.get(reduce.lower(), reduce.lower())
    if name not in allowed:
        raise ConfigError(f"{op}: reduce={reduce!r} is not supported; use one of {allowed}")
    return name


def want_check(check: bool | None) -> bool | None:
    """Resolve the ``check`` argument against ``DYNGRAPH_OPS_CHECK``."""
    if check is None and os.environ.get("DYNGRAPH_OPS_CHECK", "") not in ("", "0"):
        return True
    return check


def normalize_dim(src: Tensor, dim: int, op: str) -> int:
    if src.dim() == 0:
        raise ShapeError(f"{op}: src must have at least one dimension, got a scalar")
    nd = src.dim()
    if not -nd <= dim < nd:
        raise ShapeError(f"{op}: dim={dim} is out of range for src of shape {tuple(src.shape)}")
    return dim % nd


def check_index(src: Tensor, index: Tensor, dim: int, op: str) -> Tensor:
    """Shape/dtype checks of a scatter index; returns it as int64 (what torch kernels need)."""
    if not isinstance(index, Tensor):
        raise ShapeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ShapeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    if index.device != src.device:
        raise ShapeError(f"{op}: index is on {index.device} but src is on {src.device}")
    if index.dim() == 1:
        if index.numel() != src.size(dim):
            raise ShapeError(
                f"{op}: index has {index.numel()} entries but src has {src.size(dim)} along "
                f"dim {dim} (shape {tuple(src.shape)}); they must match"
            )
    elif index.shape != src.shape:
        raise ShapeError(
            f"{op}: index must be 1-D with src.size(dim) entries or have src's shape; got index "
            f"{tuple(index.shape)} for src {tuple(src.shape)}"
        )
    return index if index.dtype == torch.int64 else index.long()


def resolve_dim_size(
    index: Tensor, dim_size: int | None, check: bool | None, op: str, strict: bool = False
) -> int:
    """Output size along ``dim``; validates index values per the module's policy.

    ``strict`` says the kernel that follows cannot bounds-check (torch-scatter).
    """
    if dim_size is not None:
        dim_size = int(dim_size)
        if dim_size < 0:
            raise ShapeError(f"{op}: dim_size must be >= 0, got {dim_size}")
        if (check or (check is None and strict)) and index.numel() > 0:
            lo, hi = torch.aminmax(index)
            _raise_if_out_of_range(int(lo), int(hi), index, dim_size, op)
        return dim_size
    if index.numel() == 0:
        return 0
    if check is False:
        return int(index.max()) + 1
    lo, hi = torch.aminmax(index)
    _raise_if_out_of_range(int(lo), int(hi), index, None, op)
    return int(hi) + 1


def _raise_if_out_of_range(lo: int, hi: int, index: Tensor, dim_size: int | None, op: str) -> None:
    if lo < 0:
        pos = int((index.reshape(-1) < 0).nonzero()[0])
        raise DataError(
            f"{op}: index has a negative entry ({lo}) at flat position {pos}; indices must be "
            f"in [0, dim_size)"
        )
    if dim_size is not None and hi >= dim_size:
        pos = int((index.reshape(-1) >= dim_size).nonzero()[0])
        raise DataError(
            f"{op}: index {hi} at flat position {pos} is out of range for dim_size={dim_size}; "
            f"pass a larger dim_size or fix the index"
        )


_TORCH_OOB = re.compile(r"out of (bounds|range)|index .* is out of|INDICES element is out", re.I)


@contextlib.contextmanager
def translate_index_errors(op: str, dim_size: int) -> Iterator[None]:
    """Plain torch kernels bounds-check indices themselves; give their error dyngraph's type."""
    try:
        yield
    except RuntimeError as exc:
        if _TORCH_OOB.search(str(exc)):
            raise DataError(
                f"{op}: an index is out of range for dim_size={dim_size} ({exc}); indices must "
                f"be in [0, dim_size)"
            ) from exc
        raise


def check_ptr(ptr: Tensor, num_rows: int, check: bool | None, op: str) -> Tensor:
    """Validate CSR pointers ``ptr [S+1]`` over ``num_rows`` entries; returns int64 ptr."""
    if not isinstance(ptr, Tensor):
        raise ShapeError(f"{op}: ptr must be a Tensor, got {type(ptr).__name__}")
    if ptr.dim() != 1 or ptr.numel() == 0:
        raise ShapeError(f"{op}: ptr must be 1-D with S+1 >= 1 entries, got {tuple(ptr.shape)}")
    if ptr.dtype.is_floating_point or ptr.dtype == torch.bool or ptr.is_complex():
        raise ShapeError(f"{op}: ptr must be an integer tensor, got {ptr.dtype}")
    ptr = ptr if ptr.dtype == torch.int64 else ptr.long()
    if check is False:
        return ptr
    first, last = int(ptr[0]), int(ptr[-1])
    if first != 0 or last != num_rows:
        raise DataError(
            f"{op}: ptr must start at 0 and end at src.size(0)={num_rows}; got ptr[0]={first}, "
            f"ptr[-1]={last}"
        )
    if ptr.numel() > 1:
        bad = ptr[1:] < ptr[:-1]
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise DataError(
                f"{op}: ptr must be non-decreasing; ptr[{i + 1}]={int(ptr[i + 1])} < "
                f"ptr[{i}]={int(ptr[i])}"
            )
    return ptr


def broadcast_index(index: Tensor, src: Tensor, dim: int) -> Tensor:
    """View a 1-D index along ``dim`` as src's shape (no copy)."""
    if index.dim() != 1:
        return index
    shape = [1] * src.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(src)


_ARANGE: dict[torch.device, Tensor] = {}


def arange(n: int, device: torch.device) -> Tensor:
    """``torch.arange(n)`` (int64) served from a grow-only cache: CSR kernels need a column index
    of 0..E-1 on every segment call, and allocating E int64 each time costs as much as a pass."""
    cached = _ARANGE.get(device)
    if cached is None or cached.numel() < n:
        cached = torch.arange(max(n, 1024), device=device)
        _ARANGE[device] = cached
    return cached[:n]


_ONES: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def ones(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Contiguous ``torch.ones(n)`` from a grow-only cache (unit CSR values). Never write to it."""
    key = (dtype, device)
    cached = _ONES.get(key)
    if cached is None or cached.numel() < n:
        cached = torch.ones(max(n, 1024), dtype=dtype, device=device)
        _ONES[key] = cached
    return cached[:n]


def clear_caches() -> None:
    """Release the cached arange/ones buffers."""
    _ARANGE.clear()
    _ONES.clear()
