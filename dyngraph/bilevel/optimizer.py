"""SurrogateOptimizer: the public surrogate-optimisation API for network design.

A genetic algorithm proposes designs, a :class:`~dyngraph.bilevel.Surrogate` scores whole
populations at once, and exact UE solves re-score the best designs at the end
(:meth:`SurrogateOptimizer.recommend`, as in Madadi & Correia 2024). Going beyond the paper,
``refresh`` re-solves the few most promising unsolved designs exactly every few generations,
uses their exact values in the search from then on, and fine-tunes the surrogate on them
(with a replay sample of its training scenarios so it does not forget the rest of the space).

Budgets cap wall time, surrogate evaluations (designs scored), exact UE solves, generations
and generations without improvement; the loop (:meth:`run`) stops at the first one reached.
Each design is scored by a given surrogate once (a cache serves repeats), every generation's
new designs go through one batched surrogate call, and an optional local search
(``local_search``) polishes the GA's best design over its 1- and 2-gene neighbourhoods.
:meth:`ask` / :meth:`tell` expose single generations for callers that evaluate designs
themselves.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from dyngraph.bilevel.data import ScenarioSet
from dyngraph.bilevel.ga import GeneticAlgorithm
from dyngraph.bilevel.problem import NetworkDesignProblem
from dyngraph.bilevel.surrogate import Surrogate
from dyngraph.bilevel.training import TrainConfig, train_surrogate
from dyngraph.errors import ConfigError
from dyngraph.traffic import RoutingGraph

__all__ = ["SearchBudget", "RefreshConfig", "Recommendations", "SurrogateOptimizer"]


@dataclass
class SearchBudget:
    """Limits of a search; ``None`` means unlimited (at least one must be set for
    :meth:`SurrogateOptimizer.run`).

    Args:
        wall_time: seconds.
        surrogate_calls: designs scored by the surrogate.
        exact_calls: exact UE solves (refresh and verification).
        generations: GA generations.
        stall_generations: stop once the best fitness has not improved for this many
            generations (convergence).
    """

    wall_time: float | None = None
    surrogate_calls: int | None = None
    exact_calls: int | None = None
    generations: int | None = None
    stall_generations: int | None = None


@dataclass
class RefreshConfig:
    """Surrogate refresh during the search.

    Args:
        every: refresh after this many generations.
        top_k: designs solved exactly per refresh (the best unsolved by current fitness).
        epochs: fine-tuning passes over (new exact solves + replay); 0 keeps the surrogate
            and only uses the exact values (and the calibration they give).
        lr: fine-tuning learning rate.
        replay: training scenarios mixed in while fine-tuning (``None``: none).
        replay_size: replay scenarios drawn per refresh.
        design_weight: how many times each exactly-solved design is repeated in the
            fine-tuning set (they are the points the search cares about).
    """

    every: int = 10
    top_k: int = 8
    epochs: int = 20
    lr: float = 3e-4
    replay: ScenarioSet | None = None
    replay_size: int = 128
    design_weight: int = 4


@dataclass
class Recommendations:
    """Best designs, best first (by exact fitness when verified, else surrogate)."""

    designs: np.ndarray  # (k, D)
    surrogate_ttt: np.ndarray  # (k,)
    exact_ttt: np.ndarray  # (k,) NaN when not verified
    cost: np.ndarray  # (k,)
    feasible: np.ndarray  # (k,) bool
    descriptions: list[list[str]] = field(repr=False)

    @property
    def best(self) -> np.ndarray:
        """``(D,)`` the top-ranked design."""
        return self.designs[0]

    def __len__(self) -> int:
        return int(self.designs.shape[0])

    def table(self, n: int | None = None) -> str:
        """Plain-text ranking table: surrogate and exact TTT, error %, cost, feasibility, design.

        Args:
            n: rows to show (default: all).
        """
        rows = ["rank  surrogate TTT      exact TTT   error%       cost  feasible  design"]
        for i in range(min(n or len(self), len(self))):
            e = self.exact_ttt[i]
            err = 100 * (self.surrogate_ttt[i] - e) / e if np.isfinite(e) else np.nan
            rows.append(f"{i + 1:>4} {self.surrogate_ttt[i]:>14,.0f} {e:>14,.0f} {err:>8.2f} "
                        f"{self.cost[i]:>10.4g} {bool(self.feasible[i])!s:>9}  "
                        f"{'; '.join(self.descriptions[i]) or 'do nothing'}")
        return "\n".join(rows)


class SurrogateOptimizer:
    """Surrogate-assisted search for the best design of a :class:`NetworkDesignProblem`.

    Args:
        problem: the design problem.
        surrogate: a trained surrogate of the problem's network (checked by fingerprint).
        budget: limits of :meth:`run`.
        refresh: ``None``/``False`` (paper: verify only at the end), ``True`` (defaults) or
            a :class:`RefreshConfig`.
        population, elite_ratio, parents_ratio, mutation_rate: GA settings (paper defaults).
        seed: GA seed.
        graph: a :class:`~dyngraph.traffic.RoutingGraph` reused by every exact solve.
        local_search: after the GA, descend from its best design through its 1- and 2-gene
            neighbourhoods on the surrogate (one batched call per step; :meth:`polish`). The
            GA alone tends to stall one or two genes away from the optimum.
    """

    def __init__(self, problem: NetworkDesignProblem, surrogate: Surrogate,
                 budget: SearchBudget | None = None,
                 refresh: RefreshConfig | bool | None = None, population: int = 128,
                 elite_ratio: float = 0.3, parents_ratio: float = 0.4,
                 mutation_rate: float = 0.05, seed: int = 0,
                 graph: RoutingGraph | None = None, local_search: bool = False) -> None:
        surrogate.check_network(problem.network)
        self.local_search = local_search
        self.problem, self.surrogate = problem, surrogate
        self.budget = budget or SearchBudget(generations=100)
        self.refresh = RefreshConfig() if refresh is True else (refresh or None)
        self.ga = GeneticAlgorithm(problem.num_vars, problem.levels, population=population,
                                   elite_ratio=elite_ratio, parents_ratio=parents_ratio,
                                   mutation_rate=mutation_rate,
                                   init_sampler=problem.random_designs, seed=seed)
        self.graph = graph
        self.surrogate_calls = 0
        self.exact_calls = 0
        self.refreshes = 0
        self._sur: dict[bytes, float] = {}  # surrogate TTT (latest model) per design
        self._exact: dict[bytes, float] = {}  # exact TTT per design
        self._exact_flows: dict[bytes, np.ndarray] = {}
        #: median exact / surrogate TTT over exactly solved designs. Without it a biased
        #: surrogate puts solved and unsolved designs on different scales and the GA chases
        #: whichever side the bias favours.
        self.calibration = 1.0
        self._t0: float | None = None
        self._elapsed = 0.0
        self._stall = 0  # generations without improvement of the best fitness
        #: (seconds, surrogate calls, exact calls, best fitness in the search)
        self.history: list[tuple[float, int, int, float]] = []

    # ------------------------------------------------------------------ evaluation
    def _key(self, row: np.ndarray) -> bytes:
        return np.asarray(row, dtype=np.int64).tobytes()

    def surrogate_ttt(self, designs) -> np.ndarray:
        """Surrogate TTT of designs: designs the current surrogate already scored come from
        a cache, the rest are scored in one batched call (counted)."""
        x = self.problem.check_designs(designs)
        keys = [self._key(r) for r in x]
        ttt = np.array([self._sur.get(k, np.nan) for k in keys])
        new = np.flatnonzero(np.isnan(ttt))
        if new.size:
            ttt[new] = self.surrogate.predict_ttt(self.problem.capacities(x[new]),
                                                  self.problem.network.demand)
            self.surrogate_calls += int(new.size)
            for i in new:
                self._sur[keys[i]] = float(ttt[i])
        return ttt

    def score(self, designs) -> np.ndarray:
        """Fitness used by the search: exact TTT where known, else the surrogate's (times the
        calibration ratio learnt from exact solves), with the problem's budget rule."""
        x = self.problem.check_designs(designs)
        ttt = self.surrogate_ttt(x) * self.calibration
        for i, r in enumerate(x):
            v = self._exact.get(self._key(r))
            if v is not None:
                ttt[i] = v
        return self.problem.fitness(ttt, x)

    def exact_flows(self, design) -> np.ndarray | None:
        """Exact UE flows of a design solved during the search (None if not solved)."""
        return self._exact_flows.get(self._key(np.asarray(design)))

    def solve_exact(self, designs) -> np.ndarray:
        """Exact TTT of designs (cached; new solves are batched and counted)."""
        x = self.problem.check_designs(designs)
        new = [i for i, r in enumerate(x) if self._key(r) not in self._exact]
        if new:
            if self.graph is None:
                self.graph = RoutingGraph(self.problem.network)
            ttt, flows = self.problem.solve_exact(x[new], graph=self.graph)
            self.exact_calls += len(new)
            for i, v, f in zip(new, ttt, flows):
                self._exact[self._key(x[i])] = float(v)
                self._exact_flows[self._key(x[i])] = f
        return np.array([self._exact[self._key(r)] for r in x])

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Designs of the next generation, ``(P, D)``; evaluate them and :meth:`tell`."""
        self._start()
        return self.ga.ask()

    def tell(self, designs, fitness) -> None:
        """Report the fitness (lower is better) of the designs from :meth:`ask`."""
        before = self.ga.best_fitness
        self.ga.tell(np.asarray(designs), np.asarray(fitness, dtype=np.float64))
        self._stall = 0 if self.ga.best_fitness < before else self._stall + 1
        self._tick()

    def step(self) -> float:
        """One generation scored by the surrogate (plus a refresh when due); returns the
        best fitness so far."""
        x = self.ask()
        self.tell(x, self.score(x))
        if self.refresh is not None and self.ga.generation % self.refresh.every == 0:
            self.refresh_now()
        return self.ga.best_fitness

    def _start(self) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def _tick(self) -> None:
        self._elapsed = time.perf_counter() - self._t0
        self.history.append((self._elapsed, self.surrogate_calls, self.exact_calls,
                             self.ga.best_fitness))

    @property
    def elapsed(self) -> float:
        """Seconds since the search started (0 before it starts)."""
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def exhausted(self) -> bool:
        """True when any budget limit is reached."""
        b = self.budget
        return bool((b.wall_time is not None and self.elapsed >= b.wall_time)
                    or (b.surrogate_calls is not None and self.surrogate_calls >= b.surrogate_calls)
                    or (b.exact_calls is not None and self.exact_calls >= b.exact_calls)
                    or (b.generations is not None and self.ga.generation >= b.generations)
                    or (b.stall_generations is not None and self._stall >= b.stall_generations))

    def run(self, progress: bool = False) -> SurrogateOptimizer:
        """Run generations until the budget is exhausted."""
        b = self.budget
        if all(v is None for v in (b.wall_time, b.surrogate_calls, b.exact_calls,
                                   b.generations)):
            raise ConfigError("SearchBudget has no limit; set wall_time, surrogate_calls, "
                              "exact_calls or generations")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=b.generations, desc="GA", unit="gen")
        try:
            while not self.exhausted():
                best = self.step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(best=f"{best:,.0f}", exact=self.exact_calls)
        finally:
            if bar is not None:
                bar.close()
        if self.local_search:
            self.polish()
        return self

    def neighbours(self, design, pairs: bool = True) -> np.ndarray:
        """Designs differing from ``design`` in one gene (and in two when ``pairs`` and the
        pair neighbourhood has at most 4096 designs)."""
        x = self.problem.check_designs(design)[0]
        lv = self.problem.levels
        d = x.size
        out = []
        for i in range(d):
            for v in lv[lv != x[i]]:
                y = x.copy()
                y[i] = v
                out.append(y)
        n_pairs = d * (d - 1) // 2 * (lv.size - 1) ** 2
        if pairs and n_pairs <= 4096:
            for i, j in itertools.combinations(range(d), 2):
                for vi in lv[lv != x[i]]:
                    for vj in lv[lv != x[j]]:
                        y = x.copy()
                        y[i], y[j] = vi, vj
                        out.append(y)
        return np.asarray(out, dtype=np.int64).reshape(-1, d)

    def polish(self, max_steps: int = 10) -> np.ndarray:
        """Steepest descent from the GA's best design over its neighbourhood, each step one
        batched surrogate call (cached designs are free). The best design found is put into
        the population (replacing the worst) and returned."""
        if self.ga.population is None:
            raise ConfigError("nothing searched yet; call run() or ask()/tell() first")
        best, fit = self.ga.population[0].copy(), float(self.ga.fitness[0])
        for _ in range(max_steps):
            nb = self.neighbours(best)
            f = self.score(nb)
            k = int(np.argmin(f))
            if f[k] >= fit:
                break
            best, fit = nb[k], float(f[k])
        if fit < self.ga.fitness[0]:
            pop, fits = self.ga.population.copy(), self.ga.fitness.copy()
            pop[-1], fits[-1] = best, fit
            self.ga.population, self.ga.fitness = pop, fits
            self.ga.update_fitness(fits)
            self.history.append((self.elapsed, self.surrogate_calls, self.exact_calls,
                                 self.ga.best_fitness))
        return best

    # ------------------------------------------------------------------ refresh
    def refresh_now(self) -> int:
        """Solve the best unsolved designs exactly, fine-tune the surrogate on them and
        re-score the population. Returns the number of new exact solves."""
        cfg = self.refresh or RefreshConfig()
        k = cfg.top_k
        if self.budget.exact_calls is not None:
            k = min(k, self.budget.exact_calls - self.exact_calls)
        if k <= 0:
            return 0
        pop = self.ga.population
        feas = self.problem.feasible(pop)
        pick = [r for r, ok in zip(pop, feas) if ok and self._key(r) not in self._exact][:k]
        if not pick:
            return 0
        x = np.asarray(pick)
        self.solve_exact(x)
        if cfg.epochs > 0:
            self._finetune(cfg)
        self._calibrate()
        self.refreshes += 1
        self._stall = 0  # new exact information: give the search time to exploit it
        self.ga.update_fitness(self.score(self.ga.population))
        return len(pick)

    def _calibrate(self) -> None:
        keys = list(self._exact)
        x = np.asarray([np.frombuffer(kk, dtype=np.int64) for kk in keys])
        sur = self.surrogate.predict_ttt(self.problem.capacities(x), self.problem.network.demand)
        exact = np.asarray([self._exact[kk] for kk in keys])
        ok = sur > 0  # a badly off surrogate may predict no traffic at all
        self.calibration = float(np.median(exact[ok] / sur[ok])) if ok.any() else 1.0

    def _finetune(self, cfg: RefreshConfig) -> None:
        keys = list(self._exact_flows)
        x = np.asarray([np.frombuffer(kk, dtype=np.int64) for kk in keys])
        cap = self.problem.capacities(x)
        flows = np.asarray([self._exact_flows[kk] for kk in keys])
        ttt = np.asarray([self._exact[kk] for kk in keys])
        dem = np.broadcast_to(self.problem.network.demand.astype(np.float32),
                              (len(keys), *self.problem.network.demand.shape))
        rep = max(1, cfg.design_weight)
        sets = [ScenarioSet(np.repeat(cap, rep, 0), np.repeat(dem, rep, 0),
                            np.repeat(flows, rep, 0), np.repeat(ttt, rep, 0),
                            self.surrogate.fingerprint)]
        if cfg.replay is not None and len(cfg.replay):
            rng = np.random.default_rng(self.refreshes)
            sets.append(cfg.replay.subset(rng.choice(len(cfg.replay),
                                                     min(cfg.replay_size, len(cfg.replay)),
                                                     replace=False)))
        data = ScenarioSet.concat(sets)
        train_surrogate(self.surrogate, data, None,
                        TrainConfig(epochs=cfg.epochs, batch_size=32, lr=cfg.lr,
                                    seed=self.refreshes),
                        progress=False, set_stats=False)
        self._sur.clear()  # the model changed: old surrogate values are stale

    # ------------------------------------------------------------------ results
    def recommend(self, top_k: int = 20, verify: bool = True) -> Recommendations:
        """The ``top_k`` best distinct designs seen, re-scored exactly when ``verify``.

        Candidates are the ``top_k`` best designs by the current surrogate (designs seen
        before the last fine-tuning are re-scored in one batched call so old and new surrogate
        values are comparable)
        plus the ``top_k`` best designs already solved exactly during the search (free).
        With ``verify`` the unsolved ones are solved (batched, cached, counted, not limited
        by the search budget) and everything is ranked by exact fitness, feasible designs
        (within the budget) before infeasible ones whatever the constraint rule.
        """
        if self.ga.population is None:
            raise ConfigError("nothing searched yet; call run() or ask()/tell() first")
        pool = {self._key(r): r for r in self.ga.population}
        for kk in (*self._exact, *self._sur):
            pool.setdefault(kk, np.frombuffer(kk, dtype=np.int64))
        x = np.asarray(list(pool.values()), dtype=np.int64)
        # the cache holds the current surrogate's values (it is cleared by fine-tuning)
        sur = np.array([self._sur.get(self._key(r), np.nan) for r in x])
        miss = np.flatnonzero(np.isnan(sur))
        if miss.size:
            sur[miss] = self.surrogate.predict_ttt(self.problem.capacities(x[miss]),
                                                   self.problem.network.demand)
        known = np.array([self._exact.get(self._key(r), np.nan) for r in x])
        by_sur = np.argsort(self.problem.fitness(sur, x), kind="stable")[:top_k]
        solved = np.flatnonzero(np.isfinite(known))
        solved = solved[np.argsort(self.problem.fitness(known[solved], x[solved]),
                                   kind="stable")[:top_k]]
        pick = np.unique(np.concatenate([by_sur, solved]))
        x, sur, known = x[pick], sur[pick], known[pick]
        exact = self.solve_exact(x) if verify else known
        fit = self.problem.fitness(np.where(np.isfinite(exact), exact, sur), x)
        # a penalty lets the search cross the budget, but a recommendation must respect it:
        # feasible designs first, then the rest by penalised fitness
        o = np.lexsort((fit, ~self.problem.feasible(x)))[:top_k]
        x, sur, exact = x[o], sur[o], exact[o]
        return Recommendations(designs=x, surrogate_ttt=sur, exact_ttt=exact,
                               cost=self.problem.cost(x), feasible=self.problem.feasible(x),
                               descriptions=[self.problem.describe(r) for r in x])

    def __repr__(self) -> str:
        return (f"SurrogateOptimizer({self.problem!r}, generations={self.ga.generation}, "
                f"surrogate_calls={self.surrogate_calls}, exact_calls={self.exact_calls}, "
                f"refresh={'on' if self.refresh else 'off'})")
