"""User-equilibrium traffic assignment: Frank–Wolfe, conjugate FW and bi-conjugate FW.

All three minimise the Beckmann objective ``sum_a int_0^{v_a} t_a(s) ds`` over feasible link
flows; they differ in the search direction:

* FW (LeBlanc et al. 1975): towards the all-or-nothing flow ``y_k``.
* CFW (Mitradjieva & Lindberg 2013): ``s_k = a s_{k-1} + (1-a) y_k`` with ``a`` making
  ``s_k - x_k`` conjugate to the previous direction w.r.t. the Hessian ``diag(t'(x_k))``.
* BFW (same paper): ``s_k = b0 y_k + b1 s_{k-1} + b2 s_{k-2}``, conjugate to the last two.

Every step uses an exact line search (safeguarded Newton on the derivative of Beckmann
along the direction, ``sum_a t_a(x + tau d) d_a = 0``). The stopping rule is the relative
gap ``(sum v t - sum y t) / sum v t`` where ``y`` is the AON flow at the current times.

The engine works on arrays with a leading scenario axis ``(S, E)``: a single solve is
``S = 1``; batched solves share every numpy call across scenarios (see :mod:`.batch`).
Scenarios leave the active set as soon as they meet the gap (and, with ``width``, the next
in line take their place). Every operation is row-wise and in the same order for any number
of rows, so a scenario gets the same iterations and flows, bit for bit, alone or batched.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from math import comb
from typing import Any

import numpy as np

from dyngraph.errors import ConfigError, ConvergenceError, ShapeError
from dyngraph.traffic.costs import BPR
from dyngraph.traffic.network import TrafficNetwork
from dyngraph.traffic.paths import (
    ODPairs,
    RoutingGraph,
    aon_backend,
    check_od_reachable,
    native_poly_root,
    native_row_ops,
)

__all__ = ["ConvergenceReport", "UEResult", "BatchResult", "solve_ue", "solve_ue_batch",
           "METHODS"]

METHODS = ("fw", "cfw", "bfw")
_CONJ_MAX = 0.99999  # a conjugate weight of 1 would repeat the last direction forever
_FULL_STEP = 1.0 - 1e-12


@dataclass
class ConvergenceReport:
    """How a UE solve went: gap after every AON, step sizes, timing."""

    method: str
    converged: bool
    iterations: int
    rgap: float
    target_rgap: float
    wall_time: float
    gap_history: np.ndarray = field(repr=False)
    step_history: np.ndarray = field(repr=False)
    time_history: np.ndarray = field(repr=False)

    def time_to(self, gap: float) -> tuple[int | None, float | None]:
        """(iterations, seconds) at which the gap first fell to ``gap`` (None if never)."""
        hit = np.flatnonzero(self.gap_history <= gap)
        if hit.size == 0:
            return None, None
        k = int(hit[0])
        return k + 1, float(self.time_history[k])

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable ``dict`` (histories as lists of floats)."""
        d = asdict(self)
        for k in ("gap_history", "step_history", "time_history"):
            d[k] = [float(v) for v in getattr(self, k)]
        return d

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)


@dataclass
class UEResult:
    """A user-equilibrium solution."""

    flows: np.ndarray
    times: np.ndarray
    total_travel_time: float
    beckmann: float
    report: ConvergenceReport
    capacity: np.ndarray = field(repr=False)

    @property
    def volume_capacity(self) -> np.ndarray:
        """Volume/capacity ratio per link, ``flows / capacity``."""
        return self.flows / self.capacity

    def __repr__(self) -> str:
        r = self.report
        return (f"UEResult(total_travel_time={self.total_travel_time:.6f}, "
                f"beckmann={self.beckmann:.6f}, method={r.method!r}, rgap={r.rgap:.3g}, "
                f"iterations={r.iterations}, converged={r.converged}, "
                f"wall_time={r.wall_time:.3f}s)")


@dataclass
class BatchResult:
    """UE solutions of many scenarios: arrays with a leading scenario axis."""

    flows: np.ndarray  # (S, E)
    times: np.ndarray  # (S, E)
    total_travel_time: np.ndarray  # (S,)
    beckmann: np.ndarray  # (S,)
    rgap: np.ndarray  # (S,)
    iterations: np.ndarray  # (S,)
    converged: np.ndarray  # (S,) bool
    wall_time: float


