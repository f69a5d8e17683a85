"""dyngraph: learning on graphs that change over time, and learned graph solvers, for PyG."""

from __future__ import annotations

from dyngraph.errors import (
    BackendError,
    ChecksumError,
    ConfigError,
    ConvergenceError,
    DataError,
    DyngraphError,
    NotContractingError,
    ShapeError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DyngraphError",
    "DataError",
    "ChecksumError",
    "ShapeError",
    "ConfigError",
    "BackendError",
    "ConvergenceError",
    "NotContractingError",
]
