"""Fixed-point solvers: exactness against references, acceleration, failure detection."""

from __future__ import annotations

import math
import warnings

import networkx as nx
import pytest
import torch

from dyngraph.errors import (
    ConfigError,
    ConvergenceError,
    DataError,
    NotContractingError,
    ShapeError,
)
from dyngraph.solvers import SparseMatrix, anderson, broyden, fixed_point_solve, picard

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
SOLVERS = [picard, anderson, broyden]


def stochastic_graph(n: int, extra: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ring (strongly connected, aperiodic with the chords) + random chords, rows of A summing
    to 1, so ρ(A) = 1 exactly and ρ(γA) = γ."""
    g = torch.Generator().manual_seed(seed)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    chords = torch.randint(0, n, (2, extra), generator=g)
    ei = torch.cat([ring, chords], 1)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.1
    rows = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    return ei, w / rows[ei[1]]


@pytest.fixture(scope="module")
def linear_map():
    n = 400
    ei, w = stochastic_graph(n, 1600, seed=0)
    A = SparseMatrix(ei, w, n)
    b = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gamma = 0.95
    dense = torch.eye(n, dtype=torch.float64) - gamma * A.to_dense()
    exact = torch.linalg.solve(dense, b)
    return (lambda z: gamma * A.matmul(z) + b), exact, gamma


@pytest.mark.parametrize("solver", SOLVERS)
def test_solution_and_reported_residual(linear_map, solver):
    f, exact, gamma = linear_map
    tol = 1e-8
    z, rep = solver(f, torch.zeros_like(exact), tol=tol, max_iter=2000)
    assert rep.converged
    # The report's residual is ‖f(z) − z‖ at the point returned, and it met the tolerance.
    assert rep.residual == pytest.approx(float((f(z) - z).norm()), rel=1e-9)
    assert rep.residual <= tol
    assert rep.residual_history[-1] == rep.residual
    # The residual bounds the true error by 1/(1 − ρ) in the max-row norm of the contraction.
    err_inf = float((z - exact).abs().max())
    res_inf = float((f(z) - z).abs().max())
    assert err_inf <= res_inf / (1 - gamma) * (1 + 1e-6)


def test_anderson_three_times_fewer_iterations_than_picard(linear_map):
    f, exact, _ = linear_map
    z0 = torch.zeros_like(exact)
    _, rp = picard(f, z0, tol=1e-6, max_iter=5000)
    _, ra = anderson(f, z0, tol=1e-6, max_iter=5000)
    assert rp.rate == pytest.approx(0.95, abs=0.02)  # the map really has ρ ≈ 0.95
    assert ra.iterations * 3 <= rp.iterations, (ra.iterations, rp.iterations)


def test_anderson_nonlinear_map_faster_than_picard():
    n = 300
    ei, w = stochastic_graph(n, 900, seed=3)
    A = SparseMatrix(ei, w, n)
    gen = torch.Generator().manual_seed(4)
    b = 0.1 * torch.randn(n, 4, dtype=torch.float64, generator=gen)  # mostly linear regime
    W = 0.95 * torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=gen))[0]

    def f(z):
        return torch.tanh(A.matmul(z) @ W.T + b)

    z0 = torch.zeros(n, 4, dtype=torch.float64)
    zp, rp = picard(f, z0, tol=1e-6, max_iter=5000)
    za, ra = anderson(f, z0, tol=1e-6, max_iter=5000)
    zb, rb = broyden(f, z0, tol=1e-6, max_iter=5000)
    assert ra.iterations * 3 <= rp.iterations
    assert rb.iterations < rp.iterations
    assert torch.allclose(za, zp, atol=1e-4) and torch.allclose(zb, zp, atol=1e-4)


def test_pagerank_matches_networkx():
    G = nx.gnp_random_graph(300, 0.015, directed=True, seed=0)
    n, alpha = G.number_of_nodes(), 0.85
    ref = nx.pagerank(G, alpha=alpha, tol=1e-12, max_iter=10_000)
    src, dst = map(list, zip(*G.edges()))
    ei = torch.tensor([src, dst])
    out_deg = torch.bincount(ei[0], minlength=n).double()
    A = SparseMatrix(ei, 1.0 / out_deg[ei[0]], n)  # A = Pᵀ, P row-stochastic
    dangling = out_deg == 0
    assert dangling.any()  # the test exercises the dangling-node term

    def f(x):  # networkx's PageRank operator; dangling mass spread uniformly
        return alpha * (A.matmul(x) + x[dangling].sum() / n) + (1 - alpha) / n

    for solver in ("picard", "anderson", "broyden"):
        x, rep = fixed_point_solve(f, torch.full((n,), 1.0 / n, dtype=torch.float64), solver,
                                   tol=1e-13, max_iter=5000)
        expected = torch.tensor([ref[i] for i in range(n)], dtype=torch.float64)
        assert rep.converged
        assert float((x - expected).abs().max()) < 1e-8, solver


def test_diverging_map_raises_not_contracting():
    f = lambda z: 1.5 * z + 1  # noqa: E731 - expands by 1.5 per step
    with pytest.raises(NotContractingError, match="not contracting") as info:
        picard(f, torch.zeros(5, dtype=torch.float64), max_iter=10**6)
    rep = info.value.report
    assert rep.iterations < 100 and rep.rate > 1.4 and not rep.converged


@pytest.mark.parametrize("solver", SOLVERS)
def test_norm_preserving_map_stops_early(solver):
    # A rotation plus a translation has no contraction; Picard must stall-detect quickly.
    # z² + 1 has no real fixed point: every solver must give up, not loop.
    th = 0.3
    R = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]],
                     dtype=torch.float64)
    if solver is picard:
        f = lambda z: R @ z + 1.0  # noqa: E731 - iterates rotate around the fixed point forever
        with pytest.raises(NotContractingError) as info:
            solver(f, torch.tensor([5.0, 0.0], dtype=torch.float64), max_iter=10**6)
        assert info.value.report.iterations <= 60
    with pytest.raises(ConvergenceError) as info:
        solver(lambda z: z * z + 1, torch.full((3,), 2.0, dtype=torch.float64), max_iter=10**6)
    assert info.value.report.iterations < 2000


@pytest.mark.parametrize("solver", SOLVERS)
def test_budget_exhausted_raises_or_reports(linear_map, solver):
    f, exact, _ = linear_map
    z0 = torch.zeros_like(exact)
    with pytest.raises(ConvergenceError) as info:
        solver(f, z0, tol=1e-12, max_iter=5)
    assert not isinstance(info.value, NotContractingError)
    assert info.value.report.iterations == 5
    z, rep = solver(f, z0, tol=1e-12, max_iter=5, raise_on_failure=False)
    assert not rep.converged and rep.iterations == 5
    assert rep.residual == pytest.approx(min(rep.residual_history))
    assert rep.residual == pytest.approx(float((f(z) - z).norm()), rel=1e-9)


def test_bad_inputs_are_typed_errors():
    z0 = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ShapeError):
        picard(lambda z: torch.zeros(4, dtype=torch.float64), z0)
    with pytest.raises(DataError):
        anderson(lambda z: z, torch.tensor([float("nan"), 0.0]))
    with pytest.raises(ConfigError):
        picard(lambda z: z, z0, tol=0.0)
    with pytest.raises(ConfigError):
        fixed_point_solve(lambda z: z, z0, "newton")
    with pytest.raises(NotContractingError, match="non-finite"):
        broyden(lambda z: z + float("inf"), z0)
