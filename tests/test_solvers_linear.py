"""Linear fixed points H = γAH + B against scipy / closed forms; implicit gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_undirected

import dyngraph.solvers.linear as linear_module
from dyngraph.errors import ConfigError, ConvergenceError, DataError, ShapeError
from dyngraph.solvers import (
    SparseMatrix,
    linear_fixed_point,
    picard,
    solve_linear,
    spectral_radius,
)


def random_graph(n: int, e: int, seed: int, directed: bool = True):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    if not directed:
        ei = to_undirected(ei, num_nodes=n)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.05
    return ei, w


def diffusion_system(n: int = 500, seed: int = 0):
    """Leaky heat diffusion (L + diag κ) u = s written as u = A u + b with
    A = (D + κ)⁻¹ W, b = (D + κ)⁻¹ s; returns the scipy matrix of the original system too."""
    ei, w = random_graph(n, 4 * n, seed, directed=False)
    ei, w = ei, torch.ones(ei.size(1), dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    kappa = torch.rand(n, generator=g, dtype=torch.float64) * 0.5 + 0.05
    s = torch.randn(n, 3, generator=g, dtype=torch.float64)
    deg = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    denom = deg + kappa
    W = sp.csr_matrix((w.numpy(), (ei[1].numpy(), ei[0].numpy())), shape=(n, n))
    L = sp.diags(deg.numpy()) - W + sp.diags(kappa.numpy())
    return ei, w / denom[ei[1]], s / denom.unsqueeze(1), L.tocsc(), s


@pytest.mark.parametrize("method", ["dense", "splu", "gmres", "cg", "picard", "anderson",
                                    "broyden", "auto"])
def test_steady_state_matches_spsolve(method):
    ei, a, b, L, s = diffusion_system()
    ref = spla.spsolve(L, s.numpy())
    if method == "cg":  # CG needs the symmetric form v = D^½u, v = D^-½WD^-½ v + D^-½ s
        d = torch.tensor(L.diagonal())
        v, rep = solve_linear(ei, a * (d[ei[1]] / d[ei[0]]).sqrt(), b * d.sqrt().unsqueeze(1),
                              1.0, method="cg", rtol=1e-12, max_iter=20_000)
        assert rep.converged, rep
        assert np.abs((v / d.sqrt().unsqueeze(1)).numpy() - ref).max() < 1e-8
        return
    H, rep = solve_linear(ei, a, b, 1.0, method=method, rtol=1e-12, max_iter=20_000)
    assert rep.converged, rep
    assert np.abs(H.numpy() - ref).max() < 1e-8
    # the reported residual is the true residual of H = AH + B
    true_res = float((b + SparseMatrix(ei, a).matmul(H) - H).norm())
    assert rep.residual == pytest.approx(true_res, rel=1e-6, abs=1e-14)


def test_appnp_iterated_equals_ppnp_closed_form():
    n, alpha = 120, 0.1
    ei, _ = random_graph(n, 360, seed=2, directed=False)
    x = torch.randn(n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ei_n, w_n = gcn_norm(ei, None, n, add_self_loops=True, dtype=torch.float64)
    A_hat = SparseMatrix(ei_n, w_n, n)
    # PPNP closed form Z = α (I − (1 − α) Â)⁻¹ X, with a dense inverse.
    ppnp = alpha * torch.linalg.inv(torch.eye(n, dtype=torch.float64)
                                    - (1 - alpha) * A_hat.to_dense()) @ x
    # APPNP iterated to convergence with our solver ...
    Z, rep = picard(lambda z: (1 - alpha) * A_hat.matmul(z) + alpha * x, x, tol=1e-13,
                    max_iter=5000)
    assert rep.converged
    assert torch.allclose(Z, ppnp, atol=1e-10)
    # ... with the linear solver (H = γÂH + αX) ...
    H, _ = solve_linear(ei_n, w_n, alpha * x, 1 - alpha, method="gmres", rtol=1e-13)
    assert torch.allclose(H, ppnp, atol=1e-10)
    # ... and PyG's own APPNP layer with enough propagation steps agrees.
    K = rep.iterations + 50
    pyg = APPNP(K=K, alpha=alpha)(x, ei)
    assert torch.allclose(pyg, ppnp, atol=1e-9)


@pytest.mark.parametrize("method", ["dense", "splu", "gmres", "anderson"])
def test_linear_fixed_point_gradcheck(method):
    n = 8
    ei, w = random_graph(n, 24, seed=5)
    rows = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    w = (w / rows[ei[1]]).requires_grad_()
    b = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6),
                    requires_grad=True)
    gamma = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)

    def fn(w, b, gamma):
        return linear_fixed_point(ei, w, b, gamma, num_nodes=n, method=method, rtol=1e-13)

    # fast mode (random projections of the Jacobian) keeps the iterative solves cheap
    assert torch.autograd.gradcheck(fn, (w, b, gamma), fast_mode=method != "dense")


def test_linear_fixed_point_gradient_matches_dense_autograd():
    n = 30
    ei, w = random_graph(n, 120, seed=8)
    rows = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    w = (w / rows[ei[1]]).requires_grad_()
    b = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(n, 3, dtype=torch.float64)
    H = linear_fixed_point(ei, w, b, 0.9, method="splu")
    g1 = torch.autograd.grad((H * c).sum(), (w, b))
    dense = torch.zeros(n, n, dtype=torch.float64).index_put((ei[1], ei[0]), w, accumulate=True)
    H2 = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - 0.9 * dense, b)
    g2 = torch.autograd.grad((H2 * c).sum(), (w, b))
    for a, bb in zip(g1, g2):
        assert torch.allclose(a, bb, atol=1e-10)


@pytest.mark.parametrize("dense_limit", [512, 20])  # 20: exercise the ARPACK path
def test_spectral_radius_matches_eigvals(monkeypatch, dense_limit):
    monkeypatch.setattr(linear_module, "EIG_DENSE_LIMIT", dense_limit)
    for directed, seed in ((True, 0), (False, 1)):
        ei, w = random_graph(100, 400, seed=seed, directed=directed)
        A = SparseMatrix(ei, w, 100)
        ref = np.abs(np.linalg.eigvals(A.to_dense().numpy())).max()
        assert spectral_radius(A, tol=1e-10) == pytest.approx(ref, rel=1e-7)
    # bipartite (periodic) graph: plain power iteration would oscillate
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    assert spectral_radius(ei, None, 3) == pytest.approx(2**0.5, rel=1e-8)


def test_linear_errors():
    ei, w = random_graph(10, 30, seed=0)
    with pytest.raises(ShapeError):
        solve_linear(ei, w, torch.zeros(9, dtype=torch.float64))
    with pytest.raises(DataError):
        solve_linear(ei, w, torch.full((10,), float("nan"), dtype=torch.float64))
    with pytest.raises(DataError):
        solve_linear(torch.tensor([[0], [12]]), None, torch.ones(10), num_nodes=10)
    with pytest.raises(ConfigError):
        solve_linear(ei, w, torch.ones(10, dtype=torch.float64), method="qr")
    with pytest.raises(ConfigError, match="symmetric"):
        solve_linear(ei, w, torch.ones(10, dtype=torch.float64), method="cg")
    # a singular system: A = one 2-cycle with weight 1 and γ = 1 — I − A is singular
    ei2 = torch.tensor([[0, 1], [1, 0]])
    w2 = torch.ones(2, dtype=torch.float64)
    with pytest.raises(ConvergenceError):
        solve_linear(ei2, w2, torch.ones(2, dtype=torch.float64), 1.0, method="splu")
    with pytest.raises(ConvergenceError):
        solve_linear(ei2, w2, torch.ones(2, dtype=torch.float64), 1.0, method="picard")
