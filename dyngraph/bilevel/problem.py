"""Discrete road network design problems (the upper level of the bilevel program).

Two variants from Madadi & Correia (2024):

* **lane addition** — one binary decision per candidate link; adding a lane raises the link's
  capacity by ``added_capacity`` (default: base capacity / ``lanes`` with ``lanes = 2``, i.e.
  one more lane on an assumed two-lane road) and costs ``cost`` (default: free-flow time x
  base capacity). The total cost must stay within a budget (default: 25% of the cost of
  adding a lane to every candidate).
* **lane swap** — one decision in ``{-1, 0, +1}`` per candidate two-way pair ``(a, b)``:
  ``+1`` moves a lane from ``b`` to ``a`` (``a`` gains ``added_capacity[a]``, ``b`` loses
  ``added_capacity[b]``), ``-1`` the reverse. No budget.

The objective is the total system travel time ``sum_e v_e t_e(v_e)`` at user equilibrium.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.traffic import RoutingGraph, TrafficNetwork, solve_ue_batch

__all__ = ["NetworkDesignProblem", "PROBLEM_KINDS", "two_way_pairs"]

PROBLEM_KINDS = ("lane-addition", "lane-swap")
#: Penalty per unit of budget violation used by the paper's GA (TTT units per cost unit).
PAPER_PENALTY = 500.0


def two_way_pairs(network: TrafficNetwork) -> np.ndarray:
    """``(P, 2)`` link ids ``(a, b)`` of every two-way street, ``a`` = the link with the
    smaller tail node, sorted by ``a``."""
    key = {(int(i), int(j)): e for e, (i, j) in enumerate(zip(network.init, network.term))}
    out = [(e, key[(j, i)]) for (i, j), e in key.items() if i < j and (j, i) in key]
    return np.asarray(sorted(out), dtype=np.int64).reshape(-1, 2)


def _resolve_link(network: TrafficNetwork, c) -> int:
    """A link given as an int id or as an ``(init, term)`` pair of 1-based TNTP node ids."""
    if isinstance(c, (int, np.integer)):
        if not 0 <= int(c) < network.num_links:
            raise ConfigError(f"candidate link id {int(c)} is not in {network.name} (link ids "
                              f"are 0..{network.num_links - 1})")
        return int(c)
    try:
        i, j = (int(v) for v in c)
    except (TypeError, ValueError):
        raise ConfigError(f"candidate {c!r} must be a link id or an (init, term) pair of TNTP "
                          "node ids") from None
    hit = np.flatnonzero((network.init == i - 1) & (network.term == j - 1))
    if hit.size == 0:
        raise ConfigError(f"candidate link {i}->{j} (TNTP node ids) is not in {network.name}; "
                          "pick links that exist (see network.init/term, 0-based)")
    return int(hit[0])


@dataclass(frozen=True)
class _Arrays:
    links: np.ndarray  # (E_touched,) link ids whose capacity a decision changes
    coef: np.ndarray  # (D, E) capacity change per unit decision


class NetworkDesignProblem:
    """A discrete network design problem on a :class:`~dyngraph.traffic.TrafficNetwork`.

    Args:
        network: the road network (its capacities and demand are the base case).
        kind: ``"lane-addition"`` or ``"lane-swap"``.
        candidates: lane addition — link ids or ``(init, term)`` TNTP node pairs (default:
            every link); lane swap — one link per two-way street (id or ``(init, term)``
            pair; decision ``+1`` moves a lane from its reverse link onto it) (default: a
            random ``swap_fraction`` of the two-way pairs, drawn with ``seed``).
        added_capacity: capacity of one lane, ``(E,)`` per link or a scalar for all
            (default: base capacity / ``lanes``).
        lanes: assumed existing lanes per link for the default ``added_capacity``.
        cost: ``(E,)`` cost of a lane per link (default: free-flow time x base capacity).
        budget: lane addition — a fraction of the total cost of all candidate lanes (when
            ``<= 1`` and ``budget_is_fraction``) or an absolute amount.
        budget_is_fraction: interpret ``budget`` as a fraction (default) or an amount.
        constraint: ``"penalty"`` (fitness = TTT + ``penalty`` x violation, the paper's
            choice) or ``"feasibility-first"`` (every feasible design beats every infeasible
            one; infeasible ones rank by violation).
        penalty: TTT units per cost unit of violation for ``constraint="penalty"``.
        swap_fraction, seed: default lane-swap candidates.
        rgap: relative gap of the exact UE solves used by :meth:`evaluate_exact`.
    """

    def __init__(
        self,
        network: TrafficNetwork,
        kind: str = "lane-addition",
        candidates: Sequence | None = None,
        added_capacity: float | np.ndarray | None = None,
        lanes: int = 2,
        cost: np.ndarray | None = None,
        budget: float = 0.25,
        budget_is_fraction: bool = True,
        constraint: str = "penalty",
        penalty: float = PAPER_PENALTY,
        swap_fraction: float = 0.25,
        seed: int = 0,
        rgap: float = 1e-4,
    ) -> None:
        if kind not in PROBLEM_KINDS:
            raise ConfigError(f"kind {kind!r} unknown; use one of {PROBLEM_KINDS}")
        if constraint not in ("penalty", "feasibility-first"):
            raise ConfigError(f"constraint {constraint!r} unknown; use 'penalty' or "
                              "'feasibility-first'")
        if lanes < 1:
            raise ConfigError(f"lanes must be >= 1, got {lanes}")
        self.network = network
        self.kind = kind
        self.constraint = constraint
        self.penalty = float(penalty)
        self.rgap = float(rgap)
        e = network.num_links
        if added_capacity is None:
            add = network.capacity / lanes
        else:
            add = np.broadcast_to(np.asarray(added_capacity, dtype=np.float64), (e,)).copy()
        if add.shape != (e,) or not np.all(np.isfinite(add)) or np.any(add < 0):
            raise ConfigError(f"added_capacity must be finite, >= 0 and of shape ({e},)")
        self.added_capacity = add
        c = network.free_flow_time * network.capacity if cost is None else np.asarray(
            cost, dtype=np.float64)
        if c.shape != (e,):
            raise ShapeError(f"cost has shape {c.shape}, expected ({e},)")
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ConfigError("cost must be finite and non-negative")
        self.link_cost = c

        if kind == "lane-addition":
            cand = (np.arange(e) if candidates is None
                    else np.asarray([_resolve_link(network, x) for x in candidates], np.int64))
            if cand.size == 0:
                raise ConfigError("no candidate links given")
            if np.unique(cand).size != cand.size:
                raise ConfigError("candidate links repeat; give each link once")
            self.candidates = cand
            coef = np.zeros((cand.size, e))
            coef[np.arange(cand.size), cand] = add[cand]
            self.levels = np.array([0, 1])
            self.design_cost = c[cand]
            total = float(self.design_cost.sum())
            amount = budget * total if budget_is_fraction else float(budget)
            if not np.isfinite(amount) or amount < 0:
                raise ConfigError(f"budget must be finite and >= 0, got {budget}")
            cheapest = float(self.design_cost.min())
            if amount < cheapest:
                raise ConfigError(
                    f"budget {amount:.6g} is below the cheapest candidate lane ({cheapest:.6g}): "
                    "no design other than doing nothing can meet it; raise the budget (e.g. "
                    f"budget={cheapest / total:.3g} as a fraction) or add cheaper candidates")
            self.budget = amount
        else:
            cand = self._swap_pairs(candidates, swap_fraction, seed)
            self.candidates = cand
            coef = np.zeros((cand.shape[0], e))
            r = np.arange(cand.shape[0])
            coef[r, cand[:, 0]] = add[cand[:, 0]]
            coef[r, cand[:, 1]] = -add[cand[:, 1]]
            if np.any(network.capacity[cand[:, 1]] - add[cand[:, 1]] <= 0) or np.any(
                    network.capacity[cand[:, 0]] - add[cand[:, 0]] <= 0):
                raise ConfigError("a lane swap would leave a link with no capacity; lower "
                                  "added_capacity or raise lanes")
            self.levels = np.array([-1, 0, 1])
            self.design_cost = np.zeros(cand.shape[0])
            self.budget = float("inf")
        self._coef = coef

    # ------------------------------------------------------------------ construction
    def _swap_pairs(self, candidates, swap_fraction: float, seed: int) -> np.ndarray:
        net = self.network
        if candidates is None:
            pairs = two_way_pairs(net)
            if pairs.shape[0] == 0:
                raise ConfigError(f"{net.name} has no two-way streets; lane swap needs them")
            if not 0 < swap_fraction <= 1:
                raise ConfigError(f"swap_fraction must be in (0, 1], got {swap_fraction}")
            k = max(1, round(swap_fraction * pairs.shape[0]))
            pick = np.sort(np.random.default_rng(seed).choice(pairs.shape[0], k, replace=False))
            return pairs[pick]
        out = []
        for c in candidates:
            a = _resolve_link(net, c)
            out.append((a, _reverse(net, a)))
        arr = np.asarray(out, dtype=np.int64).reshape(-1, 2)
        if arr.shape[0] == 0:
            raise ConfigError("no candidate pairs given")
        if np.unique(np.sort(arr, axis=1), axis=0).shape[0] != arr.shape[0]:
            raise ConfigError("candidate pairs repeat; give each two-way street once")
        return arr

    # ------------------------------------------------------------------ design algebra
    @property
    def num_vars(self) -> int:
        """Number ``D`` of decision variables (candidate links or two-way pairs)."""
        return int(self._coef.shape[0])

    @property
    def capacity_change(self) -> np.ndarray:
        """``(D, E)`` capacity change per unit of each decision."""
        return self._coef.copy()

    @property
    def num_designs(self) -> int:
        """Number of designs ``len(levels) ** D`` (feasible or not)."""
        return int(self.levels.size ** self.num_vars)

    def check_designs(self, designs) -> np.ndarray:
        """Validate designs: ``(D,)`` or ``(P, D)`` with values in :attr:`levels`."""
        x = np.asarray(designs)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.num_vars:
            raise ShapeError(f"designs have shape {np.shape(designs)}, expected (P, "
                             f"{self.num_vars}) (one column per candidate)")
        if not np.isin(x, self.levels).all():
            raise ConfigError(f"design values must be in {self.levels.tolist()} for {self.kind}")
        return x.astype(np.int64)

    def capacities(self, designs) -> np.ndarray:
        """``(P, E)`` link capacities of designs."""
        x = self.check_designs(designs)
        return self.network.capacity[None] + x @ self._coef

    def cost(self, designs) -> np.ndarray:
        """``(P,)`` construction cost (0 for lane swap)."""
        return self.check_designs(designs) @ self.design_cost if self.kind == "lane-addition" \
            else np.zeros(len(self.check_designs(designs)))

    def violation(self, designs) -> np.ndarray:
        """``(P,)`` budget overrun (0 when feasible)."""
        return np.maximum(self.cost(designs) - self.budget, 0.0)

    def feasible(self, designs) -> np.ndarray:
        """``(P,)`` bool: whether each design stays within the budget.

        Args:
            designs: ``(D,)`` or ``(P, D)`` designs with values in ``levels``.
        """
        return self.violation(designs) <= 1e-9 * max(self.budget, 1.0)

    def fitness(self, ttt: np.ndarray, designs) -> np.ndarray:
        """Objective to minimise: TTT with the budget rule applied."""
        ttt = np.asarray(ttt, dtype=np.float64)
        v = self.violation(designs)
        if self.constraint == "penalty":
            return ttt + self.penalty * v
        # Any infeasible design ranks after every feasible one, by its violation.
        return np.where(v > 0, 1e30 * (1.0 + v / max(self.budget, 1.0)), ttt)

    def total_travel_time(self, flows: np.ndarray, capacity: np.ndarray) -> np.ndarray:
        """``(P,)`` ``sum_e v t(v)`` with the network's BPR parameters; torch or numpy."""
        net = self.network
        ratio = flows / capacity
        t = net.free_flow_time * (1.0 + net.b * ratio ** net.power)
        return (flows * t).sum(-1)

    def all_designs(self, feasible_only: bool = True) -> np.ndarray:
        """Every design (``levels ** num_vars`` of them), optionally only feasible ones."""
        if self.num_designs > 5_000_000:
            raise ConfigError(f"{self.num_designs} designs are too many to enumerate")
        x = np.asarray(list(itertools.product(self.levels.tolist(), repeat=self.num_vars)),
                       dtype=np.int64).reshape(-1, self.num_vars)
        return x[self.feasible(x)] if feasible_only else x

    def random_designs(self, n: int, rng: np.random.Generator,
                       p_nonzero: float | None = None) -> np.ndarray:
        """``n`` random designs; lane addition turns each lane on with ``p_nonzero``
        (default: the budget's share of the total candidate cost, as in the paper)."""
        if self.kind == "lane-addition":
            p = p_nonzero if p_nonzero is not None else min(
                1.0, self.budget / max(float(self.design_cost.sum()), 1e-300))
            return (rng.random((n, self.num_vars)) < p).astype(np.int64)
        return rng.integers(-1, 2, (n, self.num_vars))

    def solve_exact(self, designs, graph: RoutingGraph | None = None, chunk: int = 256,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Exact UE of designs (batched solves at :attr:`rgap`): ``(TTT (P,), flows (P, E))``."""
        x = self.check_designs(designs)
        g = graph or RoutingGraph(self.network)
        ttt = np.empty(len(x))
        flows = np.empty((len(x), self.network.num_links))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(x), desc="exact UE", unit="design")
        try:
            for lo in range(0, len(x), chunk):
                cap = self.capacities(x[lo:lo + chunk])
                res = solve_ue_batch(self.network, capacity=cap, demand=self.network.demand,
                                     rgap=self.rgap, graph=g,
                                     on_done=bar.update if bar is not None else None)
                ttt[lo:lo + chunk] = res.total_travel_time
                flows[lo:lo + chunk] = res.flows
        finally:
            if bar is not None:
                bar.close()
        return ttt, flows

    def evaluate_exact(self, designs, graph: RoutingGraph | None = None, chunk: int = 256,
                       progress: bool = False) -> np.ndarray:
        """Exact UE total travel time ``(P,)`` of designs."""
        return self.solve_exact(designs, graph, chunk, progress)[0]

    def describe(self, design) -> list[str]:
        """Human-readable decisions (TNTP node ids) of one design."""
        x = self.check_designs(design)[0]
        net, out = self.network, []
        for k, v in enumerate(x):
            if v == 0:
                continue
            if self.kind == "lane-addition":
                e = self.candidates[k]
                out.append(f"+lane {net.init[e] + 1}->{net.term[e] + 1}")
            else:
                a, b = self.candidates[k] if v > 0 else self.candidates[k][::-1]
                out.append(f"lane {net.init[b] + 1}->{net.term[b] + 1} moved to "
                           f"{net.init[a] + 1}->{net.term[a] + 1}")
        return out

    def changed_links(self, design) -> np.ndarray:
        """``(E,)`` mask of links whose capacity the design changes."""
        return self.capacities(design)[0] != self.network.capacity

    def __repr__(self) -> str:
        b = "" if self.kind == "lane-swap" else f", budget={self.budget:.6g}"
        return (f"NetworkDesignProblem({self.network.name}, {self.kind}, "
                f"vars={self.num_vars}{b}, constraint={self.constraint!r})")


def _reverse(net: TrafficNetwork, a: int) -> int:
    hit = np.flatnonzero((net.init == net.term[a]) & (net.term == net.init[a]))
    if hit.size == 0:
        raise ConfigError(f"link {net.init[a] + 1}->{net.term[a] + 1} has no reverse link; "
                          "lane swap needs two-way streets")
    return int(hit[0])