# ---------------------------------------------------------------------------- engine
class _Engine:
    """Vectorised FW/CFW/BFW state over the active scenarios."""

    def __init__(self, graph: RoutingGraph, cost: BPR, od: ODPairs, method: str) -> None:
        self.g, self.cost, self.od, self.method = graph, cost, od, method
        # resolved once per solve, not per line search (a backend lookup and a closure)
        self.root = native_poly_root()

    def aon(self, t: np.ndarray, od: ODPairs) -> np.ndarray:
        return self.g.aon(t, od)[0]

    def line_search(self, cost: BPR, x: np.ndarray, d: np.ndarray, g0: np.ndarray,
                    xp: list | None = None, ws: _Workspace | None = None) -> np.ndarray:
        """Exact step in [0, 1] along ``d`` per scenario, given ``g0 = sum t(x) d < 0``
        (``xp``: the powers of ``x`` from :meth:`_Workspace.times`, ``ws`` its scratch)."""
        if cost.int_power is not None:
            return _poly_line_search(cost, x, d, g0, self.root, xp, ws)
        return _newton_line_search(cost, x, d, g0)


class _Workspace:
    """Scratch ``(S, E)`` arrays of the solver loop, allocated once per solve and reused every
    iteration (views of their first ``n`` rows once scenarios have left), plus a pool for the
    arrays that become the conjugate directions ``s1``, ``s2``: those outlive an iteration,
    so they rotate through :meth:`take` / :meth:`give` instead."""

    def __init__(self, s_count: int, e: int, fused=None) -> None:
        self.s_count, self.e = s_count, e
        self._named: dict[str, np.ndarray] = {}
        self.spare: list[np.ndarray] = []
        #: :class:`~dyngraph.traffic.paths.NativeRowOps` or None; used from _FUSED_ROWS rows
        #: on (a numpy call on a few rows costs less than a native call; same bits either way)
        self.fused = fused

    def get(self, name: str, n: int) -> np.ndarray:
        a = self._named.get(name)
        if a is None:
            a = self._named[name] = np.empty((self.s_count, self.e))
        return a[:n]

    def take(self, n: int) -> np.ndarray:
        while self.spare:
            a = self.spare.pop()
            if a.shape == (n, self.e):
                return a
        return np.empty((n, self.e))

    def give(self, a: np.ndarray) -> None:
        if a.ndim == 2 and a.shape[1] == self.e and a.flags.c_contiguous and a.flags.writeable:
            self.spare.append(a)

    def times(self, cost: BPR, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list | None]:
        """``(t(x), t'(x), powers of x)``: the BPR times and derivatives written into scratch
        rows, keeping ``x**k`` (k < P) for the line search, which needs the same products.
        Bit-identical to :meth:`BPR.time_and_derivative` (same products in the same order)."""
        p = cost.int_power
        if p is None or p < 2:
            t, h = cost.time_and_derivative(x)
            return t, h, None
        n = x.shape[0]
        fused = self.fused if n >= _FUSED_ROWS else None
        if fused is not None:
            pw = [self.get(f"x{k}", n) for k in range(2, p)]
            t, h = self.get("t", n), self.get("h", n)
            fused.bpr_times(x, cost.coef, cost.t0, cost.power, [*pw, t, h])
            return t, h, [None, x, *pw]
        xp: list = [None, x]
        for k in range(2, p):
            xp.append(np.multiply(xp[-1], x, out=self.get(f"x{k}", n)))
        cv = np.multiply(cost.coef, xp[p - 1], out=self.get("h", n))  # coef x^(P-1)
        t = np.multiply(cv, x, out=self.get("t", n))
        t += cost.t0  # t0 + coef x^P
        cv *= cost.power  # t' = P coef x^(P-1)
        return t, cv, xp


