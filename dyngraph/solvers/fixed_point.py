"""Fixed-point iteration z = f(z): Picard, Anderson (type II) and Broyden (good, limited memory).

All three stop on the residual ‖f(z) − z‖₂ at the point they return, report it, and detect
maps that do not contract (growing, non-finite or stalled residuals) instead of looping.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.solvers.report import SolverReport, finish

__all__ = ["picard", "anderson", "broyden", "fixed_point_solve", "FIXED_POINT_SOLVERS"]

Map = Callable[[Tensor], Tensor]


class _Monitor:
    """Bookkeeping shared by the three iterations: stopping rule and divergence detection."""

    def __init__(
        self,
        name: str,
        tol: float,
        rtol: float,
        max_iter: int,
        patience: int,
        divergence_factor: float,
        stall_means_not_contracting: bool,
    ) -> None:
        if tol < 0 or rtol < 0 or (tol == 0 and rtol == 0):
            raise ConfigError(f"{name}: need tol > 0 or rtol > 0 (got tol={tol}, rtol={rtol}).")
        if max_iter < 1:
            raise ConfigError(f"{name}: max_iter must be >= 1 (got {max_iter}).")
        self.report = SolverReport(solver=name)
        self.tol, self.rtol = float(tol), float(rtol)
        self.max_iter = int(max_iter)
        self.patience = int(patience)
        self.divergence_factor = float(divergence_factor)
        self.stall_nc = stall_means_not_contracting
        self.best = math.inf
        self.best_iter = 0
        self.best_z: Tensor | None = None

    def update(self, z: Tensor, res: float, fnorm: float) -> bool:
        """Record the residual at ``z``; return True when the iteration must stop."""
        r = self.report
        r.iterations += 1
        r.residual_history.append(res)
        r.tol = self.tol + self.rtol * fnorm
        r.residual = res
        if not math.isfinite(res):
            r.not_contracting = True
            r.message = (
                f"{r.solver}: the map produced non-finite values at iteration {r.iterations}; "
                "it is not a contraction from this starting point (or f itself returns NaN/inf). "
                "Check f, reduce its Lipschitz constant (e.g. scale the weights) or damp it."
            )
            return True
        if res < self.best:
            if res < self.best * (1 - 1e-6) or self.best_z is None:
                self.best_iter = r.iterations
            self.best = res
            self.best_z = z
        if res <= r.tol:
            r.converged = True
            return True
        first = r.residual_history[0]
        if r.iterations > 2 and res > self.divergence_factor * max(first, 1e-300):
            r.not_contracting = True
            r.message = (
                f"{r.solver}: the residual grew from {first:.3e} to {res:.3e} in "
                f"{r.iterations} iterations — the map is not contracting. A fixed-point solver "
                "needs ‖∂f/∂z‖ < 1 near the solution; scale the map down or use a linear solve."
            )
            return True
        if r.iterations - self.best_iter >= self.patience:
            r.not_contracting = self.stall_nc
            hint = (
                "the map is not contracting (a contraction always makes progress)"
                if self.stall_nc
                else "the acceleration stagnates; run picard to check the map contracts"
            )
            r.message = (
                f"{r.solver}: no progress for {self.patience} iterations (best residual "
                f"{self.best:.3e}, current {res:.3e}, tol {r.tol:.1e}): {hint}."
            )
            return True
        return r.iterations >= self.max_iter


def _check(f: Map, z0: Tensor, name: str) -> Tensor:
    if not isinstance(z0, Tensor):
        raise ShapeError(f"{name}: z0 must be a torch.Tensor, got {type(z0).__name__}.")
    if not torch.is_floating_point(z0):
        raise ShapeError(f"{name}: z0 must be floating point, got {z0.dtype}.")
    if not torch.isfinite(z0).all():
        raise DataError(f"{name}: the initial point z0 contains NaN or inf; start from zeros.")
    if not callable(f):
        raise ConfigError(f"{name}: f must be callable.")
    return z0


def _apply(f: Map, z: Tensor, name: str) -> Tensor:
    fz = f(z)
    if not isinstance(fz, Tensor) or fz.shape != z.shape:
        got = tuple(fz.shape) if isinstance(fz, Tensor) else type(fz).__name__
        raise ShapeError(
            f"{name}: f must map a tensor of shape {tuple(z.shape)} to the same shape, got {got}."
        )
    return fz


def _result(mon: _Monitor, z: Tensor, raise_on_failure: bool) -> tuple[Tensor, SolverReport]:
    rep = mon.report
    if not rep.converged and mon.best_z is not None and not rep.not_contracting:
        # Return the best point seen, with its residual, rather than the last one.
        z, rep.residual = mon.best_z, mon.best
    finish(rep, raise_on_failure)
    return z, rep


@torch.no_grad()
def picard(
    f: Map,
    z0: Tensor,
    *,
    tol: float = 1e-6,
    rtol: float = 0.0,
    max_iter: int = 1000,
    damping: float = 1.0,
    patience: int = 50,
    divergence_factor: float = 1e6,
    raise_on_failure: bool = True,
) -> tuple[Tensor, SolverReport]:
    """Damped Picard iteration z ← (1 − β) z + β f(z).

    Args:
        f: the map; takes and returns tensors of ``z0``'s shape.
        z0: initial point.
        tol, rtol: stop when ‖f(z) − z‖₂ ≤ tol + rtol·‖f(z)‖₂.
        max_iter: budget of map evaluations.
        damping: β ∈ (0, 1]; β < 1 helps maps whose Jacobian has eigenvalues near −1.
        patience: iterations without a new best residual before the map is declared
            non-contracting (a contraction always makes progress).
        divergence_factor: residual growth over the first residual that counts as divergence.
        raise_on_failure: raise :class:`~dyngraph.errors.ConvergenceError` (or
            :class:`~dyngraph.errors.NotContractingError`) when the tolerance is not met;
            ``False`` returns the best point and a report with ``converged=False``.

    Returns:
        ``(z, report)`` where z is the point at which the reported residual was measured.
    """
    if not 0 < damping <= 1:
        raise ConfigError(f"picard: damping must be in (0, 1], got {damping}.")
    z = _check(f, z0, "picard").clone()
    mon = _Monitor("picard", tol, rtol, max_iter, patience, divergence_factor, True)
    while True:
        fz = _apply(f, z, "picard")
        g = fz - z
        if mon.update(z, float(g.norm()), float(fz.norm())):
            break
        z = z + damping * g
    return _result(mon, z, raise_on_failure)


def _default_lam(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == torch.float64 else 1e-5


@torch.no_grad()
def anderson(
    f: Map,
    z0: Tensor,
    *,
    tol: float = 1e-6,
    rtol: float = 0.0,
    max_iter: int = 500,
    m: int = 5,
    beta: float = 1.0,
    lam: float | None = None,
    patience: int = 50,
    divergence_factor: float = 1e6,
    raise_on_failure: bool = True,
) -> tuple[Tensor, SolverReport]:
    """Anderson acceleration (type II, Walker & Ni 2011) with a scaled regulariser.

    With residuals g_k = f(z_k) − z_k and the last ``m`` differences ΔZ, ΔG,

        α = argmin ‖g_k − ΔG α‖² + λ‖α‖²,   λ = lam · ‖ΔG‖_F² / m_k
        z_{k+1} = z_k + β g_k − (ΔZ + β ΔG) α.

    The regulariser is relative to the size of the residual differences: an absolute λ (e.g.
    torchdeq's 1e-4) dominates ΔGᵀΔG once residuals are small and silently turns Anderson back
    into plain iteration near a tight tolerance.

    Args:
        m: memory (number of past differences).
        beta: mixing parameter.
        lam: relative Tikhonov regulariser; default 1e-10 (float64) / 1e-5 (float32).
        other arguments: as :func:`picard`.
    """
    if m < 1:
        raise ConfigError(f"anderson: memory m must be >= 1, got {m}.")
    z = _check(f, z0, "anderson").clone()
    lam = _default_lam(z.dtype) if lam is None else float(lam)
    shape = z.shape
    mon = _Monitor("anderson", tol, rtol, max_iter, patience, divergence_factor, False)
    dZ: list[Tensor] = []
    dG: list[Tensor] = []
    z_prev = g_prev = None
    while True:
        fz = _apply(f, z, "anderson")
        g = (fz - z).reshape(-1)
        res = float(g.norm())
        if mon.update(z, res, float(fz.norm())):
            break
        if res > 1e2 * mon.best:  # safeguard: restart the history after a bad extrapolation
            dZ.clear()
            dG.clear()
            z_prev = None
        zf = z.reshape(-1)
        if z_prev is not None:
            dZ.append(zf - z_prev)
            dG.append(g - g_prev)
            if len(dZ) > m:
                dZ.pop(0)
                dG.pop(0)
        z_prev, g_prev = zf, g
        step = beta * g
        if dG:
            G = torch.stack(dG, 1)  # [n, k]
            Z = torch.stack(dZ, 1)
            # k matrix–vector products instead of one tall-skinny GEMM: MKL threads its GEMM
            # even at this size, costing ~10 ms per call on a loaded machine (gemv: ~2 µs).
            gram = torch.stack([G.T @ G[:, j] for j in range(G.size(1))], 1)
            reg = lam * torch.diagonal(gram).mean().clamp_min(torch.finfo(g.dtype).tiny)
            gram.diagonal().add_(reg)
            alpha = torch.linalg.solve(gram, G.T @ g)
            step = step - (Z + beta * G) @ alpha
        z = (zf + step).reshape(shape)
    return _result(mon, z, raise_on_failure)


@torch.no_grad()
def broyden(
    f: Map,
    z0: Tensor,
    *,
    tol: float = 1e-6,
    rtol: float = 0.0,
    max_iter: int = 500,
    memory: int = 30,
    patience: int = 50,
    divergence_factor: float = 1e6,
    raise_on_failure: bool = True,
) -> tuple[Tensor, SolverReport]:
    """Limited-memory "good" Broyden method for the root of g(z) = f(z) − z.

    The inverse Jacobian of g is approximated as J⁻¹ ≈ −I + U Vᵀ (starting from −I, i.e. the
    first step is a Picard step), updated by Sherman–Morrison after each step s with residual
    change y:  J⁻¹ ← J⁻¹ + (s − J⁻¹y)(sᵀJ⁻¹) / (sᵀJ⁻¹y). The low-rank factors are dropped
    when ``memory`` updates have accumulated (restart).

    Args:
        memory: number of rank-one updates kept before restarting.
        other arguments: as :func:`picard`.
    """
    if memory < 1:
        raise ConfigError(f"broyden: memory must be >= 1, got {memory}.")
    z = _check(f, z0, "broyden").clone()
    shape = z.shape
    mon = _Monitor("broyden", tol, rtol, max_iter, patience, divergence_factor, False)
    U: list[Tensor] = []
    V: list[Tensor] = []

    def inv_mv(x: Tensor) -> Tensor:  # J⁻¹ x
        out = -x
        for u, v in zip(U, V):
            out = out + u * (v @ x)
        return out

    def inv_vm(x: Tensor) -> Tensor:  # xᵀ J⁻¹
        out = -x
        for u, v in zip(U, V):
            out = out + v * (x @ u)
        return out

    zf = z.reshape(-1)
    fz = _apply(f, z, "broyden")
    g = (fz - z).reshape(-1)
    while True:
        res = float(g.norm())
        if mon.update(zf.reshape(shape), res, float(fz.norm())):
            break
        if res > 1e2 * mon.best:
            U.clear()
            V.clear()
        s = -inv_mv(g)
        z_new = zf + s
        fz = _apply(f, z_new.reshape(shape), "broyden")
        g_new = (fz - z_new.reshape(shape)).reshape(-1)
        y = g_new - g
        hy = inv_mv(y)
        sth = inv_vm(s)
        denom = s @ hy
        if len(U) >= memory:
            U.clear()
            V.clear()
        if torch.isfinite(denom) and abs(float(denom)) > torch.finfo(g.dtype).tiny:
            U.append((s - hy) / denom)
            V.append(sth)
        zf, g = z_new, g_new
    return _result(mon, zf.reshape(shape), raise_on_failure)


FIXED_POINT_SOLVERS: dict[str, Callable[..., tuple[Tensor, SolverReport]]] = {
    "picard": picard,
    "anderson": anderson,
    "broyden": broyden,
}


def fixed_point_solve(
    f: Map, z0: Tensor, solver: str = "anderson", **kwargs
) -> tuple[Tensor, SolverReport]:
    """Dispatch to :func:`picard`, :func:`anderson` or :func:`broyden` by name."""
    try:
        fn = FIXED_POINT_SOLVERS[solver]
    except KeyError:
        raise ConfigError(
            f"unknown fixed-point solver {solver!r}; choose one of {sorted(FIXED_POINT_SOLVERS)}."
        ) from None
    return fn(f, z0, **kwargs)
