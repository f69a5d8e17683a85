"""Which implementation each aggregation op runs on.

Every public op in :mod:`dyngraph.ops` is looked up here by a key ``(op, reduce)``, e.g.
``("segment", "sum")``. Several *backends* may implement a key:

``torch``
    plain PyTorch (always available; the reference implementation).
``scatter``
    the optional ``torch-scatter`` package (detected lazily, on first use).

The ``auto`` mode walks a per-key preference list (:data:`AUTO_PREFERENCE`) and takes the first
available backend that implements the key. The lists come from ``benchmarks/ops.py`` on the
project's 2-core CPU box (E = 4M, N = 200k, F = 64), not from habit; the numbers that motivated
each entry are recorded next to it.

The mode is read from the environment variable ``DYNGRAPH_OPS_BACKEND`` (``auto`` | ``torch`` |
``scatter`` | any registered backend name) and can be changed at run time with
:func:`set_backend` or the :func:`use_backend` context manager. A forced backend that is not
installed raises :class:`~dyngraph.errors.BackendError` on first use; a forced backend that does
not implement a key (torch-scatter has no fused gather-aggregate, for instance) falls back to
``torch`` for that key only.

A native extension (``kernels/``) slots in later with :func:`register_backend` (``prefer=True``
puts it at the front of every auto list) and :func:`register_impl` for each key it implements.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dyngraph.errors import BackendError, ConfigError

__all__ = [
    "ENV_VAR",
    "AUTO_PREFERENCE",
    "available_backends",
    "backend_for",
    "get_backend",
    "register_backend",
    "register_impl",
    "resolve",
    "selection_table",
    "set_backend",
    "unregister_backend",
    "use_backend",
]

ENV_VAR = "DYNGRAPH_OPS_BACKEND"

Impl = Callable[..., Any]


@dataclass
class _Backend:
    name: str
    probe: Callable[[], str | None]  # returns None when usable, else the reason it is not
    _reason: str | None = field(default=None, init=False)
    _probed: bool = field(default=False, init=False)

    def unavailable_reason(self) -> str | None:
        if not self._probed:
            try:
                self._reason = self.probe()
            except Exception as exc:  # a broken optional install must not break dyngraph
                self._reason = f"{type(exc).__name__}: {exc}"
            self._probed = True
        return self._reason


def _probe_torch_scatter() -> str | None:
    try:
        importlib.import_module("torch_scatter")
    except ImportError as exc:
        return f"torch_scatter is not importable ({exc})"
    return None


_BACKENDS: dict[str, _Backend] = {
    "torch": _Backend("torch", lambda: None),
    "scatter": _Backend("scatter", _probe_torch_scatter),
}

# (op, reduce) -> {backend name: implementation}
_IMPLS: dict[tuple[str, str], dict[str, Impl]] = {}

# Auto-mode preference per key, best first (a key that is missing uses _DEFAULT_ORDER).
# Measured with benchmarks/ops.py and single-thread CPU-time probes at E=4M, N=200k, F=64,
# float32, on the project's 2-core box while it was shared with other jobs (so wall times are
# noisy; single-thread CPU time is the load-robust figure quoted here). torch-scatter's CPU
# kernels are serial scalar loops; the torch paths used here are parallel and vectorised.
# Keys are (op, reduce) or (op, reduce, "grad"); the latter, when present, applies when the
# input requires grad (a backend with a cheap backward can lose the forward-only race).
_DEFAULT_ORDER: tuple[str, ...] = ("torch",)
AUTO_PREFERENCE: dict[tuple[str, ...], tuple[str, ...]] = {
    # scatter_add_ (sorted, parallel) vs torch_scatter.scatter: 538 vs 530 ms CPU, a tie on one
    # thread; torch also scales to 2 threads and bounds-checks itself (torch-scatter needs an
    # extra range pass to be memory-safe).
    ("scatter", "sum"): ("torch", "scatter"),
    ("scatter", "mean"): ("torch", "scatter"),
    # scatter_reduce_(amax) vs torch-scatter: 709 vs 3567 ms CPU (forward).
    ("scatter", "max"): ("torch", "scatter"),
    ("scatter", "min"): ("torch", "scatter"),
    # with grad: sort + segment kernel with recorded winners, one-scatter backward:
    # fwd+bwd 1.43 s vs torch-scatter 1.97 s vs torch autograd 3.89 s (E=1M, 2 threads, wall).
    ("scatter", "max", "grad"): ("torch", "scatter"),
    ("scatter", "min", "grad"): ("torch", "scatter"),
    # spmm_reduce segment kernel vs torch_scatter.segment_csr: 78 vs 202 ms CPU (sum),
    # 80 vs 164 ms (mean); torch.segment_reduce (serial) is slower than both.
    ("segment", "sum"): ("torch", "scatter"),
    ("segment", "mean"): ("torch", "scatter"),
    ("segment", "max"): ("torch", "scatter"),
    ("segment", "min"): ("torch", "scatter"),
    # sort + segment kernel vs torch_scatter.scatter_max: 406 vs 852 ms CPU (F=8).
    ("scatter_arg", "max"): ("torch", "scatter"),
    ("scatter_arg", "min"): ("torch", "scatter"),
}

_mode: str | None = None  # None -> read the environment variable on each resolution


def register_backend(
    name: str, probe: Callable[[], str | None], *, prefer: bool = False
) -> None:
    """Register a backend.

    Args:
        name: the name used in ``DYNGRAPH_OPS_BACKEND`` and :func:`set_backend`.
        probe: called once, lazily; returns ``None`` if the backend is usable, otherwise a
            sentence saying why not (shown in errors and in :func:`available_backends`).
        prefer: put this backend first in every auto preference list (for a native extension
            that was measured faster than the Python backends on the keys it implements).
    """
    _BACKENDS[name] = _Backend(name, probe)
    if prefer:
        global _DEFAULT_ORDER
        _DEFAULT_ORDER = (name, *[b for b in _DEFAULT_ORDER if b != name])
        for key, order in AUTO_PREFERENCE.items():
            AUTO_PREFERENCE[key] = (name, *[b for b in order if b != name])


def unregister_backend(name: str) -> None:
    """Remove a backend and its implementations (e.g. a native build that failed to load)."""
    if name == "torch":
        raise ConfigError("the torch backend cannot be removed")
    global _DEFAULT_ORDER
    _BACKENDS.pop(name, None)
    for impls in _IMPLS.values():
        impls.pop(name, None)
    _DEFAULT_ORDER = tuple(b for b in _DEFAULT_ORDER if b != name) or ("torch",)
    for key, order in AUTO_PREFERENCE.items():
        AUTO_PREFERENCE[key] = tuple(b for b in order if b != name)


def register_impl(op: str, reduce: str, backend: str, fn: Impl) -> None:
    """Register ``fn`` as ``backend``'s implementation of ``(op, reduce)``."""
    if backend not in _BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; call register_backend first")
    _IMPLS.setdefault((op, reduce), {})[backend] = fn


