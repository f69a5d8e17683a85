"""dyngraph.ops.scatter / scatter_argmax / scatter_argmin against loop references and PyG."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.utils as pyg_utils
from _ops_ref import (
    BACKENDS,
    SIZE_PATHS,
    assert_close,
    forced_path,
    ref_scatter,
    src_and_index,
    use,
)
from hypothesis import HealthCheck, given, settings
from torch_geometric.utils._scatter import scatter_argmax as pyg_scatter_argmax

from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.ops import scatter, scatter_argmax, scatter_argmin

REDUCES = ["sum", "mean", "max", "min", "mul"]
SETTINGS = settings(max_examples=40, deadline=None)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduce", REDUCES)
@SETTINGS
@given(case=src_and_index())
def test_scatter_matches_loop_reference(backend, reduce, case):
    src, index, dim, dim_size = case
    with use(backend):
        out = scatter(src, index, dim, dim_size, reduce)
    expected = ref_scatter(src, index, dim, dim_size, reduce)
    assert out.dtype == src.dtype
    assert out.shape == expected.shape
    assert_close(out, expected, src.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduce", ["sum", "max"])
@SETTINGS
@given(case=src_and_index(allow_nd=False))
def test_scatter_default_dim_size_is_max_index_plus_one(backend, reduce, case):
    src, index, _, _ = case
    with use(backend):
        out = scatter(src, index, reduce=reduce)
    size = int(index.max()) + 1 if index.numel() else 0
    assert out.shape[0] == size
    assert_close(out, ref_scatter(src, index, 0, size, reduce), src.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_shape_index_and_aliases(backend):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(6, 3, generator=g)
    index = torch.randint(0, 4, (6, 3), generator=g)
    with use(backend):
        out = scatter(src, index, 0, 4, "add")
        out_max = scatter(src, index, 0, 4, "amax")
    for c in range(3):
        assert_close(out[:, c], ref_scatter(src[:, c], index[:, c], 0, 4, "sum"), src.dtype)
        assert_close(out_max[:, c], ref_scatter(src[:, c], index[:, c], 0, 4, "max"), src.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_agrees_with_pyg(backend, reduce):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(50, 4, 3, generator=g, dtype=torch.float64)
    index = torch.randint(0, 9, (4,), generator=g)
    with use(backend):
        out = scatter(src, index, 1, 12, reduce)
    expected = pyg_utils.scatter(src, index, 1, 12, reduce)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_gradcheck(backend, reduce):
    g = torch.Generator().manual_seed(2)
    src = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 3, 0, 3, 3, 1, 5, 0, 1, 3])  # groups 2 and 4 empty
    with use(backend):
        assert torch.autograd.gradcheck(lambda s: scatter(s, index, 0, 6, reduce), (src,))
        if reduce in ("sum", "mean"):
            assert torch.autograd.gradgradcheck(lambda s: scatter(s, index, 0, 6, reduce), (src,))


@pytest.fixture(params=SIZE_PATHS)
def size_path(request, monkeypatch):
    with forced_path(monkeypatch, request.param):
        yield request.param


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=src_and_index(allow_nd=False))
def test_argmax_argmin_reference(backend, case, size_path):
    src, index, _, dim_size = case
    with use(backend):
        amax = scatter_argmax(src, index, dim_size)
        amin = scatter_argmin(src, index, dim_size)
    n = src.size(0)
    for g in range(dim_size):
        members = [i for i in range(n) if int(index[i]) == g]
        if not members:
            assert int(amax[g]) == n and int(amin[g]) == n
            continue
        vals = [src[i].item() for i in members]
        assert int(amax[g]) == members[vals.index(max(vals))]  # ties: smallest position
        assert int(amin[g]) == members[vals.index(min(vals))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_argmax_multi_column_and_pyg(backend, size_path):
    g = torch.Generator().manual_seed(3)
    src = torch.randn(40, 3, generator=g)
    index = torch.randint(0, 7, (40,), generator=g)
    with use(backend):
        arg = scatter_argmax(src, index, 9)
    for c in range(3):
        expected_max = ref_scatter(src[:, c], index, 0, 9, "max")
        for grp in range(9):
            if int(arg[grp, c]) < 40:
                assert src[arg[grp, c], c] == expected_max[grp]
                assert index[arg[grp, c]] == grp
            else:
                assert not bool((index == grp).any())
    # PyG maps empty groups to dim_size - 1 (torch path) or src.size(0) (torch-scatter path).
    flat_arg = scatter_argmax(src[:, 0], index, 9)
    pyg = pyg_scatter_argmax(src[:, 0], index, dim_size=9)
    nonempty = torch.bincount(index, minlength=9) > 0
    assert torch.equal(flat_arg[nonempty], pyg[nonempty])


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_index_is_data_error(backend):
    src = torch.randn(4, 2)
    with use(backend):
        with pytest.raises(DataError, match="out of range"):
            scatter(src, torch.tensor([0, 1, 5, 1]), 0, 3)
        with pytest.raises(DataError, match="negative"):
            scatter(src, torch.tensor([0, -1, 2, 1]), 0, None)
        with pytest.raises(DataError):
            scatter(src, torch.tensor([0, 1, 5, 1]), 0, 3, check=True)
        with pytest.raises(DataError):
            scatter_argmax(src, torch.tensor([0, 1, 5, 1]), 3)


def test_shape_and_argument_errors():
    src = torch.randn(4, 2)
    with pytest.raises(ShapeError, match="entries"):
        scatter(src, torch.tensor([0, 1, 2]), 0, 3)
    with pytest.raises(ShapeError, match="integer"):
        scatter(src, torch.tensor([0.0, 1.0, 2.0, 1.0]), 0, 3)
    with pytest.raises(ShapeError, match="dim"):
        scatter(src, torch.tensor([0, 1, 2, 1]), 2, 3)
    with pytest.raises(ShapeError):
        scatter(src, torch.zeros(4, 3, dtype=torch.long), 0, 3)
    with pytest.raises(ShapeError, match="dim_size"):
        scatter(src, torch.tensor([0, 1, 2, 1]), 0, -1)
    with pytest.raises(ConfigError, match="reduce"):
        scatter(src, torch.tensor([0, 1, 2, 1]), 0, 3, "median")
    with pytest.raises(ShapeError):
        scatter_argmax(src, torch.zeros(4, 2, dtype=torch.long), 3)


def test_int32_index_and_empty_input():
    src = torch.arange(6.0)
    idx = torch.tensor([2, 0, 2, 1, 0, 2], dtype=torch.int32)
    torch.testing.assert_close(scatter(src, idx, 0, 4), torch.tensor([5.0, 3.0, 7.0, 0.0]))
    empty = scatter(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 0, 2, "max")
    assert empty.shape == (2, 3) and not bool(empty.any())
    assert scatter(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 3)


@pytest.mark.parametrize("order", ["sorted", "unsorted"])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_large_input_routes_match_reference(order, reduce, monkeypatch):
    """On large inputs a sorted 1-D index is routed to the CSR segment kernel, and max/min with
    grad to a sort + segment-kernel path with a one-scatter backward. Force those routes on
    small data (size threshold 0) and compare with the reference, gradcheck, and range errors."""
    with forced_path(monkeypatch, "kernel-path"):
        g = torch.Generator().manual_seed(4)
        index = torch.tensor([0, 0, 2, 2, 2, 3, 6, 6])  # groups 1, 4, 5, 7 empty
        if order == "unsorted":
            index = index[torch.randperm(8, generator=g)]
        src = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
        out = scatter(src, index, 0, 8, reduce)
        expected = ref_scatter(src.detach(), index, 0, 8, reduce)
        torch.testing.assert_close(out.detach(), expected)
        assert torch.autograd.gradcheck(lambda s: scatter(s, index, 0, 8, reduce), (src,))
        with pytest.raises(DataError):
            scatter(src, index, 0, 5, reduce)
        # ties: the gradient of a tied max/min goes to exactly one of the tied rows
        tied = torch.ones(8, 2, dtype=torch.float64, requires_grad=True)
        scatter(tied, index, 0, 8, reduce).sum().backward()
        per_group = torch.zeros(8, 2, dtype=torch.float64).index_add_(0, index, tied.grad)
        counts = torch.bincount(index, minlength=8).double().unsqueeze(-1).expand(-1, 2)
        # d(sum)/d(each member) = 1; for mean/max/min the member gradients of a group sum to 1
        torch.testing.assert_close(per_group, counts if reduce == "sum" else (counts > 0).double())


def test_argmax_ties_pick_smallest_position(size_path):
    g = torch.Generator().manual_seed(5)
    src = torch.randint(0, 3, (200, 2), generator=g).double()  # many ties
    index = torch.randint(0, 12, (200,), generator=g)
    for fn, pick in ((scatter_argmax, max), (scatter_argmin, min)):
        arg = fn(src, index, 14)
        for grp in range(14):
            members = (index == grp).nonzero().view(-1).tolist()
            for c in range(2):
                if not members:
                    assert int(arg[grp, c]) == 200
                    continue
                vals = [float(src[i, c]) for i in members]
                assert int(arg[grp, c]) == members[vals.index(pick(vals))]
