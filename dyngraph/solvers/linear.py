"""Linear fixed points H = γ·A·H + B on sparse graphs, i.e. (I − γA) H = B.

Direct solves (dense LU for small graphs, sparse LU = SuperLU for larger ones), Krylov solves
(restarted GMRES for any A, CG for symmetric A) vectorised over the columns of B, and the
fixed-point iterations of :mod:`dyngraph.solvers.fixed_point`. :func:`linear_fixed_point` is
differentiable in A's edge weights, B and γ: its backward solves the transposed system.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from dyngraph.errors import ConfigError, ConvergenceError, DataError, ShapeError
from dyngraph.solvers._sparse import SparseMatrix, spmm
from dyngraph.solvers.fixed_point import FIXED_POINT_SOLVERS
from dyngraph.solvers.report import SolverReport, finish

__all__ = [
    "SparseMatrix",
    "spmm",
    "solve_linear",
    "linear_fixed_point",
    "gmres",
    "cg",
    "spectral_radius",
    "LINEAR_METHODS",
]

DENSE_LIMIT = 2048  # up to this many unknowns a dense LU beats SuperLU here
AUTO_DIRECT_LIMIT = 50_000
EIG_DENSE_LIMIT = 512  # spectral_radius: dense eigenvalues up to this size, ARPACK above
LINEAR_METHODS = ("auto", "direct", "dense", "splu", "gmres", "cg", *FIXED_POINT_SOLVERS)


def _as_matrix(b: Tensor, n: int) -> tuple[Tensor, tuple[int, ...]]:
    if b.size(0) != n:
        raise ShapeError(f"B must have n={n} rows (one per node), got shape {tuple(b.shape)}.")
    if not torch.isfinite(b).all():
        raise DataError("B contains NaN or inf; the right-hand side must be finite.")
    return b.reshape(n, -1), tuple(b.shape)


def _residual(A: SparseMatrix, gamma: float, H: Tensor, B: Tensor) -> Tensor:
    return B + gamma * A.matmul(H) - H


def gmres(
    A: SparseMatrix,
    B: Tensor,
    gamma: float = 1.0,
    *,
    x0: Tensor | None = None,
    tol: float = 0.0,
    rtol: float = 1e-10,
    max_iter: int = 1000,
    restart: int = 40,
    raise_on_failure: bool = True,
) -> tuple[Tensor, SolverReport]:
    """Restarted GMRES for (I − γA) X = B, all columns of B at once.

    Stops when every column's residual ‖B_c − (I − γA)X_c‖₂ ≤ tol + rtol·‖B_c‖₂; the report's
    residual is the Frobenius norm over columns, recomputed explicitly at the end.
    ``max_iter`` counts matrix–vector products (one per column block).
    """
    n = A.num_nodes
    X = torch.zeros_like(B) if x0 is None else x0.reshape(B.shape).clone()
    thresh = tol + rtol * B.norm(dim=0)  # [c]
    rep = SolverReport(solver="gmres", tol=float(tol + rtol * B.norm()))

    def op(x: Tensor) -> Tensor:
        return x - gamma * A.matmul(x)

    R = B - op(X)
    while True:
        beta = R.norm(dim=0)
        rep.residual_history.append(float(beta.norm()))
        rep.residual = rep.residual_history[-1]
        if bool((beta <= thresh).all()):
            rep.converged = True
            break
        if rep.iterations >= max_iter:
            break
        c = B.size(1)
        active = beta > thresh
        V = [R / beta.clamp_min(torch.finfo(B.dtype).tiny)]
        Hm = B.new_zeros((c, restart + 1, restart))
        e1 = B.new_zeros((c, restart + 1, 1))
        e1[:, 0, 0] = beta
        y = None
        k = 0
        for j in range(restart):
            w = op(V[j])
            rep.iterations += 1
            for i in range(j + 1):  # modified Gram–Schmidt
                h = (V[i] * w).sum(0)
                Hm[:, i, j] = h
                w = w - V[i] * h
            hn = w.norm(dim=0)
            Hm[:, j + 1, j] = hn
            V.append(w / hn.clamp_min(torch.finfo(B.dtype).tiny))
            k = j + 1
            Hk = Hm[:, : k + 1, :k]
            # Small least-squares problem per column by Householder QR (deterministic, unlike
            # the pivoted LAPACK drivers on rank-deficient blocks); converged columns get y=0.
            Q, R = torch.linalg.qr(Hk)
            y = torch.linalg.solve_triangular(R, Q.mT @ e1[:, : k + 1], upper=True)
            y = torch.where(torch.isfinite(y) & active.view(-1, 1, 1), y, torch.zeros_like(y))
            est = (e1[:, : k + 1] - Hk @ y).squeeze(-1).norm(dim=1)
            if bool((est <= 0.5 * thresh).all()) or rep.iterations >= max_iter:
                break
        assert y is not None
        X = X + torch.einsum("nck,ck->nc", torch.stack(V[:k], 2), y.squeeze(-1))
        R = B - op(X)
        if n == 0:
            rep.converged = True
            break
    rep.residual = float((B - op(X)).norm())
    return X, finish(rep, raise_on_failure)


def cg(
    A: SparseMatrix,
    B: Tensor,
    gamma: float = 1.0,
    *,
    x0: Tensor | None = None,
    tol: float = 0.0,
    rtol: float = 1e-10,
    max_iter: int = 1000,
    raise_on_failure: bool = True,
) -> tuple[Tensor, SolverReport]:
    """Conjugate gradient for (I − γA) X = B with **symmetric** A and ρ(γA) < 1 (so the system
    is symmetric positive definite), all columns at once."""
    X = torch.zeros_like(B) if x0 is None else x0.reshape(B.shape).clone()
    thresh = tol + rtol * B.norm(dim=0)
    rep = SolverReport(solver="cg", tol=float(tol + rtol * B.norm()))
    tiny = torch.finfo(B.dtype).tiny

    def op(x: Tensor) -> Tensor:
        return x - gamma * A.matmul(x)

    R = B - op(X)
    P = R.clone()
    rs = (R * R).sum(0)
    while True:
        rn = rs.sqrt()
        rep.residual_history.append(float(rn.norm()))
        if bool((rn <= thresh).all()):
            rep.converged = True
            break
        if rep.iterations >= max_iter:
            break
        AP = op(P)
        rep.iterations += 1
        pap = (P * AP).sum(0)
        if bool((pap <= 0).any() & (rn > thresh).any()):
            rep.not_contracting = True
            rep.message = (
                "cg: I − γA is not positive definite (pᵀ(I − γA)p ≤ 0); CG needs symmetric A "
                "with spectral radius of γA below 1 — use method='gmres' or 'direct'."
            )
            break
        alpha = rs / pap.clamp_min(tiny)
        X = X + P * alpha
        R = R - AP * alpha
        rs_new = (R * R).sum(0)
        P = R + P * (rs_new / rs.clamp_min(tiny))
        rs = rs_new
    rep.residual = float((B - op(X)).norm())
    return X, finish(rep, raise_on_failure)


def _splu(A: SparseMatrix, gamma: float) -> Any:
    M = (sp.identity(A.num_nodes, format="csc") - gamma * A.to_scipy()).tocsc()
    try:
        return spla.splu(M)
    except RuntimeError as exc:  # singular factor
        raise ConvergenceError(
            f"splu: I − γA is singular ({exc}); the fixed point is not unique. Use γ < 1/ρ(A)."
        ) from exc


class _Factor:
    """LU factorisation of I − γA (dense LAPACK or SuperLU), reusable for Aᵀ systems."""

    def __init__(self, A: SparseMatrix, gamma: float, method: str, dtype: torch.dtype) -> None:
        self.method, self.dtype = method, dtype
        if method == "dense":
            M = torch.eye(A.num_nodes, dtype=dtype) - gamma * A.to_dense().to(dtype)
            self.lu = torch.linalg.lu_factor(M)
        else:
            self.lu = _splu(A, gamma)

    def solve(self, B: Tensor, transpose: bool = False) -> Tensor:
        if self.method == "dense":
            return torch.linalg.lu_solve(*self.lu, B, adjoint=transpose)
        X = self.lu.solve(B.detach().numpy().astype(np.float64), trans="T" if transpose else "N")
        return torch.from_numpy(X).to(self.dtype)


def _resolve(method: str, n: int) -> str:
    if method not in LINEAR_METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {LINEAR_METHODS}.")
    if method == "auto":
        method = "direct" if n <= AUTO_DIRECT_LIMIT else "gmres"
    if method == "direct":
        method = "dense" if n <= DENSE_LIMIT else "splu"
    return method


def solve_linear(
    edge_index: Tensor | SparseMatrix,
    edge_weight: Tensor | None,
    b: Tensor,
    gamma: float = 1.0,
    *,
    num_nodes: int | None = None,
    method: str = "auto",
    tol: float = 0.0,
    rtol: float = 1e-10,
    max_iter: int = 1000,
    x0: Tensor | None = None,
    raise_on_failure: bool = True,
    _factor: _Factor | None = None,
    _transpose: bool = False,
    _factor_out: list | None = None,
    **solver_kwargs: Any,
) -> tuple[Tensor, SolverReport]:
    """Solve H = γ·A·H + B, A[i, j] = edge_weight[e] for each edge e = (j → i).

    Args:
        edge_index: [2, E] (row 0 sources, row 1 targets), or a :class:`SparseMatrix`.
        edge_weight: [E] weights (ignored when ``edge_index`` is a SparseMatrix).
        b: B of shape [n] or [n, *].
        gamma: scalar γ. A unique solution needs I − γA non-singular; iterative methods need
            ρ(γA) < 1 (Picard/Anderson/Broyden) or just non-singularity (GMRES).
        method: ``"dense"`` (LU), ``"splu"`` (SuperLU), ``"direct"`` (dense up to 2048 nodes,
            else splu), ``"gmres"``, ``"cg"`` (symmetric A only), ``"picard"``, ``"anderson"``,
            ``"broyden"``, or ``"auto"`` (direct up to 50k nodes, else GMRES).
        tol, rtol: iterative methods stop when ‖B + γAH − H‖ ≤ tol + rtol‖B‖ (per column
            for the Krylov methods).
        max_iter: budget (matrix–vector products / map evaluations).
        x0: initial guess for iterative methods.
        raise_on_failure: see :func:`dyngraph.solvers.picard`.

    Returns:
        ``(H, report)`` with H of b's shape and the residual ‖B + γAH − H‖₂ in the report.
    """
    A = (
        edge_index
        if isinstance(edge_index, SparseMatrix)
        else SparseMatrix(edge_index, edge_weight, num_nodes)
    )
    n = A.num_nodes
    B, shape = _as_matrix(b, n)
    if A.dtype != B.dtype:
        A = SparseMatrix(A.edge_index, A.edge_weight.to(B.dtype), n)
    gamma = float(gamma)
    if not math.isfinite(gamma):
        raise ConfigError(f"gamma must be finite, got {gamma}.")
    method = _resolve(method, n)
    if not bool(B.any()):  # B = 0 ⇒ H = 0 whenever the solution is unique
        rep = SolverReport(solver=method, converged=True, residual=0.0, residual_history=[0.0])
        return torch.zeros(shape, dtype=B.dtype), finish(rep, raise_on_failure)
    if method in ("dense", "splu"):
        factor = _factor if _factor is not None else _Factor(A, gamma, method, B.dtype)
        with torch.no_grad():
            H = factor.solve(B, transpose=_transpose)
        if _transpose:
            A = A.transpose()
        res = float(_residual(A, gamma, H, B).norm())
        rep = SolverReport(solver=method, converged=bool(math.isfinite(res)), iterations=1,
                           residual=res, tol=float(tol + rtol * B.norm()),
                           residual_history=[res])
        if not rep.converged:
            rep.message = f"{method}: the direct solve returned non-finite values (singular?)."
        finish(rep, raise_on_failure)
        if _factor_out is not None:
            _factor_out.append(factor)
        return H.reshape(shape), rep
    common = dict(tol=tol, rtol=rtol, max_iter=max_iter, raise_on_failure=raise_on_failure)
    with torch.no_grad():
        if method == "gmres":
            H, rep = gmres(A, B, gamma, x0=x0, **common, **solver_kwargs)
        elif method == "cg":
            if not A.is_symmetric(atol=1e-12):
                raise ConfigError("method='cg' needs a symmetric A; use 'gmres' or 'direct'.")
            H, rep = cg(A, B, gamma, x0=x0, **common, **solver_kwargs)
        else:
            def f(h: Tensor) -> Tensor:
                return gamma * A.matmul(h) + B

            common["tol"] = tol + rtol * float(B.norm())
            common["rtol"] = 0.0
            z0 = torch.zeros_like(B) if x0 is None else x0.reshape(B.shape).to(B.dtype)
            H, rep = FIXED_POINT_SOLVERS[method](f, z0, **common, **solver_kwargs)
    return H.reshape(shape), rep


class _LinearFixedPoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, edge_weight, b, gamma, edge_index, num_nodes, cfg, out_report):
        A = SparseMatrix(edge_index, edge_weight.detach(), num_nodes)
        factors: list = []
        H, rep = solve_linear(A, None, b.detach(), float(gamma), _factor_out=factors, **cfg)
        out_report.append(rep)
        ctx.factor = factors[0] if factors else None  # direct solves: reuse LU for Aᵀ
        ctx.save_for_backward(edge_weight, H, gamma)
        ctx.edge_index, ctx.num_nodes, ctx.cfg = edge_index, num_nodes, cfg
        return H

    @staticmethod
    def backward(ctx, grad_h):
        edge_weight, H, gamma = ctx.saved_tensors
        ei, n = ctx.edge_index, ctx.num_nodes
        g = float(gamma)
        # Adjoint: (I − γA)ᵀ G = ∂L/∂H  ⇔  G = γ Aᵀ G + ∂L/∂H  (same solver, transposed graph).
        if ctx.factor is not None:
            A = SparseMatrix(ei, edge_weight.detach(), n)
            G, _ = solve_linear(A, None, grad_h.contiguous(), g, _factor=ctx.factor,
                                _transpose=True, **ctx.cfg)
        else:
            AT = SparseMatrix(ei.flip(0), edge_weight.detach(), n)
            G, _ = solve_linear(AT, None, grad_h.contiguous(), g, **ctx.cfg)
        Gm, Hm = G.reshape(n, -1), H.reshape(n, -1)
        grad_w = grad_gamma = None
        if ctx.needs_input_grad[0]:
            # ∂L/∂A_ij = γ G_i · H_j for the edge e = (j → i)
            grad_w = g * (Gm.index_select(0, ei[1]) * Hm.index_select(0, ei[0])).sum(1)
        if ctx.needs_input_grad[2]:
            AH = SparseMatrix(ei, edge_weight.detach(), n).matmul(Hm)
            grad_gamma = (Gm * AH).sum().reshape(gamma.shape)
        return grad_w, G if ctx.needs_input_grad[1] else None, grad_gamma, None, None, None, None


def linear_fixed_point(
    edge_index: Tensor,
    edge_weight: Tensor,
    b: Tensor,
    gamma: float | Tensor = 1.0,
    *,
    num_nodes: int | None = None,
    return_report: bool = False,
    **solve_kwargs: Any,
) -> Tensor | tuple[Tensor, SolverReport]:
    """Differentiable H* solving H = γ·A·H + B (see :func:`solve_linear` for the arguments).

    Gradients by the implicit function theorem, without storing any iteration: with
    G = (I − γA)⁻ᵀ ∂L/∂H*,  ∂L/∂B = G,  ∂L/∂A_ij = γ G_i·H*_j (only on edges),
    ∂L/∂γ = Σ G ∘ (A H*). The backward solve uses the forward's method and tolerances.
    """
    n = SparseMatrix(edge_index, edge_weight, num_nodes).num_nodes
    if not isinstance(gamma, Tensor):
        gamma = torch.tensor(float(gamma), dtype=b.dtype)
    if gamma.numel() != 1:
        raise ShapeError(f"gamma must be a scalar, got shape {tuple(gamma.shape)}.")
    reports: list[SolverReport] = []
    H = _LinearFixedPoint.apply(edge_weight, b, gamma, edge_index, n, solve_kwargs, reports)
    return (H, reports[0]) if return_report else H


def spectral_radius(
    edge_index: Tensor | SparseMatrix,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    *,
    tol: float = 1e-8,
    max_iter: int = 2000,
) -> float:
    """Perron–Frobenius eigenvalue λ_pf(|A|) (= spectral radius of the non-negative |A|).

    Dense eigenvalues up to ``EIG_DENSE_LIMIT`` (512) nodes, ARPACK (``scipy...eigs``) above.
    If ARPACK
    does not converge, falls back to the Collatz–Wielandt upper bound max_i (|A|x)_i / x_i of
    a shifted power iteration on |A| + I (the shift makes λ_pf + 1 the unique dominant
    eigenvalue, so periodic graphs do not oscillate) — an upper bound, the safe side for
    well-posedness conditions.
    """
    A = (
        edge_index
        if isinstance(edge_index, SparseMatrix)
        else SparseMatrix(edge_index, edge_weight, num_nodes)
    )
    n = A.num_nodes
    if n == 0 or A.edge_weight.numel() == 0:
        return 0.0
    absA = SparseMatrix(A.edge_index, A.edge_weight.abs().double(), n)
    if n <= EIG_DENSE_LIMIT:
        return float(np.abs(np.linalg.eigvals(absA.to_dense().numpy())).max())
    try:
        vals = spla.eigs(absA.to_scipy(), k=1, which="LM", tol=tol, maxiter=max_iter,
                         return_eigenvectors=False)
        return float(np.abs(vals).max())
    except spla.ArpackNoConvergence:
        pass
    x = torch.ones(n, dtype=torch.float64)
    upper = math.inf
    with torch.no_grad():
        for _ in range(max_iter):
            y = absA.matmul(x) + x
            ratio = y / x
            upper = min(upper, float(ratio.max()) - 1.0)
            if upper - max(float(ratio.min()) - 1.0, 0.0) <= tol * max(upper, 1.0):
                break
            x = (y / y.max()).clamp_min(1e-300)
    return max(upper, 0.0)