def available_backends() -> dict[str, str | None]:
    """Map every registered backend to ``None`` (usable) or the reason it is not usable."""
    return {name: b.unavailable_reason() for name, b in _BACKENDS.items()}


def get_backend() -> str:
    """The current mode: ``auto`` or a forced backend name."""
    mode = _mode if _mode is not None else os.environ.get(ENV_VAR, "auto").strip().lower()
    return mode or "auto"


def set_backend(name: str | None) -> None:
    """Force a backend (``"torch"``, ``"scatter"``, ...) or ``"auto"``; ``None`` = env var."""
    global _mode
    if name is not None:
        name = name.strip().lower()
        _check_mode_name(name)
    _mode = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager forcing a backend (for tests and benchmarks); restores the previous mode."""
    global _mode
    previous = _mode
    set_backend(name)
    try:
        yield
    finally:
        _mode = previous


def _check_mode_name(name: str) -> None:
    if name != "auto" and name not in _BACKENDS:
        raise ConfigError(
            f"unknown ops backend {name!r}; choose one of auto, {', '.join(_BACKENDS)} "
            f"(set {ENV_VAR} or call dyngraph.ops.backend.set_backend)"
        )


def backend_for(op: str, reduce: str, *, grad: bool = False) -> str:
    """Name of the backend that :func:`resolve` would pick for ``(op, reduce)`` right now."""
    return resolve(op, reduce, grad=grad)[0]


def resolve(op: str, reduce: str, *, grad: bool = False) -> tuple[str, Impl]:
    """Pick the implementation of ``(op, reduce)`` under the current mode.

    ``grad`` says the input requires grad, which selects the ``(op, reduce, "grad")``
    preference list when one exists.
    """
    impls = _IMPLS.get((op, reduce))
    if not impls:
        raise ConfigError(f"no implementation registered for op {op!r} with reduce {reduce!r}")
    mode = get_backend()
    if mode == "auto":
        order = AUTO_PREFERENCE.get((op, reduce, "grad")) if grad else None
        if order is None:
            order = AUTO_PREFERENCE.get((op, reduce), _DEFAULT_ORDER)
        for name in order + ("torch",):
            if name in impls and _BACKENDS[name].unavailable_reason() is None:
                return name, impls[name]
        raise BackendError(f"no usable backend implements {op}({reduce!r})")  # pragma: no cover
    _check_mode_name(mode)
    reason = _BACKENDS[mode].unavailable_reason()
    if reason is not None:
        raise BackendError(
            f"ops backend {mode!r} was forced (via {ENV_VAR} or set_backend) but is unusable: "
            f"{reason}. Install it (e.g. `pip install torch-scatter` for 'scatter') or set "
            f"{ENV_VAR}=auto"
        )
    if mode in impls:
        return mode, impls[mode]
    return "torch", impls["torch"]


def selection_table() -> dict[tuple[str, ...], str]:
    """``{(op, reduce): backend}`` for every registered key under the current mode, plus
    ``(op, reduce, "grad")`` entries where inputs requiring grad select differently."""
    table: dict[tuple[str, ...], str] = {}
    for key in sorted(_IMPLS):
        table[key] = resolve(*key)[0]
        with_grad = resolve(*key, grad=True)[0]
        if with_grad != table[key]:
            table[(*key, "grad")] = with_grad
    return table
