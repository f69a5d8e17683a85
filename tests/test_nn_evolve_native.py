"""EvolveGCN's fused native kernels (``kernels/evolve.cpp``) against the plain torch path.

The convolution :math:`\\hat A X W` (diagonal + off-diagonal split of the normalised adjacency)
and the matrix GRU step are compared with independent torch computations, forward and
backward, and gradchecked in float64. Skipped when the native extension is unavailable.
"""

from __future__ import annotations

import pytest
import torch

from dyngraph.nn.evolve import (
    EvolveGCN,
    MatGRUCell,
    _convolve,
    _FusedMatGRU,
    _mat_gru_reference,
    summarize,
)
from dyngraph.nn.gcn_norm import GCNAdjacency, gcn_norm, gcn_split
from dyngraph.ops import _native
from dyngraph.ops.backend import use_backend

pytestmark = pytest.mark.skipif(
    not (_native.op_usable("evolve_gcn_conv") and _native.op_usable("evolve_mat_gru")),
    reason="native EvolveGCN kernels unavailable",
)


def _graph(n: int, e: int, gen: torch.Generator, dtype=torch.float64):
    """A sparse graph with isolated nodes, duplicate edges, explicit self loops and weights
    of both signs (a signed rating graph)."""
    ei = torch.randint(0, n, (2, e), generator=gen)
    if e:
        ei[:, : max(1, e // 8)] = ei[0, : max(1, e // 8)]  # some explicit self loops
        ei = torch.cat([ei, ei[:, :2]], 1)  # duplicates add up
    w = torch.rand(ei.size(1), generator=gen, dtype=dtype) * 2 - 0.5
    return ei, w


def _dense(ei, w, n, dtype):
    ei2, w2 = gcn_norm(ei, w, n, dtype=dtype)
    a = torch.zeros(n, n, dtype=dtype)
    a.index_put_((ei2[1], ei2[0]), w2, accumulate=True)  # row = target
    return a


@pytest.mark.parametrize("backend", ["ops", "torch"])
def test_diagonal_split_rebuilds_ahat(backend):
    gen = torch.Generator().manual_seed(0)
    n = 40
    ei, w = _graph(n, 30, gen)
    adj = GCNAdjacency.from_edge_index(ei, w, n, dtype=torch.float64, backend=backend)
    s = adj.split()
    a = torch.diag(s.diag)
    for t, row in enumerate(s.rows.tolist()):
        assert s.slot[row] == t
        for e in range(int(s.ptr[t]), int(s.ptr[t + 1])):
            assert int(s.col[e]) != row  # the diagonal lives in s.diag only
            a[row, s.col[e]] += s.val[e]
    assert int((s.slot >= 0).sum()) == s.rows.numel()
    torch.testing.assert_close(a, _dense(ei, w, n, torch.float64))
    assert adj.split() is s  # cached


def _split_dense(s, n):
    a = torch.diag(s.diag)
    rows = s.rows.repeat_interleave(s.ptr.diff())
    return a.index_put((rows, s.col), s.val, accumulate=True)


@pytest.mark.parametrize("loops", [True, False])
def test_gcn_split_equals_gcn_norm(loops):
    gen = torch.Generator().manual_seed(6)
    n = 35
    ei, w = _graph(n, 40, gen)
    s = gcn_split(ei, w, n, add_self_loops=loops)
    ei2, w2 = gcn_norm(ei, w, n, add_self_loops=loops)
    a = torch.zeros(n, n, dtype=torch.float64).index_put((ei2[1], ei2[0]), w2, accumulate=True)
    torch.testing.assert_close(_split_dense(s, n), a)
    assert bool((s.rows.diff() > 0).all()) and int((s.slot >= 0).sum()) == s.rows.numel()
    # the torch fallback of the split form gives the same product
    x = torch.randn(n, 3, dtype=torch.float64)
    torch.testing.assert_close(_convolve(s, x, torch.eye(3, dtype=torch.float64), False), a @ x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "n,f,o,e",
    [(60, 64, 64, 25), (301, 33, 100, 200), (20, 3, 17, 0), (50, 7, 5, 120), (1, 4, 16, 0)],
)
def test_fused_convolution_matches_dense(dtype, n, f, o, e):
    gen = torch.Generator().manual_seed(n + f)
    ei, w = _graph(n, e, gen, dtype)
    adj = GCNAdjacency.from_edge_index(ei, w, n, dtype=dtype)
    x = torch.randn(n, f, generator=gen, dtype=dtype).requires_grad_()
    wt = torch.randn(f, o, generator=gen, dtype=dtype).requires_grad_()
    g = torch.randn(n, o, generator=gen, dtype=dtype)
    out = _convolve(adj, x, wt, native=True)
    gx, gw = torch.autograd.grad(out, (x, wt), g)
    a = _dense(ei, w, n, dtype)
    ref = a @ x @ wt
    rx, rw = torch.autograd.grad(ref, (x, wt), g)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    torch.testing.assert_close(gx, rx, **tol)
    torch.testing.assert_close(gw, rw, **tol)
    # only the weight needs a gradient (first layer): the x-gradient is skipped
    gw2 = torch.autograd.grad(_convolve(adj, x.detach(), wt, native=True), wt, g)[0]
    torch.testing.assert_close(gw2, rw, **tol)


def test_fused_convolution_gradcheck():
    gen = torch.Generator().manual_seed(3)
    n = 14
    ei, w = _graph(n, 12, gen)
    adj = GCNAdjacency.from_edge_index(ei, w, n, dtype=torch.float64)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(5, 18, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _convolve(adj, a, b, native=True), (x, wt))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows,cols", [(64, 64), (5, 3), (33, 100)])
@pytest.mark.parametrize("tied", [False, True])
def test_fused_mat_gru_matches_torch(dtype, rows, cols, tied):
    gen = torch.Generator().manual_seed(rows * cols)
    x, h = (torch.randn(rows, cols, generator=gen, dtype=dtype) for _ in range(2))
    wx, wh = (torch.randn(3, rows, rows, generator=gen, dtype=dtype) / rows**0.5 for _ in "ab")
    b = torch.randn(3, rows, cols, generator=gen, dtype=dtype)
    params = [t.requires_grad_() for t in (x, h, wx, wh, b)]
    wrt = params[1:] if tied else params
    out = _FusedMatGRU.apply(None if tied else x, h, wx, wh, b)
    g = torch.randn(rows, cols, generator=gen, dtype=dtype)
    got = torch.autograd.grad(out, wrt, g)
    ref = _mat_gru_reference(h if tied else x, h, wx, wh, b)
    want = torch.autograd.grad(ref, wrt, g)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    for a, r in zip(got, want):
        torch.testing.assert_close(a, r, **tol)


@pytest.mark.parametrize("tied", [False, True])
def test_fused_mat_gru_gradcheck(tied):
    gen = torch.Generator().manual_seed(5)
    t = [torch.randn(4, 3, generator=gen, dtype=torch.float64) for _ in range(2)]
    t += [torch.randn(3, 4, 4, generator=gen, dtype=torch.float64) for _ in range(2)]
    t += [torch.randn(3, 4, 3, generator=gen, dtype=torch.float64)]
    t = [a.requires_grad_() for a in t]
    if tied:
        assert torch.autograd.gradcheck(lambda h, *w: _FusedMatGRU.apply(None, h, *w), t[1:])
    else:
        assert torch.autograd.gradcheck(_FusedMatGRU.apply, t)


def test_mat_gru_cell_uses_tied_step_only_for_the_same_tensor():
    # x = h.detach() shares h's storage but carries no gradient: must not be treated as tied
    torch.manual_seed(1)
    cell = MatGRUCell(6, 4).double()
    with torch.no_grad():
        cell.bias.normal_()
    h = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    g_native = torch.autograd.grad(cell(h.detach(), h).sum(), h)[0]
    g_ref = torch.autograd.grad(_mat_gru_reference(h.detach(), h, *cell.parameters()).sum(), h)
    torch.testing.assert_close(g_native, g_ref[0])
    g_tied = torch.autograd.grad(cell(h, h).sum(), h)[0]
    g_ref = torch.autograd.grad(_mat_gru_reference(h, h, *cell.parameters()).sum(), h)[0]
    torch.testing.assert_close(g_tied, g_ref)


def test_summarize_gradient_matches_full_score_graph():
    torch.manual_seed(2)
    x = torch.randn(30, 6, dtype=torch.float64, requires_grad=True)
    p = torch.randn(6, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(30) > 0.3
    got = summarize(x, p, 4, mask)
    # the plain formulation: scores of every node with a graph, then gather
    scores = (x @ p) / p.norm()
    cand = mask.nonzero().view(-1)
    idx = cand[scores[cand].topk(4).indices]
    ref = x[idx] * torch.tanh(scores[idx]).unsqueeze(-1)
    torch.testing.assert_close(got, ref)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(got, (x, p), g), torch.autograd.grad(ref, (x, p), g)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("variant", ["o", "h"])
def test_models_native_and_torch_paths_agree(variant):
    gen = torch.Generator().manual_seed(4)
    n = 80
    graphs = [_graph(n, 30, gen, torch.float32) for _ in range(4)]
    adjs = [GCNAdjacency.from_edge_index(ei, w, n) for ei, w in graphs]
    xs = [torch.randn(n, 16, generator=gen) for _ in graphs]
    masks = [torch.rand(n, generator=gen) > 0.2 for _ in graphs]

    def run():
        torch.manual_seed(0)
        model = EvolveGCN(16, 24, num_layers=2, variant=variant, act=torch.nn.Tanh())
        outs, _ = model.forward_sequence(xs, adjs, node_masks=masks)
        loss = sum(o.pow(2).mean() for o in outs)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        return outs, grads

    def run_raw():  # raw edge_index: normalised on every call (split form when native)
        torch.manual_seed(0)
        model = EvolveGCN(16, 24, num_layers=2, variant=variant, act=torch.nn.Tanh())
        outs, _ = model.forward_sequence(
            xs, [ei for ei, _ in graphs], edge_weights=[w for _, w in graphs], node_masks=masks
        )
        loss = sum(o.pow(2).mean() for o in outs)
        return outs, torch.autograd.grad(loss, list(model.parameters()))

    results = [run(), run_raw()]
    with use_backend("torch"):
        results += [run(), run_raw()]
    want = results[2][0] + list(results[2][1])
    for outs, grads in results:
        for a, b in zip(outs + list(grads), want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
