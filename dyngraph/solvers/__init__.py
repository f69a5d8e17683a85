"""Fixed-point core: Picard, Anderson, Broyden; direct and Krylov solves of H = γAH + B;
implicit differentiation; convergence reports.

Every solver is a pure function returning ``(solution, SolverReport)`` and raises
:class:`~dyngraph.errors.ConvergenceError` (or :class:`~dyngraph.errors.NotContractingError`)
when it misses its tolerance, unless called with ``raise_on_failure=False``.
"""

from __future__ import annotations

from dyngraph.solvers.fixed_point import (
    FIXED_POINT_SOLVERS,
    anderson,
    broyden,
    fixed_point_solve,
    picard,
)
from dyngraph.solvers.implicit import implicit_fixed_point
from dyngraph.solvers.linear import (
    LINEAR_METHODS,
    SparseMatrix,
    cg,
    gmres,
    linear_fixed_point,
    solve_linear,
    spectral_radius,
    spmm,
)
from dyngraph.solvers.report import SolverReport

__all__ = [
    "SolverReport",
    "picard",
    "anderson",
    "broyden",
    "fixed_point_solve",
    "FIXED_POINT_SOLVERS",
    "implicit_fixed_point",
    "SparseMatrix",
    "spmm",
    "solve_linear",
    "linear_fixed_point",
    "gmres",
    "cg",
    "spectral_radius",
    "LINEAR_METHODS",
]
