"""Typed errors. Every message says what was wrong and how to fix it."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DyngraphError",
    "DataError",
    "ChecksumError",
    "ShapeError",
    "ConvergenceError",
    "NotContractingError",
    "BackendError",
    "ConfigError",
]


class DyngraphError(Exception):
    """Base class of every error dyngraph raises on purpose."""


class DataError(DyngraphError, ValueError):
    """Input data is malformed: unsorted times, ids out of range, NaNs, truncated rows, ..."""


class ChecksumError(DataError):
    """A data file does not match its published checksum."""


class ShapeError(DyngraphError, ValueError):
    """Tensor shapes or dtypes do not agree."""


class ConfigError(DyngraphError, ValueError):
    """An argument or combination of arguments is invalid."""


class BackendError(DyngraphError, RuntimeError):
    """A requested compute backend is unavailable."""


class ConvergenceError(DyngraphError, RuntimeError):
    """An iterative solver did not meet its tolerance within its budget.

    ``report`` carries the solver's convergence report (iterations, residuals) so a caller
    can inspect how far it got.
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class NotContractingError(ConvergenceError):
    """A map that must be a contraction is not (its fixed-point iteration diverges)."""
