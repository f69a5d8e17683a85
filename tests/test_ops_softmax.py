"""dyngraph.ops.scatter_softmax / scatter_log_softmax against a loop reference and PyG."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.utils as pyg_utils
from _ops_ref import BACKENDS, FLOATS, src_and_index, use
from hypothesis import given, settings

from dyngraph.errors import DataError, ShapeError
from dyngraph.ops import scatter_log_softmax, scatter_softmax


def ref_softmax(src, index, dim, log):
    out = torch.empty_like(src, dtype=torch.float64)
    s64 = src.double()
    for g in index.unique().tolist():
        pos = (index == g).nonzero().view(-1)
        block = s64.index_select(dim, pos)
        res = torch.log_softmax(block, dim) if log else torch.softmax(block, dim)
        out.index_copy_(dim, pos, res)
    return out.to(src.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log", [False, True])
@settings(max_examples=40, deadline=None)
@given(case=src_and_index(dtypes=FLOATS))
def test_softmax_matches_reference(backend, log, case):
    src, index, dim, dim_size = case
    src = src * 10  # spread values so the max-shift matters
    fn = scatter_log_softmax if log else scatter_softmax
    with use(backend):
        out = fn(src, index, dim, dim_size)
    tol = 1e-5 if src.dtype == torch.float32 else 1e-10
    torch.testing.assert_close(out, ref_softmax(src, index, dim, log), rtol=tol, atol=tol)


def test_softmax_agrees_with_pyg_and_is_stable():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(60, 4, generator=g) * 50 + 1000  # exp would overflow without the shift
    index = torch.randint(0, 10, (60,), generator=g)
    out = scatter_softmax(src, index, 0, 13)
    torch.testing.assert_close(out, pyg_utils.softmax(src, index, num_nodes=13))
    sums = torch.zeros(13, 4).index_add_(0, index, out)
    present = torch.bincount(index, minlength=13) > 0
    torch.testing.assert_close(sums[present], torch.ones(int(present.sum()), 4))
    torch.testing.assert_close(scatter_log_softmax(src, index, 0, 13).exp(), out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log", [False, True])
def test_softmax_gradcheck(backend, log):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(9, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    fn = scatter_log_softmax if log else scatter_softmax
    idx0 = torch.tensor([0, 3, 3, 1, 0, 3, 1, 1, 0])  # groups 2 and 4 empty
    idx1 = torch.tensor([1, 1])  # softmax along dim 1, one group
    with use(backend):
        assert torch.autograd.gradcheck(lambda s: fn(s, idx0, 0, 5), (src,))
        assert torch.autograd.gradgradcheck(lambda s: fn(s, idx0, 0, 5), (src,))
        assert torch.autograd.gradcheck(lambda s: fn(s, idx1, 1, 2), (src,))


def test_softmax_errors():
    with pytest.raises(ShapeError, match="floating"):
        scatter_softmax(torch.tensor([1, 2, 3]), torch.tensor([0, 0, 1]))
    with pytest.raises(DataError, match="non-finite"):
        scatter_softmax(torch.tensor([1.0, float("nan")]), torch.tensor([0, 0]), check=True)
    with pytest.raises(ShapeError):
        scatter_softmax(torch.randn(3), torch.tensor([0, 1]))
    assert scatter_softmax(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)).shape == (0, 2)
