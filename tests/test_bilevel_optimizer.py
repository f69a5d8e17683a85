"""SurrogateOptimizer: ask/tell contract, budgets, exact verification, refresh, errors."""

import argparse

import numpy as np
import pytest

from dyngraph.bilevel import (
    NetworkDesignProblem,
    RefreshConfig,
    SearchBudget,
    Surrogate,
    SurrogateConfig,
    SurrogateOptimizer,
)
from dyngraph.bilevel.cli import parse_candidates, register
from dyngraph.errors import ConfigError
from dyngraph.traffic import RoutingGraph, sioux_falls


@pytest.fixture(scope="module")
def net():
    return sioux_falls()


@pytest.fixture(scope="module")
def graph(net):
    return RoutingGraph(net)


@pytest.fixture()
def problem(net):
    return NetworkDesignProblem(net, candidates=[(6, 8), (8, 6), (10, 16), (16, 10), (13, 24)],
                                budget=0.6)


def _surrogate(net):
    return Surrogate(net, SurrogateConfig(hidden=8, layers=1, seed=0))


def test_ask_tell_contract(problem, net):
    opt = SurrogateOptimizer(problem, _surrogate(net), population=8, seed=0)
    with pytest.raises(ConfigError, match="nothing searched"):
        opt.recommend()
    x = opt.ask()
    assert x.shape[1] == problem.num_vars and np.isin(x, problem.levels).all()
    # the caller may evaluate designs however it likes, e.g. with its own objective
    opt.tell(x, np.arange(len(x), dtype=float))
    assert opt.ga.best_fitness == 0.0 and np.array_equal(opt.ga.best, x[0])
    y = opt.ask()
    with pytest.raises(ConfigError, match="last ask"):
        opt.tell(x, np.zeros(len(x)))
    opt.tell(y, opt.score(y))
    assert opt.surrogate_calls == len(y)
    assert len(opt.history) == 2


def test_budgets_and_exact_verification(problem, net, graph):
    opt = SurrogateOptimizer(problem, _surrogate(net), SearchBudget(surrogate_calls=30),
                             population=8, seed=1, graph=graph)
    opt.run()
    assert 30 <= opt.surrogate_calls < 30 + 8
    assert opt.exact_calls == 0
    rec = opt.recommend(top_k=4, verify=True)
    assert len(rec) == 4 and opt.exact_calls == 4
    np.testing.assert_allclose(rec.exact_ttt, problem.evaluate_exact(rec.designs, graph=graph),
                               rtol=1e-9)
    fit = problem.fitness(rec.exact_ttt, rec.designs)
    ok = rec.feasible
    assert np.all(ok[:-1] >= ok[1:])  # feasible designs first ...
    for grp in (ok, ~ok):  # ... each group sorted by exact fitness
        assert np.all(np.diff(fit[grp]) >= 0)
    assert rec.feasible.tolist() == problem.feasible(rec.designs).tolist()
    rec2 = opt.recommend(top_k=4, verify=True)
    new = {r.tobytes() for r in rec2.designs} - {r.tobytes() for r in rec.designs}
    assert opt.exact_calls == 4 + len(new)  # cached: solved designs are not solved again
    assert "rank" in rec.table()
    with pytest.raises(ConfigError, match="no limit"):
        SurrogateOptimizer(problem, _surrogate(net), SearchBudget()).run()


def test_refresh_solves_exactly_and_uses_exact_values(problem, net, graph):
    opt = SurrogateOptimizer(problem, _surrogate(net), SearchBudget(generations=2),
                             refresh=RefreshConfig(every=1, top_k=2, epochs=1),
                             population=8, seed=0, graph=graph)
    before = {k: v.clone() for k, v in opt.surrogate.model.state_dict().items()}
    opt.run()
    assert opt.refreshes == 2 and opt.exact_calls == 4
    after = opt.surrogate.model.state_dict()
    assert any(not np.allclose(before[k], after[k]) for k in before)  # fine-tuned
    solved = [np.frombuffer(k, dtype=np.int64) for k in opt._exact]
    exact = problem.evaluate_exact(np.asarray(solved), graph=graph)
    np.testing.assert_allclose(opt.score(np.asarray(solved)),
                               problem.fitness(exact, np.asarray(solved)), rtol=1e-9)
    # exact-call budget caps refresh
    capped = SurrogateOptimizer(problem, _surrogate(net), SearchBudget(exact_calls=3),
                                refresh=RefreshConfig(every=1, top_k=2, epochs=1),
                                population=8, seed=0, graph=graph).run()
    assert capped.exact_calls == 3


