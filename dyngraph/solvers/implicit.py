"""Implicit differentiation of fixed points: gradients without back-propagating iterations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dyngraph.solvers.fixed_point import fixed_point_solve
from dyngraph.solvers.report import SolverReport

__all__ = ["implicit_fixed_point"]


def implicit_fixed_point(
    f: Callable[[Tensor], Tensor],
    z0: Tensor,
    *,
    solver: str = "anderson",
    tol: float = 1e-6,
    rtol: float = 0.0,
    max_iter: int = 500,
    backward_solver: str | None = None,
    backward_tol: float | None = None,
    backward_rtol: float | None = None,
    backward_max_iter: int | None = None,
    solver_kwargs: dict[str, Any] | None = None,
    raise_on_failure: bool = True,
    return_report: bool = False,
) -> Tensor | tuple[Tensor, SolverReport]:
    """z* = f(z*), differentiable through the implicit function theorem.

    Forward: solve z = f(z) without building a graph. The output is f(z*) evaluated once more
    with autograd on (its residual is ≤ ρ·‖f(z*) − z*‖), so gradients reach every tensor f
    closes over (parameters, inputs). Backward: the incoming gradient v = ∂L/∂z* is replaced by
    the solution of the adjoint fixed point

        g = (∂f/∂z)ᵀ|_{z*} g + v,

    solved with the same fixed-point solvers using vector–Jacobian products of one extra
    application of f; then g flows through f's parameters: ∂L/∂θ = gᵀ ∂f/∂θ. Memory is that of
    two applications of f, independent of the number of iterations.

    Args:
        f: deterministic map z ↦ f(z) (no dropout inside f), contracting near z*.
        z0: initial point; gradients never flow into it (z* does not depend on it).
        solver: ``"picard"``, ``"anderson"`` or ``"broyden"``.
        tol, rtol, max_iter: forward stopping rule (see :func:`dyngraph.solvers.picard`).
        backward_*: the adjoint solve's solver and stopping rule; default: the forward's,
            with the tolerance relative to ‖v‖ (``backward_rtol`` defaults to ``rtol``, or to
            ``tol`` when ``rtol`` is 0).
        solver_kwargs: extra arguments for both solvers (e.g. ``m`` for Anderson).
        raise_on_failure: raise :class:`~dyngraph.errors.ConvergenceError` when a solve
            (forward or adjoint) misses its tolerance.
        return_report: also return the forward :class:`SolverReport`; its ``backward`` field
            is filled in by each backward pass.

    Returns:
        z* (shape of z0), or ``(z*, report)``.
    """
    kw = dict(solver_kwargs or {})
    with torch.no_grad():
        z_star, report = fixed_point_solve(
            f, z0.detach(), solver, tol=tol, rtol=rtol, max_iter=max_iter,
            raise_on_failure=raise_on_failure, **kw,
        )
    if not torch.is_grad_enabled():
        return (z_star, report) if return_report else z_star
    z_star = z_star.detach()
    out = f(z_star)
    if not out.requires_grad:  # nothing upstream needs a gradient
        return (out, report) if return_report else out

    z_in = z_star.clone().requires_grad_()
    f_in = f(z_in)  # separate graph used only for vector–Jacobian products in the hook
    b_solver = backward_solver or solver
    b_tol = 0.0 if backward_tol is None else backward_tol
    if backward_rtol is None:
        backward_rtol = rtol if rtol > 0 else tol
    b_rtol = backward_rtol
    b_iter = backward_max_iter or max_iter

    def adjoint(v: Tensor | None) -> Tensor | None:
        if v is None:  # undefined gradient (nothing depends on z*)
            return None

        def g_map(g: Tensor) -> Tensor:
            (jtg,) = torch.autograd.grad(f_in, z_in, g, retain_graph=True)
            return jtg + v

        tol_abs = b_tol + b_rtol * float(v.norm())
        if tol_abs == 0.0:  # zero incoming gradient: the adjoint solution is zero
            return torch.zeros_like(v)
        with torch.enable_grad():
            g, rep = fixed_point_solve(
                g_map, v.detach(), b_solver, tol=tol_abs, rtol=0.0, max_iter=b_iter,
                raise_on_failure=raise_on_failure, **kw,
            )
        report.backward = rep
        return g

    out.register_hook(adjoint)
    return (out, report) if return_report else out
