"""Naive loop references and shared strategies for the dyngraph.ops tests (not a test file)."""

from __future__ import annotations

import contextlib
import importlib.util

import pytest
import torch
from hypothesis import strategies as st

from dyngraph.ops import backend

HAS_TORCH_SCATTER = importlib.util.find_spec("torch_scatter") is not None

# Every test that exercises an op runs once per usable backend.
BACKENDS = [
    "torch",
    pytest.param(
        "scatter",
        marks=pytest.mark.skipif(not HAS_TORCH_SCATTER, reason="torch-scatter not installed"),
    ),
]

FLOATS = (torch.float32, torch.float64)
INTS = (torch.int64, torch.int32)


def reduce_list(values: list[torch.Tensor], reduce: str, like: torch.Tensor) -> torch.Tensor:
    """Reduce a Python list of equally-shaped tensors the slow, obvious way."""
    if not values:
        return torch.full_like(like, 1 if reduce == "mul" else 0)
    acc = values[0].clone()
    for v in values[1:]:
        if reduce in ("sum", "mean"):
            acc = acc + v
        elif reduce == "max":
            acc = torch.maximum(acc, v)
        elif reduce == "min":
            acc = torch.minimum(acc, v)
        elif reduce == "mul":
            acc = acc * v
    if reduce == "mean":
        n = len(values)
        acc = acc / n if acc.is_floating_point() else torch.div(acc, n, rounding_mode="floor")
    return acc.to(like.dtype)


def ref_scatter(src, index, dim, dim_size, reduce):
    """Loop reference for a 1-D index along ``dim``."""
    slices = []
    like = src.select(dim, 0) if src.size(dim) else src.new_zeros(
        [s for i, s in enumerate(src.shape) if i != dim]
    )
    for g in range(dim_size):
        members = [src.select(dim, i) for i in range(src.size(dim)) if int(index[i]) == g]
        slices.append(reduce_list(members, reduce, like))
    if not slices:
        shape = list(src.shape)
        shape[dim] = 0
        return src.new_zeros(shape)
    return torch.stack(slices, dim)


def ref_segment(src, ptr, reduce):
    like = src[0] if src.size(0) else src.new_zeros(src.shape[1:])
    out = [
        reduce_list([src[i] for i in range(int(ptr[s]), int(ptr[s + 1]))], reduce, like)
        for s in range(ptr.numel() - 1)
    ]
    return torch.stack(out) if out else src.new_zeros((0, *src.shape[1:]))


def assert_close(actual, expected, dtype):
    if dtype.is_floating_point:
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)
    else:
        assert torch.equal(actual, expected), (actual, expected)


@st.composite
def src_and_index(draw, dtypes=FLOATS + INTS, max_rows=24, allow_nd=True):
    """(src, index, dim, dim_size): random groups incl. empty ones and dim_size > max index.

    ``src`` is sometimes non-contiguous (a transposed or strided view).
    """
    dtype = draw(st.sampled_from(dtypes))
    num_rows = draw(st.integers(0, max_rows))
    num_groups = draw(st.integers(1, 8))
    extra = draw(st.integers(0, 3))  # dim_size larger than the largest index
    ndim = draw(st.integers(1, 3)) if allow_nd else 1
    dim = draw(st.integers(0, ndim - 1))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    shape[dim] = num_rows
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    if layout == "transposed" and ndim >= 2:
        base = _values(list(reversed(shape)), dtype, g)
        src = base.permute(*reversed(range(ndim)))
    elif layout == "strided":
        big = list(shape)
        big[-1] *= 2
        src = _values(big, dtype, g)[..., ::2]
    else:
        src = _values(shape, dtype, g)
    index = torch.randint(0, num_groups, (num_rows,), generator=g)
    return src, index, dim, num_groups + extra


def _values(shape, dtype, g):
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g, dtype=torch.float64) * 4 - 2).to(dtype)
    return torch.randint(-5, 6, shape, generator=g).to(dtype)


@st.composite
def segments(draw, dtypes=FLOATS + INTS, max_segments=8):
    """(src, ptr): random segment lengths including empty segments (and empty src)."""
    dtype = draw(st.sampled_from(dtypes))
    lengths = draw(st.lists(st.integers(0, 5), min_size=0, max_size=max_segments))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    trailing = draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    ptr = torch.tensor([0, *lengths]).cumsum(0)
    num_rows = int(ptr[-1])
    if draw(st.booleans()) and trailing:
        src = _values([num_rows, *trailing[:-1], trailing[-1] * 2], dtype, g)[..., ::2]
    else:
        src = _values([num_rows, *trailing], dtype, g)
    return src, ptr


SIZE_PATHS = ["small-path", "kernel-path"]


@contextlib.contextmanager
def forced_path(monkeypatch, path: str):
    """Force the torch backend's small-input (gather/scatter) path or its sparse-kernel path by
    moving the size threshold, so both are tested on small data.

    The kernel path runs single-threaded here: on tiny inputs its OpenMP region costs ~1 ms per
    call on the shared test machine, and gradgradcheck makes thousands of calls.
    """
    from dyngraph.ops import _impl_torch

    monkeypatch.setattr(_impl_torch, "SMALL_WORK", 1 << 62 if path == "small-path" else 0)
    threads = torch.get_num_threads()
    if path == "kernel-path":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def use(name: str):
    return backend.use_backend(name)
