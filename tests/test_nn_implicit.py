"""CGS and IGNN layers: gradchecks, contraction invariants, agreement with dense references."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn._implicit_utils import expand_heads, project_rows_l1, softmax_with_sink
from dyngraph.nn.implicit import CGS, IGNN
from dyngraph.solvers import SparseMatrix


def graph(n: int, e: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return ei[:, ei[0] != ei[1]], g


@pytest.mark.parametrize("solver", ["direct", "gmres", "anderson"])
def test_cgs_gradcheck(solver):
    torch.manual_seed(0)
    ei, g = graph(7, 20, 0)
    x = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    ea = torch.randn(ei.size(1), 2, dtype=torch.float64, generator=g, requires_grad=True)
    m = CGS(3, 2, 1, edge_dim=2, num_heads=2, solver=solver, rtol=1e-13, mlp_channels=8).double()
    assert torch.autograd.gradcheck(lambda x, ea: m(x, ei, ea), (x, ea))
    # and w.r.t. a parameter of the transition network
    p0 = m.edge_mlp[0].weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: functional_call(m, {"edge_mlp.0.weight": p}, (x.detach(), ei, ea.detach())),
        (p0,), fast_mode=True,
    )


def test_cgs_contraction_and_dense_reference():
    torch.manual_seed(1)
    n, M, d = 40, 3, 2
    ei, g = graph(n, 200, 1)
    x = torch.randn(n, 4, dtype=torch.float64, generator=g) * 5  # large logits on purpose
    m = CGS(4, d, None, num_heads=M, gamma=0.9, solver="gmres", rtol=1e-12).double()
    w = m.transition(x, ei)
    row = torch.zeros(n, M, dtype=torch.float64).index_add(0, ei[1], w)
    assert bool((w >= 0).all()) and bool((row < 1).all())  # ‖γA^m‖∞ ≤ γ < 1
    H = m(x, ei)
    # dense reference, head by head: H^m = (I − γA^m)⁻¹ B^m
    B = m.bias_mlp(x).view(n, M, d)
    for h in range(M):
        Ad = torch.zeros(n, n, dtype=torch.float64).index_put((ei[1], ei[0]), w[:, h],
                                                              accumulate=True)
        ref = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - 0.9 * Ad, B[:, h])
        assert torch.allclose(H[:, h * d:(h + 1) * d], ref, atol=1e-9)
    assert m.last_report.converged


def test_softmax_with_sink_and_expand_heads():
    ei, g = graph(10, 40, 2)
    s = torch.randn(ei.size(1), 2, generator=g, dtype=torch.float64) * 30
    c = torch.randn(10, 2, generator=g, dtype=torch.float64) * 30
    w = softmax_with_sink(s, c, ei[1], 10)
    for i in range(10):
        for h in range(2):
            logits = torch.cat([s[ei[1] == i, h], c[i, h].view(1)])
            ref = torch.softmax(logits, 0)[:-1]
            assert torch.allclose(w[ei[1] == i, h], ref)
    big, bw, N = expand_heads(ei, w, 10)
    A = SparseMatrix(big, bw, N).to_dense()
    for h in range(2):
        blk = A[h * 10:(h + 1) * 10, h * 10:(h + 1) * 10]
        assert torch.allclose(blk, SparseMatrix(ei, w[:, h], 10).to_dense())
    assert float(A.sum()) == pytest.approx(float(w.sum()))  # nothing off the diagonal blocks


def test_project_rows_l1_is_the_euclidean_projection():
    g = torch.Generator().manual_seed(3)
    W = torch.randn(20, 6, generator=g, dtype=torch.float64)
    P = project_rows_l1(W, 1.5)
    assert bool((P.abs().sum(1) <= 1.5 + 1e-12).all())
    # optimality: no random feasible point in the ball is closer to W than P
    for _ in range(200):
        Q = P + 0.05 * torch.randn(20, 6, generator=g, dtype=torch.float64)
        Q = torch.where((Q.abs().sum(1) <= 1.5).view(-1, 1), Q, P)
        assert bool(((W - Q).norm(dim=1) >= (W - P).norm(dim=1) - 1e-12).all())
    inside = W / W.abs().sum(1, keepdim=True)
    assert project_rows_l1(inside, 1.5) is inside


def test_ignn_gradcheck_and_fixed_point():
    torch.manual_seed(2)
    ei, g = graph(9, 25, 4)
    x = torch.randn(9, 3, dtype=torch.float64, generator=g, requires_grad=True)
    m = IGNN(3, 4, activation="tanh", tol=1e-13, rtol=0.0).double()
    assert torch.autograd.gradcheck(lambda x: m(x, ei), (x,))
    W0 = (0.5 * m.weight).detach().clone().requires_grad_()  # strictly inside the ball
    assert torch.autograd.gradcheck(
        lambda W: functional_call(m, {"weight": W}, (x.detach(), ei)), (W0,))


def test_ignn_well_posedness_projection_and_solution():
    torch.manual_seed(3)
    n = 50
    ei, g = graph(n, 200, 5)
    x = torch.randn(n, 5, generator=g)
    m = IGNN(5, 16, kappa=0.9, rtol=1e-7)
    with torch.no_grad():
        m.weight.mul_(10)  # far outside the well-posed set
    H = m(x, ei)
    ei_n, w_n = gcn_norm(ei, None, n, add_self_loops=True)
    A = SparseMatrix(ei_n, w_n, n)
    lam = float(torch.linalg.eigvals(A.to_dense().double()).abs().max())
    assert float(m.weight.abs().sum(1).max()) <= 0.9 / lam + 1e-5
    res = torch.relu(A.matmul(H) @ m.weight.T + m.omega(x)) - H
    assert float(res.norm()) <= 1e-6 * float(H.norm()) * 2
    loss = H.square().mean()
    loss.backward()
    assert m.weight.grad is not None and torch.isfinite(m.weight.grad).all()
    assert m.last_report.backward is not None and m.last_report.backward.converged


def test_layer_errors_and_repr():
    with pytest.raises(ConfigError):
        CGS(3, 2, gamma=1.0)
    with pytest.raises(ConfigError):
        IGNN(3, 2, kappa=1.2)
    m = CGS(3, 2, 1, edge_dim=2)
    with pytest.raises(ShapeError):
        m(torch.randn(4, 3), torch.tensor([[0, 1], [1, 2]]))  # edge_attr missing
    assert "CGS(3, 2, 1" in repr(m) and "IGNN(3, 8" in repr(IGNN(3, 8))