def _lanes(n: int) -> int:
    """SIMD lanes the native sweep AON spends on ``n`` scenarios (blocks of 2 x 8, a
    remainder of at most 8 in one block of 1, 4 or 8): its cost per call follows these."""
    if n > 8:
        return -(-n // 16) * 16
    return 1 if n <= 1 else 4 if n <= 4 else 8


_AUTO = object()  # "look the native root finder up" (callers in a loop pass it in)
_BINOM = [[float(comb(n, k)) for k in range(n + 1)] for n in range(9)]
_BINOM_ARR = [np.array(row) for row in _BINOM]
#: at most this many rows take the scalar line search (see _poly_line_search)
_SCALAR_ROWS = 4
#: from this many rows on, the element-wise work of an iteration goes to the native fused
#: row operations (one pass instead of 5-10 numpy calls; bit-identical, see NativeRowOps)
_FUSED_ROWS = 8
#: finished rows are dropped from the batch once they are 1 / _DEAD_SHARE of it (see _run)
_DEAD_SHARE = 8


def _poly_line_search(cost: BPR, x: np.ndarray, d: np.ndarray, g0: np.ndarray,
                      root=_AUTO, xp: list | None = None,
                      ws: _Workspace | None = None) -> np.ndarray:
    """Line search when every link has the same integer BPR power ``P``.

    Then ``g(tau) = sum_a d_a t_a(x_a + tau d_a)`` is a degree-``P`` polynomial in ``tau``
    whose coefficients cost one pass over the links; the root is found on ``(S,)`` arrays
    (safeguarded Newton), so the step is exact at the price of O(E) work. ``root``: the
    native root finder from :func:`~dyngraph.traffic.paths.native_poly_root` (looked up when
    not given; ``None`` for the Python ones). ``xp``: ``[None, x, x**2, ..., x**(P-1)]`` when
    the caller has them; ``ws``: scratch rows for the products.
    """
    if root is _AUTO:
        root = native_poly_root()
    p = cost.int_power
    s_count = x.shape[0]
    # coef[k] = C(p, k) sum_a coef_a d_a^(k+1) x_a^(p-k): powers of x from the top down
    if xp is None:
        xp = [None, x]
        for _ in range(p - 2):
            xp.append(xp[-1] * x)
    fused = (ws.fused if ws is not None and s_count >= _FUSED_ROWS and root is not None
             else None)
    if fused is not None:
        # the products in one native pass, numpy's row sums of them, then the polynomial's
        # coefficients, its value at 1 and the root in one native call (same bits)
        cdks = [ws.get(f"cdk{k}", s_count) for k in range(1, p + 1)]
        fused.line_products(cost.coef, d, cdks)
        dots = np.empty((p + 1, s_count))
        dots[0] = g0
        for k in range(1, p):
            _rowdot(cdks[k - 1], xp[p - k], out=dots[k])
        cdks[p - 1].sum(axis=1, out=dots[p])
        return fused.poly_step(dots, _BINOM_ARR[p])
    coef = np.empty((s_count, p + 1))
    coef[:, 0] = g0
    cdk = (cost.coef * d if ws is None
           else np.multiply(cost.coef, d, out=ws.get("cdk", s_count)))
    for k in range(1, p + 1):
        cdk *= d  # its own array: in place
        coef[:, k] = _BINOM[p][k] * (cdk.sum(axis=1) if k == p
                                     else _rowdot(cdk, xp[p - k]))
    g1 = coef.sum(axis=1)
    tau = np.ones(s_count)
    todo = g1 > 0  # otherwise Beckmann still decreases at tau = 1: take the full step
    if not todo.any():
        return tau
    if root is not None:  # every row in C++, bit-identical to _poly_root (S = 1 or a batch)
        tau[todo] = root(coef[todo], g1[todo])
        return tau
    if s_count <= _SCALAR_ROWS:
        # A handful of rows (single solves): numpy's per-call overhead on (S,) arrays would
        # dominate the whole FW iteration, plain floats are ~10x cheaper here.
        for r in np.flatnonzero(todo):
            tau[r] = _poly_root(coef[r].tolist(), float(g1[r]))
        return tau
    c = coef[todo]
    lo, hi = np.zeros(c.shape[0]), np.ones(c.shape[0])
    t = c[:, 0] / (c[:, 0] - g1[todo])  # regula falsi start
    dc = c[:, 1:] * np.arange(1, p + 1)
    done = np.zeros(t.shape, dtype=bool)
    for _ in range(100):
        g = c[:, p].copy()
        for k in range(p - 1, -1, -1):
            g = g * t + c[:, k]
        gp = dc[:, p - 1].copy()
        for k in range(p - 2, -1, -1):
            gp = gp * t + dc[:, k]
        neg = g < 0
        lo = np.where(neg, t, lo)
        hi = np.where(neg, hi, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = g / gp
        nt = t - delta
        # Converged when Newton's correction is at rounding level (or g is exactly 0).
        done |= (np.abs(delta) <= 1e-15) | (g == 0) | (hi - lo <= 1e-15)
        bad = ~((nt > lo) & (nt < hi))
        nt = np.where(bad, 0.5 * (lo + hi), nt)
        t = np.where(done, t, nt)
        if done.all():
            break
    tau[todo] = t
    return tau


def _poly_root(c: list[float], g1: float) -> float:
    """Root in ``(0, 1)`` of ``sum_k c[k] tau^k`` given ``c[0] < 0 < g1`` (its value at 1):
    the scalar twin of the vectorised safeguarded Newton above, same stopping rule."""
    p = len(c) - 1
    dc = [k * c[k] for k in range(1, p + 1)]
    lo, hi = 0.0, 1.0
    t = c[0] / (c[0] - g1)
    for _ in range(100):
        g = c[p]
        for k in range(p - 1, -1, -1):
            g = g * t + c[k]
        gp = dc[p - 1]
        for k in range(p - 2, -1, -1):
            gp = gp * t + dc[k]
        if g < 0:
            lo = t
        else:
            hi = t
        delta = g / gp if gp != 0 else float("inf")
        if abs(delta) <= 1e-15 or g == 0 or hi - lo <= 1e-15:
            return t
        nt = t - delta
        t = nt if lo < nt < hi else 0.5 * (lo + hi)
    return t


def _newton_line_search(cost: BPR, x: np.ndarray, d: np.ndarray, g0: np.ndarray,
                        tol: float = 1e-13, max_iter: int = 60) -> np.ndarray:
    """General line search: safeguarded Newton on ``g(tau)`` over full link arrays."""
    g1 = _rowdot(cost.time(x + d), d)
    tau = np.ones(x.shape[0])
    todo = g1 > 0
    if not todo.any():
        return tau
    idx = np.flatnonzero(todo)
    xs, ds, sub = x[idx], d[idx], cost.subset_rows(idx)
    lo, hi = np.zeros(idx.size), np.ones(idx.size)
    glo, ghi = g0[idx], g1[idx]
    t = glo / (glo - ghi)
    scale = np.abs(glo)
    dd = ds * ds
    for _ in range(max_iter):
        tv, dv = sub.time_and_derivative(xs + t[:, None] * ds)
        g = _rowdot(tv, ds)
        gp = _rowdot(dv, dd)
        neg = g < 0
        lo = np.where(neg, t, lo)
        hi = np.where(neg, hi, t)
        done = (np.abs(g) <= tol * scale) | (hi - lo <= 1e-15)
        with np.errstate(divide="ignore", invalid="ignore"):
            nt = t - g / gp
        bad = ~((nt > lo) & (nt < hi))
        nt = np.where(bad, 0.5 * (lo + hi), nt)
        t = np.where(done, t, nt)
        if done.all():
            break
    tau[idx] = t
    return tau


def _rowdot_einsum(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.einsum("se,se->s", a, b, out=out)


#: ``sum_e a[s, e] b[s, e]`` per row. ``np.vecdot`` (numpy >= 2) is a BLAS dot per row: the
#: same result for a row whatever the batch around it (checked in the tests) and 2-3x faster
#: than ``einsum`` on ``(64, 258)`` arrays.
_rowdot = getattr(np, "vecdot", _rowdot_einsum)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (a degenerate conjugacy condition)."""
    ok = den != 0
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _as_rows(a: np.ndarray | None, s: int, width: int, name: str) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.shape == (width,):
        return np.broadcast_to(a, (s, width))
    if a.shape != (s, width):
        raise ShapeError(f"{name} has shape {a.shape}; expected ({width},) or ({s}, {width})")
    return a


def _run(
    network: TrafficNetwork,
    graph: RoutingGraph,
    capacity: np.ndarray,  # (S, E)
    demand: np.ndarray,  # (Z, Z) or (S, Z, Z)
    method: str,
    rgap: float,
    max_iter: int,
    time_limit: float | None,
    record: bool,
    on_done=None,
    width: int | None = None,
):
    """Shared FW/CFW/BFW loop. Returns per-scenario outputs (and histories if ``record``)."""
    if method not in METHODS:
        raise ConfigError(f"method {method!r} unknown; use one of {METHODS}")
    if not (rgap > 0):
        raise ConfigError(f"rgap must be positive, got {rgap}")
    if max_iter < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter}")
    s_count, e = capacity.shape
    if not np.all(np.isfinite(capacity)) or np.any(capacity <= 0):
        raise ConfigError("capacity must be finite and positive on every link and scenario")
    od = ODPairs(demand)
    if od.values.shape[0] == 1 and s_count > 1:
        od.values = np.broadcast_to(od.values, (s_count, od.values.shape[1]))
    cost = BPR(network.free_flow_time, capacity, network.b, network.power)
    eng = _Engine(graph, cost, od, method)

    out_x = np.zeros((s_count, e))
    out_gap = np.full(s_count, np.inf)
    out_it = np.zeros(s_count, dtype=np.int64)
    out_ok = np.zeros(s_count, dtype=bool)
    gaps, steps, stamps = [], [], []

    aon_backend()  # first call loads (maybe builds) the native library: keep it out of timing
    t_start = time.perf_counter()
    # Iteration 1: AON at free-flow times, with the no-path check (all scenarios at once).
    t_ff = np.broadcast_to(network.free_flow_time, (s_count, e))
    x_ff, od_cost = graph.aon(t_ff, od, need_cost=True)
    check_od_reachable(network, od_cost, od)
    del od_cost
    # Continuous batching: at most `width` scenarios iterate together; a converged one makes
    # room for the next in line, so the rows stay many (numpy calls and SIMD lanes shared)
    # until the queue runs dry, and only the last few stragglers iterate in small batches.
    width = s_count if width is None else max(1, min(int(width), s_count))
    ids = np.arange(width)  # scenario id of each active row
    queue = width  # next scenario to start
    x = x_ff[:width].copy() if width < s_count else x_ff
    it_row = np.ones(width, dtype=np.int64)  # iteration number of each active row
    cur_cost = cost.subset_rows(ids) if width < s_count else cost
    cur_od = od.subset(ids) if width < s_count else od
    s1 = np.zeros_like(x)
    s2 = np.zeros_like(x)
    tau_prev = np.zeros(width)
    phase = np.zeros(width, dtype=np.int64)
    max_phase = {"fw": 0, "cfw": 1, "bfw": 2}[method]
    ws = _Workspace(width, e, native_row_ops())

    # Converged rows leave lazily: compacting the batch (a gather of every (n, E) state array,
    # the capacities and the (n, P) demand) cost about as much as a whole iteration of a full
    # batch, and on EMA 64 scenarios left at ~40 different iterations. A finished row's
    # result is stored at once; the row itself keeps iterating (its own work only: every
    # operation is row-wise, so the other rows get the same bits) until removing the dead
    # rows pays: when they would free a block of the AON kernel's SIMD lanes, make up an
    # eighth of the batch, or make room for the next in line.
    alive = np.ones(width, dtype=bool)
    n_dead = 0

    while True:
        n = x.shape[0]
        t, h, xp = ws.times(cur_cost, x)
        y = eng.aon(t, cur_od)
        tstt = _rowdot(x, t)
        sptt = _rowdot(y, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(tstt > 0, np.abs(tstt - sptt) / tstt, 0.0)
        if record:
            gaps.append(gap[0])
            stamps.append(time.perf_counter() - t_start)
        conv = gap <= rgap
        # rows are in joining order, so the first has the most iterations
        leave = conv | (it_row >= max_iter) if it_row[0] >= max_iter else conv
        # rows still iterating (a view of everything while no row is dead)
        rows = alive if n_dead else slice(None)
        live = ids[rows]
        out_gap[live], out_it[live], out_ok[live] = gap[rows], it_row[rows], conv[rows]
        if n_dead:
            leave = leave & alive
        timed_out = time_limit is not None and time.perf_counter() - t_start > time_limit
        if timed_out:
            out_x[live] = x[rows]  # flows are stored when rows leave the active set
            break
        n_new = 0
        if leave.any():
            out_x[ids[leave]] = x[leave]
            if on_done is not None:
                done = int(np.count_nonzero(conv & leave))
                if done:
                    on_done(done)
            alive &= ~leave
            n_dead += int(np.count_nonzero(leave))
            n_alive = n - n_dead
            n_new = min(n_dead, s_count - queue)
            if n_alive == 0 and n_new == 0:
                break
            if (n_new or n_alive == 0 or n_dead * _DEAD_SHARE >= n
                    or _lanes(n_alive) < _lanes(n)):
                k_idx = np.flatnonzero(alive)
                ids = ids[k_idx]
                x, t, h, y, s1, s2 = (np.take(a, k_idx, axis=0) for a in (x, t, h, y, s1, s2))
                xp = None  # the line search recomputes the powers of the kept rows
                tau_prev, phase = tau_prev[k_idx], phase[k_idx]
                it_row = it_row[k_idx]
                cur_cost = cur_cost.subset_rows(k_idx)
                cur_od = cur_od.subset(k_idx)
                n = x.shape[0]
                alive = np.ones(n, dtype=bool)
                n_dead = 0
                ws.spare.clear()
        if n > 0:
            # --- direction, line search and step of the rows still iterating
            it_row, x, s1, s2, tau_prev, phase = _iterate(
                eng, ws, cur_cost, max_phase, n, x, y, t, h, xp, s1, s2, tau_prev, phase,
                it_row, steps, record)
        if n_new:
            # the next in line join (their iteration 1 is the free-flow AON, as above)
            new = np.arange(queue, queue + n_new)
            queue += n_new
            ids = np.concatenate([ids, new])
            x = np.concatenate([x, x_ff[new]])
            z = np.zeros((n_new, e))
            s1, s2 = np.concatenate([s1, z]), np.concatenate([s2, z])
            tau_prev = np.concatenate([tau_prev, np.zeros(n_new)])
            phase = np.concatenate([phase, np.zeros(n_new, dtype=np.int64)])
            it_row = np.concatenate([it_row, np.ones(n_new, dtype=np.int64)])
            cur_cost = cost.subset_rows(ids)
            cur_od = od.subset(ids)
            alive = np.ones(ids.size, dtype=bool)
            ws.spare.clear()

    wall = time.perf_counter() - t_start
    hist = (np.asarray(gaps), np.asarray(steps), np.asarray(stamps)) if record else None
    return out_x, out_gap, out_it, out_ok, wall, hist


def _iterate(eng, ws, cur_cost, max_phase, n, x, y, t, h, xp, s1, s2, tau_prev, phase, it_row,
             steps, record):
    """One FW / CFW / BFW step of the active rows (direction, exact line search, update)."""
    # --- direction (computed on whole arrays; rows pick their variant by phase): every
    # row's target is s = b0 (y + nu s1 + mu s2), with (b0, nu, mu) = (1, 0, 0) for FW,
    # (1 - a, a / (1 - a), 0) for CFW and the BFW weights, so a batch of mixed phases
    # forms it once. (A term whose weight is 0 on every row is skipped: adding 0 * s
    # changes no bit, and FW rows keep s = y exactly.) The (n, E) arithmetic writes into
    # preallocated scratch rows (`out=`): for batches the temporaries, not the flops, were
    # the cost. A scenario gets the same bits alone or in any batch.
    ph = np.minimum(phase, max_phase)
    is1 = max_phase >= 1 and (ph == 1).any()
    is2 = max_phase >= 2 and (ph == 2).any()
    fused = ws.fused if (is1 or is2) and n >= _FUSED_ROWS else None
    if fused is not None:
        # The same arithmetic in two native passes (bit-identical): the products, numpy's
        # row sums of them, then the weights, s and d.
        yx, sx, hd1, ys1, hd2, s21 = (ws.get(k, n) for k in ("yx", "sx", "hd1", "ys1",
                                                             "hd2", "s21"))
        mode = int(is1) + 2 * int(is2)
        fused.bfw_prep(y, x, s1, s2, h, tau_prev, mode, [yx, sx, hd1, ys1, hd2, s21])
        dots = np.empty((5, n))
        _rowdot(hd1, yx, out=dots[0])
        if is1:
            _rowdot(hd1, ys1, out=dots[1])
        if is2:
            _rowdot(hd2, yx, out=dots[2])
            _rowdot(hd2, s21, out=dots[3])
            _rowdot(hd1, sx, out=dots[4])
        s, d = ws.take(n), ws.get("d", n)
        fused.bfw_step(y, x, s1, s2, dots, tau_prev, phase, max_phase, mode, [s, d])
    else:
        yx = np.subtract(y, x, out=ws.get("yx", n))  # y - x
        s = y
        if is1 or is2:
            sx = np.subtract(s1, x, out=ws.get("sx", n))  # s1 - x
            hd1 = np.multiply(h, sx, out=ws.get("hd1", n))  # h * (s1 - x)
            num1 = _rowdot(hd1, yx)
            c_mu = None
        if is1:
            tmp = np.subtract(y, s1, out=ws.get("tmp", n))  # y - s1
            den = _rowdot(hd1, tmp)
            a = np.clip(_safe_div(num1, den), 0.0, _CONJ_MAX)
            a = np.where(ph == 1, a, 0.0)
            c_b0 = 1.0 - a
            c_nu = a / c_b0
        if is2:
            tp = tau_prev[:, None]
            hd2 = np.multiply(tp, s1, out=ws.get("hd2", n))  # h * (tp s1 - x + (1 - tp) s2)
            hd2 -= x
            tmp = np.multiply(1.0 - tp, s2, out=ws.get("tmp", n))
            hd2 += tmp
            hd2 *= h
            mu = np.maximum(-_safe_div(_rowdot(hd2, yx),
                                       _rowdot(hd2, np.subtract(s2, s1, out=tmp))), 0.0)
            nu = -_safe_div(num1, _rowdot(hd1, sx))
            # tau_prev < 1 on BFW rows (a full step resets to FW); guard the other rows.
            ratio = tau_prev / np.where(ph == 2, 1.0 - tau_prev, 1.0)
            nu = np.maximum(nu + mu * ratio, 0.0)
            b0 = 1.0 / (1.0 + mu + nu)
            r2 = ph == 2
            if not r2.all():  # other phases in the batch: their own weights
                b0 = np.where(r2, b0, c_b0 if is1 else 1.0)
                nu = np.where(r2, nu, c_nu if is1 else 0.0)
                mu = np.where(r2, mu, 0.0)
            c_b0, c_nu, c_mu = b0, nu, mu
        if is1 or is2:
            s = np.multiply(c_nu[:, None], s1, out=ws.take(n))  # b0 (y + nu s1 + mu s2)
            np.add(y, s, out=s)
            if c_mu is not None:
                s += np.multiply(c_mu[:, None], s2, out=ws.get("tmp", n))
            s *= c_b0[:, None]
        d = np.subtract(s, x, out=ws.get("d", n))  # s - x
    g0 = _rowdot(t, d)
    # A conjugate direction that is not a descent direction: fall back to FW there.
    bad = (g0 >= 0) & (ph > 0)
    if bad.any():
        s = np.where(bad[:, None], y, s)
        d = np.where(bad[:, None], yx, d)
        g0 = _rowdot(t, d)
        phase = np.where(bad, 0, phase)
    descent = g0 < 0
    if descent.all():
        tau = eng.line_search(cur_cost, x, d, g0, xp, ws)
    else:
        tau = np.zeros(x.shape[0])
        if descent.any():
            di = np.flatnonzero(descent)
            tau[di] = eng.line_search(cur_cost.subset_rows(di), x[di], d[di], g0[di])
    if record:
        steps.append(tau[0])
    # x + tau d, in place: x is the solver's own array (a copy leaves the active set)
    x += np.multiply(tau[:, None], d, out=ws.get("tmp", n))
    ws.give(s2)  # free again: s2 drops out of the conjugate history
    s2, s1 = s1, s
    tau_prev = tau
    # A full step collapses the conjugate history onto x: restart with FW.
    phase = np.where(tau >= _FULL_STEP, 0, phase + 1)
    return it_row + 1, x, s1, s2, tau_prev, phase


def _check_method_args(network: TrafficNetwork, capacity, demand):
    cap = network.capacity if capacity is None else np.asarray(capacity, dtype=np.float64)
    dem = network.demand if demand is None else np.asarray(demand, dtype=np.float64)
    if dem.shape[-2:] != (network.num_zones, network.num_zones):
        raise ShapeError(f"demand has shape {dem.shape}; expected (..., {network.num_zones}, "
                         f"{network.num_zones})")
    if not np.all(np.isfinite(dem)) or np.any(dem < 0):
        raise ConfigError("demand must be finite and non-negative")
    return cap, dem


def solve_ue(
    network: TrafficNetwork,
    rgap: float = 1e-4,
    method: str = "bfw",
    max_iter: int = 20_000,
    capacity: np.ndarray | None = None,
    demand: np.ndarray | None = None,
    time_limit: float | None = None,
    strict: bool = True,
    graph: RoutingGraph | None = None,
) -> UEResult:
    """Solve static user equilibrium with BPR costs.

    Args:
        network: the road network.
        rgap: target relative gap ``(sum v t - sum y t) / sum v t``.
        method: ``"fw"``, ``"cfw"`` or ``"bfw"`` (bi-conjugate Frank–Wolfe, default).
        max_iter: maximum number of AON assignments (the first, at free flow, counts).
        capacity: ``(E,)`` capacities overriding the network's (e.g. a design).
        demand: ``(Z, Z)`` OD demand overriding the network's.
        time_limit: wall-clock budget in seconds.
        strict: raise :class:`ConvergenceError` (carrying the report) if the gap is not met;
            with ``False`` return the result and let the caller inspect ``report.converged``.
        graph: a prebuilt :class:`RoutingGraph` (saves set-up time in loops).

    Returns:
        :class:`UEResult` with link flows, link times, total travel time ``sum v t``, the
        Beckmann objective and the convergence report.
    """
    cap, dem = _check_method_args(network, capacity, demand)
    if cap.shape != (network.num_links,) or dem.ndim != 2:
        raise ShapeError("solve_ue takes one scenario: capacity (E,), demand (Z, Z); use "
                         "solve_ue_batch for many")
    g = graph or RoutingGraph(network)
    x, gap, it, ok, wall, hist = _run(network, g, cap[None, :], dem, method, rgap, max_iter,
                                      time_limit, record=True)
    gaps, steps, stamps = hist
    report = ConvergenceReport(method=method, converged=bool(ok[0]), iterations=int(it[0]),
                               rgap=float(gap[0]), target_rgap=float(rgap), wall_time=wall,
                               gap_history=gaps, step_history=steps, time_history=stamps)
    cost = BPR(network.free_flow_time, cap, network.b, network.power)
    flows = x[0]
    times = cost.time(flows)
    res = UEResult(flows=flows, times=times, total_travel_time=float(flows @ times),
                   beckmann=float(cost.beckmann(flows)), report=report, capacity=cap)
    if strict and not report.converged:
        raise ConvergenceError(
            f"{method} reached relative gap {report.rgap:.3g} > target {rgap:g} after "
            f"{report.iterations} iterations ({wall:.2f} s); raise max_iter/time_limit or "
            "loosen rgap (pass strict=False to get the partial result)", report=report)
    return res


def solve_ue_batch(
    network: TrafficNetwork,
    capacity: np.ndarray | None = None,
    demand: np.ndarray | None = None,
    rgap: float = 1e-4,
    method: str = "bfw",
    max_iter: int = 20_000,
    time_limit: float | None = None,
    strict: bool = False,
    graph: RoutingGraph | None = None,
    on_done=None,
    width: int | None = None,
) -> BatchResult:
    """Solve many scenarios of one network at once (vectorised across scenarios).

    Args:
        capacity: ``(S, E)`` capacities (or ``(E,)`` shared).
        demand: ``(S, Z, Z)`` demands (or ``(Z, Z)`` shared). At least one of the two must
            carry the scenario axis.
        on_done: called with the number of scenarios that just converged (progress bars).
        strict: raise :class:`ConvergenceError` if any scenario misses the gap.
        width: at most this many scenarios iterate together (default: all). A converged one
            makes room for the next in line, so a long batch keeps its rows full until the
            end instead of finishing with a long tail of stragglers; 64-128 suited the TNTP
            networks (larger blocks fall out of cache). Results do not depend on it: every
            scenario gets the same iterations and flows, bit for bit.

    Returns:
        :class:`BatchResult`; every scenario stops as soon as it meets ``rgap``.
    """
    cap, dem = _check_method_args(network, capacity, demand)
    s_cap = cap.shape[0] if cap.ndim == 2 else None
    s_dem = dem.shape[0] if dem.ndim == 3 else None
    if s_cap is not None and s_dem is not None and s_cap != s_dem:
        raise ShapeError(f"capacity has {s_cap} scenarios but demand has {s_dem}")
    s_count = s_cap or s_dem or 1
    cap2 = _as_rows(cap, s_count, network.num_links, "capacity")
    g = graph or RoutingGraph(network)
    x, gap, it, ok, wall, _ = _run(network, g, np.ascontiguousarray(cap2), dem, method, rgap,
                                   max_iter, time_limit, record=False, on_done=on_done,
                                   width=width)
    cost = BPR(network.free_flow_time, cap2, network.b, network.power)
    times = cost.time(x)
    res = BatchResult(flows=x, times=times, total_travel_time=np.einsum("se,se->s", x, times),
                      beckmann=cost.beckmann(x), rgap=gap, iterations=it, converged=ok,
                      wall_time=wall)
    if strict and not ok.all():
        raise ConvergenceError(
            f"{int((~ok).sum())} of {s_count} scenarios missed rgap {rgap:g} (worst "
            f"{gap.max():.3g}); raise max_iter or loosen rgap", report=res)
    return res
