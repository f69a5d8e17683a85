"""Genetic algorithm over discrete designs, scoring whole populations per call.

Each generation: rank the population, keep the best ``elite_ratio`` (elitism), draw parents by
linear ranking selection, make children by uniform crossover, mutate each gene with
``mutation_rate`` to another allowed level, drop duplicates (of each other and of designs
already in the population) and refill with fresh random designs. The fitness function receives
the full ``(P, D)`` population at once, so a surrogate scores it in one batched call.

It works either as a loop (:meth:`GeneticAlgorithm.run`) or step by step through
:meth:`ask` / :meth:`tell` (the caller evaluates), and is deterministic for a given seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dyngraph.errors import ConfigError, ShapeError

__all__ = ["GeneticAlgorithm", "GAResult"]


@dataclass
class GAResult:
    """Best design found and the search trace."""

    best: np.ndarray
    best_fitness: float
    generations: int
    evaluations: int
    wall_time: float
    history: list[tuple[float, int, float]] = field(repr=False)  # (seconds, evals, best)
    population: np.ndarray = field(repr=False)
    fitness: np.ndarray = field(repr=False)


class GeneticAlgorithm:
    """Minimise a fitness over designs ``x in levels ** num_vars``.

    Args:
        num_vars: genes per design.
        levels: allowed integer values of every gene (``(0, 1)`` binary, ``(-1, 0, 1)`` ...).
        population: population size (the paper: 128).
        elite_ratio: share of the population copied unchanged to the next generation.
        parents_ratio: share of the ranked population eligible as parents.
        mutation_rate: per-gene probability of switching to another level.
        remove_duplicates: replace duplicate designs by random ones every generation.
        init_sampler: ``(n, rng) -> (n, num_vars)`` initial designs (default uniform).
        seed: all randomness comes from ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, num_vars: int, levels=(0, 1), population: int = 128,
                 elite_ratio: float = 0.3, parents_ratio: float = 0.4,
                 mutation_rate: float = 0.05, remove_duplicates: bool = True,
                 init_sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None,
                 seed: int = 0) -> None:
        if num_vars < 1:
            raise ConfigError(f"num_vars must be >= 1, got {num_vars}")
        if population < 4:
            raise ConfigError(f"population must be >= 4, got {population}")
        if not (0 <= elite_ratio < 1 and 0 < parents_ratio <= 1 and 0 <= mutation_rate <= 1):
            raise ConfigError("need 0 <= elite_ratio < 1, 0 < parents_ratio <= 1 and "
                              "0 <= mutation_rate <= 1")
        lv = np.unique(np.asarray(levels, dtype=np.int64))
        if lv.size < 2:
            raise ConfigError("a gene needs at least two levels")
        self.num_vars, self.levels, self.pop_size = num_vars, lv, population
        self.n_elite = max(1, int(round(elite_ratio * population)))
        self.n_parents = max(2, int(round(parents_ratio * population)))
        self.mutation_rate, self.remove_duplicates = mutation_rate, remove_duplicates
        self.rng = np.random.default_rng(seed)
        self._init = init_sampler
        self.population: np.ndarray | None = None
        self.fitness: np.ndarray | None = None
        self.generation = 0
        self.evaluations = 0
        self.best: np.ndarray | None = None
        self.best_fitness = np.inf
        self._pending: np.ndarray | None = None

    # ------------------------------------------------------------------ operators
    def _random(self, n: int) -> np.ndarray:
        if self._init is not None:
            x = np.asarray(self._init(n, self.rng), dtype=np.int64)
            if x.shape != (n, self.num_vars) or not np.isin(x, self.levels).all():
                raise ShapeError(f"init_sampler must return ({n}, {self.num_vars}) designs with "
                                 f"values in {self.levels.tolist()}")
            return x
        return self.levels[self.rng.integers(0, self.levels.size, (n, self.num_vars))]

    def _mutate(self, x: np.ndarray) -> np.ndarray:
        hit = self.rng.random(x.shape) < self.mutation_rate
        if hit.any():
            # shift to a *different* level: add 1..L-1 positions modulo L
            pos = np.searchsorted(self.levels, x[hit])
            pos = (pos + self.rng.integers(1, self.levels.size, pos.size)) % self.levels.size
            x = x.copy()
            x[hit] = self.levels[pos]
        return x

    def _select(self, n: int) -> np.ndarray:
        """Linear ranking selection among the best ``n_parents`` (rank 0 best)."""
        k = min(self.n_parents, self.population.shape[0])
        w = np.arange(k, 0, -1, dtype=np.float64)
        return self.rng.choice(k, size=n, p=w / w.sum())

    def _dedupe(self, children: np.ndarray, keep: np.ndarray) -> np.ndarray:
        seen = {r.tobytes() for r in keep}
        out = []
        for r in children:
            b = r.tobytes()
            if b not in seen:
                seen.add(b)
                out.append(r)
        tries = 0
        while len(out) < children.shape[0] and tries < 20:
            for r in self._random(children.shape[0] - len(out)):
                b = r.tobytes()
                if b not in seen:
                    seen.add(b)
                    out.append(r)
            tries += 1  # a tiny design space may have fewer distinct designs than slots
        return np.asarray(out, dtype=np.int64).reshape(-1, self.num_vars)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """The designs to evaluate next: the initial population, then each generation's
        children (elites are not re-evaluated)."""
        if self._pending is not None:
            return self._pending
        if self.population is None:
            x = self._random(self.pop_size)
            self._pending = self._dedupe(x, np.empty((0, self.num_vars), np.int64)) \
                if self.remove_duplicates else x
            return self._pending
        elite = self.population[:self.n_elite]
        n_child = self.pop_size - self.n_elite
        pa = self.population[self._select(n_child)]
        pb = self.population[self._select(n_child)]
        mask = self.rng.random((n_child, self.num_vars)) < 0.5  # uniform crossover
        kids = self._mutate(np.where(mask, pa, pb))
        if self.remove_duplicates:
            kids = self._dedupe(kids, elite)
        self._pending = kids
        return kids

    def tell(self, designs: np.ndarray, fitness: np.ndarray) -> None:
        """Report the fitness (lower is better) of the designs from :meth:`ask`."""
        x = np.asarray(designs, dtype=np.int64)
        f = np.asarray(fitness, dtype=np.float64).reshape(-1)
        if self._pending is None or x.shape != self._pending.shape or not np.array_equal(
                x, self._pending):
            raise ConfigError("tell() must receive exactly the designs of the last ask()")
        if f.shape != (x.shape[0],):
            raise ShapeError(f"fitness has shape {f.shape}, expected ({x.shape[0]},)")
        if np.isnan(f).any():
            raise ConfigError("fitness contains NaN")
        self._pending = None
        self.evaluations += x.shape[0]
        if self.population is None:
            pop, fit = x, f
        else:
            pop = np.concatenate([self.population[:self.n_elite], x])
            fit = np.concatenate([self.fitness[:self.n_elite], f])
        order = np.argsort(fit, kind="stable")
        self.population, self.fitness = pop[order], fit[order]
        self.generation += 1
        if self.fitness[0] < self.best_fitness:
            self.best_fitness = float(self.fitness[0])
            self.best = self.population[0].copy()

    def update_fitness(self, fitness: np.ndarray) -> None:
        """Replace the fitness of the current population (after the objective changed, e.g.
        a refreshed surrogate) and re-rank it."""
        f = np.asarray(fitness, dtype=np.float64).reshape(-1)
        if self.population is None or f.shape != (self.population.shape[0],):
            raise ShapeError("update_fitness needs one value per current population member")
        order = np.argsort(f, kind="stable")
        self.population, self.fitness = self.population[order], f[order]
        self.best_fitness = float(self.fitness[0])
        self.best = self.population[0].copy()

    # ------------------------------------------------------------------ loop
    def run(self, fitness_fn: Callable[[np.ndarray], np.ndarray], max_generations: int = 100,
            time_limit: float | None = None, max_evaluations: int | None = None,
            stall_generations: int | None = None) -> GAResult:
        """Evolve until a limit: generations, seconds, evaluations or generations without
        improvement."""
        t0 = time.perf_counter()
        hist: list[tuple[float, int, float]] = []
        stall, last = 0, np.inf
        for _ in range(max_generations):
            x = self.ask()
            self.tell(x, fitness_fn(x))
            hist.append((time.perf_counter() - t0, self.evaluations, self.best_fitness))
            stall = stall + 1 if self.best_fitness >= last else 0
            last = min(last, self.best_fitness)
            if time_limit is not None and time.perf_counter() - t0 >= time_limit:
                break
            if max_evaluations is not None and self.evaluations >= max_evaluations:
                break
            if stall_generations is not None and stall >= stall_generations:
                break
        return GAResult(best=self.best.copy(), best_fitness=self.best_fitness,
                        generations=self.generation, evaluations=self.evaluations,
                        wall_time=time.perf_counter() - t0, history=hist,
                        population=self.population.copy(), fitness=self.fitness.copy())

    def __repr__(self) -> str:
        return (f"GeneticAlgorithm(vars={self.num_vars}, levels={self.levels.tolist()}, "
                f"population={self.pop_size}, elite={self.n_elite}, "
                f"mutation={self.mutation_rate})")
