"""GeneticAlgorithm: finds exactly-known optima, is reproducible, and keeps its contracts."""

import numpy as np
import pytest

from dyngraph.bilevel import GeneticAlgorithm
from dyngraph.errors import ConfigError


def test_finds_the_optimum_of_a_separable_ternary_objective():
    target = np.array([1, -1, 0, 1, 1, -1, 0, 0, 1, -1, 1, 0, -1, 1, 0, 1])
    calls = []

    def f(x):
        calls.append(len(x))
        return ((x - target) ** 2).sum(1).astype(float)

    ga = GeneticAlgorithm(16, levels=(-1, 0, 1), population=64, mutation_rate=0.05, seed=0)
    res = ga.run(f, max_generations=200, stall_generations=40)
    assert res.best_fitness == 0.0
    np.testing.assert_array_equal(res.best, target)
    assert len(calls) == res.generations  # one batched call per generation
    best = [h[2] for h in res.history]
    assert all(b1 <= b0 for b0, b1 in zip(best, best[1:]))  # elitism: never worse


def test_finds_the_brute_force_optimum_of_a_knapsack():
    rng = np.random.default_rng(1)
    value, weight = rng.uniform(1, 10, 14), rng.uniform(1, 10, 14)
    cap = 0.4 * weight.sum()

    def f(x):
        over = np.maximum(x @ weight - cap, 0)
        return -(x @ value) + 100 * over

    allx = np.array(np.meshgrid(*[[0, 1]] * 14)).reshape(14, -1).T
    opt = f(allx).min()
    ga = GeneticAlgorithm(14, population=64, seed=2)
    res = ga.run(f, max_generations=150, stall_generations=50)
    assert res.best_fitness == pytest.approx(opt)


def test_reproducible_and_values_in_levels():
    def f(x):
        return np.abs(x.sum(1) - 3).astype(float)

    r1 = GeneticAlgorithm(8, levels=(0, 2, 5), population=16, seed=7).run(f, 10)
    r2 = GeneticAlgorithm(8, levels=(0, 2, 5), population=16, seed=7).run(f, 10)
    np.testing.assert_array_equal(r1.population, r2.population)
    assert np.isin(r1.population, [0, 2, 5]).all()


def test_ask_tell_contract_and_duplicates():
    ga = GeneticAlgorithm(10, population=32, seed=0)
    x = ga.ask()
    assert x.shape == (32, 10)
    assert np.array_equal(ga.ask(), x)  # asking again before telling repeats the batch
    with pytest.raises(ConfigError, match="last ask"):
        ga.tell(x[::-1], np.zeros(32))
    ga.tell(x, x.sum(1).astype(float))
    kids = ga.ask()
    assert kids.shape == (32 - ga.n_elite, 10)
    rows = {r.tobytes() for r in np.concatenate([ga.population[:ga.n_elite], kids])}
    assert len(rows) == 32  # no duplicates in the next population
    with pytest.raises(ConfigError, match="NaN"):
        ga.tell(kids, np.full(len(kids), np.nan))


def test_tiny_space_does_not_loop_forever():
    ga = GeneticAlgorithm(2, population=8, seed=0)  # only 4 distinct designs exist
    res = ga.run(lambda x: x.sum(1).astype(float), max_generations=5)
    assert res.best_fitness == 0.0


def test_bad_settings():
    with pytest.raises(ConfigError):
        GeneticAlgorithm(0)
    with pytest.raises(ConfigError):
        GeneticAlgorithm(4, levels=(1,))
    with pytest.raises(ConfigError):
        GeneticAlgorithm(4, mutation_rate=2.0)
