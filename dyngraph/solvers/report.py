"""Convergence reports shared by every solver, and the policy for failing loudly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dyngraph.errors import ConvergenceError, NotContractingError

__all__ = ["SolverReport", "finish"]


@dataclass
class SolverReport:
    """What a solver did.

    Attributes:
        solver: name of the method (``"picard"``, ``"anderson"``, ``"gmres"``, ...).
        converged: whether the stopping criterion was met.
        iterations: number of iterations performed (for fixed-point solvers: map evaluations
            after the first one; for Krylov solvers: matrix-vector products).
        residual: final residual. For fixed-point solvers this is ‖f(z) − z‖₂ evaluated at the
            returned point, the quantity the stopping rule uses — never the step size, which
            understates the error by about 1/(1 − ρ). For linear solves it is
            ‖B + γAH − H‖₂ (the same quantity for the map H ↦ γAH + B).
        tol: the absolute threshold the residual had to reach.
        residual_history: residual after each iteration (first entry: at the initial point).
        rate: estimated contraction factor (geometric mean of recent residual ratios), or
            ``nan`` when not estimable.
        message: human-readable outcome.
        not_contracting: the failure is evidence that the map does not contract.
        backward: for implicit layers, the report of the last adjoint (backward) solve.
    """

    solver: str
    converged: bool = False
    iterations: int = 0
    residual: float = math.inf
    tol: float = 0.0
    residual_history: list[float] = field(default_factory=list)
    rate: float = math.nan
    message: str = ""
    not_contracting: bool = False
    backward: SolverReport | None = None  # set by implicit solvers after the adjoint solve

    def __str__(self) -> str:  # compact one-liner for logs
        state = "converged" if self.converged else "NOT converged"
        return (
            f"{self.solver}: {state} after {self.iterations} iterations, "
            f"residual {self.residual:.3e} (tol {self.tol:.1e}), rate {self.rate:.4f}"
        )


def estimate_rate(history: list[float], window: int = 10) -> float:
    """Geometric mean of the last ``window`` residual ratios (the observed contraction factor)."""
    h = [r for r in history if r > 0 and math.isfinite(r)]
    if len(h) < 2:
        return math.nan
    w = min(window, len(h) - 1)
    return (h[-1] / h[-1 - w]) ** (1.0 / w)


def finish(report: SolverReport, raise_on_failure: bool) -> SolverReport:
    """Fill ``rate``/``message`` and raise the typed error when the solve failed and the caller
    did not ask for the report instead."""
    report.rate = estimate_rate(report.residual_history)
    if report.converged:
        report.message = str(report)
        return report
    if not report.message:
        report.message = (
            f"{report.solver} did not reach residual {report.tol:.1e} within "
            f"{report.iterations} iterations (residual {report.residual:.3e}, observed "
            f"contraction factor {report.rate:.4f}). Increase max_iter, loosen tol, try "
            "solver='anderson' or a direct solve, or make the map more contracting."
        )
    if raise_on_failure:
        cls = NotContractingError if report.not_contracting else ConvergenceError
        raise cls(report.message, report=report)
    return report