def test_surrogate_of_another_network_is_rejected(problem, net):
    other = net.with_(free_flow_time=net.free_flow_time * 2)
    sur = Surrogate(other, SurrogateConfig(hidden=8, layers=1))
    with pytest.raises(ConfigError, match="trained on"):
        SurrogateOptimizer(problem, sur)


def test_cli_registers_design():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["design", "--network", "sioux-falls", "--problem", "lane-addition",
                           "--budget", "0.25"])
    assert a.func.__name__ == "main_design" and a.budget == 0.25
    assert parse_candidates("6-8, 10-16") == [(6, 8), (10, 16)]
    with pytest.raises(ConfigError, match="init-term"):
        parse_candidates("6:8")


def test_stall_stop_and_surrogate_cache(problem, net):
    # 5 binary candidates: 32 designs, so the GA soon re-proposes designs it has scored and
    # stops improving
    opt = SurrogateOptimizer(problem, _surrogate(net),
                             SearchBudget(generations=200, stall_generations=3),
                             population=8, seed=0)
    opt.run()
    assert opt.ga.generation < 200
    best = [h[3] for h in opt.history]
    assert len(best) >= 4 and best[-1] == best[-4]  # no improvement in the last 3
    # each distinct design is scored once by the surrogate: the rest come from the cache
    seen = len(opt._sur)
    assert opt.surrogate_calls == seen <= problem.num_designs
    before = opt.surrogate_calls
    x = opt.ga.population
    np.testing.assert_allclose(opt.surrogate_ttt(x), opt.surrogate.predict_ttt(
        problem.capacities(x)), rtol=1e-6)
    assert opt.surrogate_calls == before


def test_local_search_reaches_a_neighbourhood_minimum(problem, net):
    opt = SurrogateOptimizer(problem, _surrogate(net), SearchBudget(generations=1),
                             population=4, seed=3, local_search=True)
    opt.run()
    best = opt.ga.population[0]
    nb = opt.neighbours(best)
    # 5 binary genes: 5 single flips + 10 pair flips, all distinct from the design
    assert nb.shape == (15, 5) and not (nb == best).all(1).any()
    assert len({r.tobytes() for r in nb}) == 15
    assert ((nb != best).sum(1) <= 2).all()
    # no neighbour is better on the surrogate's fitness
    assert opt.score(nb).min() >= opt.ga.fitness[0]
    assert opt.ga.fitness[0] == opt.score(best[None])[0]


def test_recommendations_respect_the_budget_before_the_penalty(net, graph):
    # no penalty: over-budget designs (more lanes, less travel time) win the search's fitness
    free = NetworkDesignProblem(net, candidates=[(6, 8), (8, 6), (10, 16), (16, 10), (13, 24)],
                                budget=0.4, penalty=0.0)
    opt = SurrogateOptimizer(free, _surrogate(net), SearchBudget(generations=3),
                             population=16, seed=0, graph=graph)
    opt.run()
    rec = opt.recommend(top_k=32, verify=True)
    assert rec.feasible.any() and not rec.feasible.all()
    fit = free.fitness(rec.exact_ttt, rec.designs)
    assert fit[~rec.feasible].min() < fit[rec.feasible].min()  # penalty alone would invert
    k = int(rec.feasible.sum())
    assert rec.feasible[:k].all() and not rec.feasible[k:].any()
    assert rec.best.tolist() == rec.designs[0].tolist() and free.feasible(rec.best)[0]
