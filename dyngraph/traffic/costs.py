"""BPR link costs and the Beckmann objective, as pure numpy functions.

``t(v) = t0 * (1 + B * (v / c) ** P)`` (Bureau of Public Roads). All functions broadcast:
``flow`` may carry leading scenario axes ``(..., E)`` and so may the parameters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BPR", "bpr_time", "bpr_derivative", "beckmann", "total_travel_time"]


def _pow(r: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """``r ** p`` by repeated multiplication when ``p`` is one small integer (np.power is slow)."""
    if np.ndim(p) == 0 and float(p) == int(p) and 0 <= int(p) <= 8:
        k = int(p)
        if k == 0:
            return np.ones_like(r)
        out = r.copy()
        for _ in range(k - 1):
            out *= r
        return out
    return np.power(r, p)


def bpr_time(flow, free_flow_time, capacity, b, power) -> np.ndarray:
    """Link travel time ``t0 * (1 + b * (v/c)**p)``."""
    return free_flow_time * (1.0 + b * _pow(flow / capacity, power))


def bpr_derivative(flow, free_flow_time, capacity, b, power) -> np.ndarray:
    """``dt/dv = t0 * b * p * v**(p-1) / c**p`` (0 where ``p == 0``)."""
    r = flow / capacity
    pm1 = power - 1.0 if np.ndim(power) == 0 else np.maximum(power - 1.0, 0.0)
    return free_flow_time * b * power * _pow(r, pm1) / capacity


def beckmann(flow, free_flow_time, capacity, b, power) -> np.ndarray:
    """Beckmann objective ``sum_a int_0^{v_a} t_a(s) ds`` over the last axis."""
    r = flow / capacity
    integral = free_flow_time * (flow + b * capacity * _pow(r, power + 1.0) / (power + 1.0))
    return integral.sum(axis=-1)


def total_travel_time(flow, time) -> np.ndarray:
    """``sum_a v_a t_a`` over the last axis (vehicle-time units of the network)."""
    return np.einsum("...e,...e->...", flow, time)


class BPR:
    """BPR cost of a fixed set of links; precomputes what each iteration needs.

    ``capacity`` may be ``(E,)`` or ``(S, E)`` (one row per scenario). The power is
    specialised to repeated multiplication when it is one small integer for every link, which
    is the case for almost all TNTP networks (P = 4).
    """

    def __init__(self, free_flow_time, capacity, b, power) -> None:
        self.t0 = np.asarray(free_flow_time, dtype=np.float64)
        self.cap = np.asarray(capacity, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        p = np.asarray(power, dtype=np.float64)
        uniform = p.size > 0 and bool(np.all(p == p.flat[0]))
        self.power: np.ndarray | float = float(p.flat[0]) if uniform else p
        pw = self.power
        #: the common integer power when every link shares one (enables exact polynomial steps)
        self.int_power: int | None = (
            int(pw) if np.ndim(pw) == 0 and float(pw) == int(pw) and 1 <= int(pw) <= 8 else None
        )
        # t(v) = t0 + coef * v**p with coef = t0 b / c**p; saves a division per evaluation.
        self.coef = self.t0 * self.b / _pow(self.cap, self.power)

    def time(self, v: np.ndarray) -> np.ndarray:
        """Link travel times :math:`t(v) = t_0 (1 + b (v/c)^P)` for flows ``v`` ``[..., E]``."""
        return self.t0 + self.coef * _pow(v, self.power)

    def derivative(self, v: np.ndarray) -> np.ndarray:
        """Derivatives :math:`t'(v) = t_0 b P v^{P-1} / c^P` for flows ``v`` ``[..., E]``."""
        p = self.power
        if np.ndim(p) == 0:
            if p == 0:
                return np.zeros_like(v)
            return (self.coef * p) * _pow(v, p - 1.0)
        return self.coef * p * np.power(v, np.maximum(p - 1.0, 0.0))

    def time_and_derivative(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(time(v), derivative(v))`` sharing one power evaluation."""
        p = self.power
        if np.ndim(p) == 0 and p >= 1:
            vp1 = _pow(v, p - 1.0)
            cv = self.coef * vp1
            return self.t0 + cv * v, cv * p
        return self.time(v), self.derivative(v)

    def subset_rows(self, idx: np.ndarray) -> BPR:
        """The same costs restricted to scenarios ``idx`` (no-op when shared by all)."""
        if self.coef.ndim < 2:
            return self
        out = object.__new__(BPR)
        out.t0, out.b, out.power, out.int_power = self.t0, self.b, self.power, self.int_power
        out.cap, out.coef = self.cap[idx], self.coef[idx]
        return out

    def beckmann(self, v: np.ndarray) -> np.ndarray:
        r"""Beckmann objective :math:`\sum_a \int_0^{v_a} t_a(s)\,ds` of flows ``v`` ``[..., E]``
        (sum over the last axis).
        """
        return (self.t0 * v + self.coef * _pow(v, self.power + 1.0) / (self.power + 1.0)).sum(-1)
