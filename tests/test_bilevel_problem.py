"""NetworkDesignProblem: design algebra, budgets, exact evaluation, bad input."""

import numpy as np
import pytest

from dyngraph.bilevel import NetworkDesignProblem, two_way_pairs
from dyngraph.errors import ConfigError, ShapeError
from dyngraph.traffic import sioux_falls, solve_ue


@pytest.fixture(scope="module")
def net():
    return sioux_falls()


def test_lane_addition_capacities_costs_and_budget(net):
    cand = [(6, 8), (8, 6), (10, 16)]  # TNTP node pairs
    p = NetworkDesignProblem(net, "lane-addition", candidates=cand, budget=0.5)
    ids = [net.link_id(a - 1, b - 1) for a, b in cand]
    assert p.candidates.tolist() == ids
    cost = net.free_flow_time[ids] * net.capacity[ids]  # the paper's lane cost
    assert p.budget == pytest.approx(0.5 * cost.sum())
    x = np.array([[0, 0, 0], [1, 0, 1], [1, 1, 1]])
    cap = p.capacities(x)
    assert np.array_equal(cap[0], net.capacity)
    want = net.capacity.copy()
    want[ids[0]] *= 1.5  # one more lane on an assumed 2-lane road
    want[ids[2]] *= 1.5
    np.testing.assert_allclose(cap[1], want)
    np.testing.assert_allclose(p.cost(x), [0, cost[0] + cost[2], cost.sum()])
    np.testing.assert_array_equal(p.feasible(x), p.cost(x) <= p.budget)
    # every design has the budget rule: the all-lanes design violates 50% of the total
    assert p.violation(x)[2] == pytest.approx(0.5 * cost.sum())


def test_user_specified_instance(net):
    add = np.full(net.num_links, 1000.0)
    cost = np.arange(1, net.num_links + 1, dtype=float)
    p = NetworkDesignProblem(net, candidates=[0, 5, 9], added_capacity=add, cost=cost,
                             budget=7.0, budget_is_fraction=False)
    assert p.budget == 7.0
    np.testing.assert_allclose(p.design_cost, [1, 6, 10])
    assert p.capacities([[0, 1, 0]])[0, 5] == net.capacity[5] + 1000
    # designs within budget: {}, {0}, {5}, {0,5}=7
    assert len(p.all_designs()) == 4
    assert len(p.all_designs(feasible_only=False)) == 8


def test_lane_swap_moves_capacity_between_directions(net):
    pairs = two_way_pairs(net)
    assert all(net.init[a] == net.term[b] and net.term[a] == net.init[b] for a, b in pairs)
    p = NetworkDesignProblem(net, "lane-swap", candidates=[(10, 16), (6, 8)])
    a0, b0 = net.link_id(9, 15), net.link_id(15, 9)
    cap = p.capacities([[1, 0], [-1, 0], [0, 0]])
    assert cap[0, a0] == pytest.approx(1.5 * net.capacity[a0])
    assert cap[0, b0] == pytest.approx(0.5 * net.capacity[b0])
    assert cap[1, a0] == pytest.approx(0.5 * net.capacity[a0])
    assert np.array_equal(cap[2], net.capacity)
    assert p.num_designs == 9 and np.all(p.cost(p.all_designs()) == 0)
    # the default: 25% of the two-way pairs, reproducible by seed
    d1 = NetworkDesignProblem(net, "lane-swap", seed=3)
    d2 = NetworkDesignProblem(net, "lane-swap", seed=3)
    assert d1.num_vars == round(0.25 * len(pairs))
    assert np.array_equal(d1.candidates, d2.candidates)


def test_fitness_rules(net):
    p = NetworkDesignProblem(net, candidates=[0, 1], budget=0.5)
    x = np.array([[0, 0], [1, 1]])
    ttt = np.array([100.0, 50.0])
    pen = p.fitness(ttt, x)
    assert pen[0] == 100.0 and pen[1] == pytest.approx(50 + 500 * p.violation(x)[1])
    ff = NetworkDesignProblem(net, candidates=[0, 1], budget=0.5,
                              constraint="feasibility-first").fitness(ttt, x)
    assert ff[0] < ff[1]  # feasible beats infeasible however good its TTT


def test_exact_evaluation_matches_solve_ue(net):
    p = NetworkDesignProblem(net, candidates=[(6, 8), (8, 6), (10, 16)], budget=1.0)
    x = np.array([[1, 0, 1], [0, 1, 0]])
    ttt, flows = p.solve_exact(x)
    for i in range(2):
        ref = solve_ue(net, rgap=1e-4, capacity=p.capacities(x[i])[0])
        assert ttt[i] == pytest.approx(ref.total_travel_time, rel=2e-4)
        np.testing.assert_allclose(flows[i].sum(), ref.flows.sum(), rtol=1e-3)
    np.testing.assert_allclose(p.total_travel_time(flows, p.capacities(x)), ttt, rtol=1e-9)


def test_bad_input_is_a_clear_error(net):
    with pytest.raises(ConfigError, match="1->24"):
        NetworkDesignProblem(net, candidates=[(1, 24)])
    with pytest.raises(ConfigError, match="link id 999"):
        NetworkDesignProblem(net, candidates=[999])
    with pytest.raises(ConfigError, match="no design other than doing nothing"):
        NetworkDesignProblem(net, candidates=[0, 1, 2], budget=1e-6)
    with pytest.raises(ConfigError, match="budget"):
        NetworkDesignProblem(net, candidates=[0], budget=-1.0, budget_is_fraction=False)
    with pytest.raises(ConfigError, match="repeat"):
        NetworkDesignProblem(net, candidates=[3, 3])
    with pytest.raises(ConfigError, match="kind"):
        NetworkDesignProblem(net, kind="lane-removal")
    p = NetworkDesignProblem(net, candidates=[0, 1], budget=1.0)
    with pytest.raises(ShapeError):
        p.capacities([[0, 1, 1]])
    with pytest.raises(ConfigError, match="values"):
        p.capacities([[0, 2]])
