"""implicit_fixed_point: gradcheck, agreement with unrolled back-propagation, flat memory."""

from __future__ import annotations

import pytest
import torch

from dyngraph.errors import ConvergenceError
from dyngraph.solvers import SparseMatrix, implicit_fixed_point


def problem(n: int = 10, d: int = 3, seed: int = 0, scale: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 4 * n), generator=g)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64)
    rows = torch.zeros(n, dtype=torch.float64).index_add(0, ei[1], w)
    A = SparseMatrix(ei, w / rows[ei[1]].clamp_min(1e-12), n)
    W = torch.randn(d, d, generator=g, dtype=torch.float64)
    W = (scale * W / torch.linalg.matrix_norm(W, 2)).requires_grad_()
    x = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    return A, W, x


def make_map(A, W, x):
    return lambda z: torch.tanh(A.matmul(z) @ W.T + x)


@pytest.mark.parametrize("solver", ["picard", "anderson", "broyden"])
def test_gradcheck(solver):
    A, W, x = problem()

    def fn(W, x):
        z0 = torch.zeros_like(x)
        return implicit_fixed_point(make_map(A, W, x), z0, solver=solver, tol=1e-13,
                                    max_iter=2000)

    assert torch.autograd.gradcheck(fn, (W, x))


def test_implicit_gradient_matches_unrolled():
    A, W, x = problem(n=40, d=4, seed=1, scale=0.9)
    c = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    f = make_map(A, W, x)
    z, rep = implicit_fixed_point(f, torch.zeros_like(x), tol=1e-12, return_report=True)
    g_imp = torch.autograd.grad((z * c).sum(), (W, x))
    assert rep.backward is not None and rep.backward.converged
    z = torch.zeros_like(x)
    for _ in range(400):  # back-propagation through the unrolled iteration (0.9⁴⁰⁰ ≈ 5e-19)
        z = f(z)
    g_unr = torch.autograd.grad((z * c).sum(), (W, x))
    for a, b in zip(g_imp, g_unr):
        assert float((a - b).abs().max()) < 1e-6
        assert torch.allclose(a, b, atol=1e-10)


def saved_bytes(fn) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return total, out


def test_memory_flat_in_iteration_count():
    A, W, x = problem(n=50, d=4, seed=3, scale=0.95)
    f = make_map(A, W, x)
    sizes, iters = [], []
    for tol in (1e-2, 1e-6, 1e-12):
        b, (z, rep) = saved_bytes(lambda tol=tol: implicit_fixed_point(
            f, torch.zeros_like(x), solver="picard", tol=tol, max_iter=5000, return_report=True))
        sizes.append(b)
        iters.append(rep.iterations)
    assert iters[0] < iters[1] < iters[2]
    assert len(set(sizes)) == 1  # same autograd memory whatever the number of iterations
    def unroll():
        z = torch.zeros_like(x)
        for _ in range(20):
            z = f(z)
        return z

    unrolled, _ = saved_bytes(unroll)
    assert unrolled > 5 * sizes[0]


def test_no_grad_mode_returns_plain_solution():
    A, W, x = problem()
    with torch.no_grad():
        z = implicit_fixed_point(make_map(A, W, x), torch.zeros_like(x), tol=1e-10)
    assert not z.requires_grad
    f = make_map(A, W, x)
    assert float((f(z) - z).norm()) < 1e-9


def test_backward_failure_raises():
    A, W, x = problem(scale=0.99)
    f = make_map(A, W, x)
    z = implicit_fixed_point(f, torch.zeros_like(x), tol=1e-10, backward_max_iter=2,
                             backward_rtol=1e-14)
    with pytest.raises(ConvergenceError):
        z.sum().backward()
