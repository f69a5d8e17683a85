"""Traffic assignment: exactness on Sioux Falls, AON vs networkx, centroids, costs, methods."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.optimize import brentq

from dyngraph.errors import ConfigError, ConvergenceError
from dyngraph.traffic import (
    BPR,
    SIOUX_FALLS_BEST_BECKMANN,
    SIOUX_FALLS_BEST_TSTT,
    RoutingGraph,
    TrafficNetwork,
    all_or_nothing,
    beckmann,
    bpr_derivative,
    bpr_time,
    shortest_path_costs,
    sioux_falls,
    sioux_falls_best_flows,
    solve_ue,
)
from dyngraph.traffic.assignment import (
    _SCALAR_ROWS,
    _newton_line_search,
    _poly_line_search,
)


@pytest.fixture(scope="module")
def sf() -> TrafficNetwork:
    return sioux_falls()


@pytest.fixture(scope="module")
def sf_exact(sf):
    return solve_ue(sf, rgap=1e-6, method="bfw")


def test_sioux_falls_reproduces_best_known_ue(sf, sf_exact):
    res = sf_exact
    assert res.report.converged and res.report.rgap <= 1e-6
    assert abs(res.total_travel_time - SIOUX_FALLS_BEST_TSTT) / SIOUX_FALLS_BEST_TSTT < 1e-4
    assert abs(res.beckmann - SIOUX_FALLS_BEST_BECKMANN) / SIOUX_FALLS_BEST_BECKMANN < 1e-5
    best = sioux_falls_best_flows(sf)
    assert np.all(np.isfinite(best)) and np.all(best > 0)
    assert np.max(np.abs(res.flows - best) / best) < 0.01


def _nx_graph(net: TrafficNetwork, cost: np.ndarray) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(net.num_nodes))
    for a, (i, j) in enumerate(zip(net.init, net.term)):
        g.add_edge(int(i), int(j), w=float(cost[a]), id=a)
    return g


def _nx_aon(net: TrafficNetwork, cost: np.ndarray):
    """Reference AON: per OD pair, networkx Dijkstra on the graph without the out-links of
    other centroids (they may not be passed through)."""
    flows = np.zeros(net.num_links)
    skim = np.full((net.num_zones, net.num_zones), np.inf)
    centroids = set(range(min(net.first_thru_node - 1, net.num_zones)))
    full = _nx_graph(net, cost)
    for o in range(net.num_zones):
        g = full.copy()
        g.remove_edges_from([e for e in full.edges if e[0] in centroids and e[0] != o])
        dist, paths = nx.single_source_dijkstra(g, o, weight="w")
        for d in range(net.num_zones):
            if d in dist:
                skim[o, d] = dist[d]
            if d == o or net.demand[o, d] == 0:
                continue
            p = paths[d]
            for u, v in zip(p[:-1], p[1:]):
                flows[g[u][v]["id"]] += net.demand[o, d]
    return flows, skim


def _random_network(seed: int, n: int = 14, zones: int = 6, first_thru: int = 1):
    rng = np.random.default_rng(seed)
    g = nx.gnm_random_graph(n, 3 * n, seed=seed, directed=True)
    g.add_edges_from((i, (i + 1) % n) for i in range(n))  # strongly connected ring
    g.add_edges_from(((i + 1) % n, i) for i in range(n))
    # every zone linked both ways to a through node, so centroid rules leave all ODs reachable
    g.add_edges_from((z, zones + z % (n - zones)) for z in range(zones))
    g.add_edges_from((zones + z % (n - zones), z) for z in range(zones))
    edges = np.array(sorted(g.edges))
    e = len(edges)
    demand = rng.uniform(0, 100, (zones, zones)) * (rng.random((zones, zones)) < 0.7)
    return TrafficNetwork(
        num_nodes=n, num_zones=zones, first_thru_node=first_thru,
        init=edges[:, 0].astype(np.int64), term=edges[:, 1].astype(np.int64),
        capacity=rng.uniform(50, 300, e), free_flow_time=rng.uniform(1, 10, e),
        b=np.full(e, 0.15), power=np.full(e, 4.0), demand=demand, name=f"random{seed}",
    )


@pytest.mark.parametrize("seed,first_thru", [(0, 1), (1, 7), (2, 4)])
def test_aon_and_skim_match_networkx(seed, first_thru):
    net = _random_network(seed, first_thru=first_thru)
    cost = np.random.default_rng(seed + 10).uniform(1, 20, net.num_links)  # unique paths a.s.
    flows, skim = all_or_nothing(net, cost)
    ref_flows, ref_skim = _nx_aon(net, cost)
    np.testing.assert_allclose(flows, ref_flows, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(skim, ref_skim, rtol=1e-12)
    # batched call with several cost vectors agrees with one-by-one calls
    costs = np.stack([cost, cost[::-1].copy(), cost * 2.0])
    bf, bs = all_or_nothing(net, costs, graph=RoutingGraph(net, block=2))
    for k in range(3):
        f1, s1 = all_or_nothing(net, costs[k])
        np.testing.assert_allclose(bf[k], f1, rtol=1e-12)
        np.testing.assert_allclose(bs[k], s1, rtol=1e-12)


def _line_network(first_thru: int) -> TrafficNetwork:
    # 1 -> 2 -> 3 is cheap (2 + 2) but passes through zone 2; 1 -> 4 -> 3 costs 10 + 10.
    init = np.array([0, 1, 0, 3, 2, 3, 1])
    term = np.array([1, 2, 3, 2, 0, 0, 0])
    fft = np.array([2.0, 2.0, 10.0, 10.0, 1.0, 1.0, 1.0])
    demand = np.zeros((3, 3))
    demand[0, 2] = 10.0
    return TrafficNetwork(num_nodes=4, num_zones=3, first_thru_node=first_thru, init=init,
                          term=term, capacity=np.full(7, 1e9), free_flow_time=fft,
                          b=np.full(7, 0.15), power=np.full(7, 4.0), demand=demand)


def test_zones_below_first_thru_node_are_not_passed_through():
    through = all_or_nothing(_line_network(1), _line_network(1).free_flow_time)[0]
    assert through[0] == through[1] == 10.0 and through[2] == 0.0
    net = _line_network(4)  # zones 1..3 are centroids
    flows, skim = all_or_nothing(net, net.free_flow_time)
    assert flows[0] == 0.0 and flows[1] == 0.0 and flows[2] == flows[3] == 10.0
    assert skim[0, 2] == 20.0
    # direct link into a centroid (2 -> 1) still usable as the last link of a trip
    assert skim[1, 0] == 1.0


def test_bpr_beckmann_derivatives():
    rng = np.random.default_rng(0)
    e = 50
    t0, cap = rng.uniform(1, 5, e), rng.uniform(100, 500, e)
    b, p = rng.uniform(0.1, 1.0, e), rng.choice([1.0, 2.0, 4.0, 5.5], e)
    v = rng.uniform(0, 800, e)
    h = 1e-4
    for a in range(e):
        vp, vm = v.copy(), v.copy()
        vp[a] += h
        vm[a] -= h
        d_beck = (beckmann(vp, t0, cap, b, p) - beckmann(vm, t0, cap, b, p)) / (2 * h)
        assert d_beck == pytest.approx(bpr_time(v, t0, cap, b, p)[a], rel=1e-6)
    fd = (bpr_time(v + h, t0, cap, b, p) - bpr_time(v - h, t0, cap, b, p)) / (2 * h)
    np.testing.assert_allclose(bpr_derivative(v, t0, cap, b, p), fd, rtol=1e-6)
    model = BPR(t0, cap, b, p)
    np.testing.assert_allclose(model.time(v), bpr_time(v, t0, cap, b, p), rtol=1e-12)
    np.testing.assert_allclose(model.derivative(v), bpr_derivative(v, t0, cap, b, p), rtol=1e-10)
    np.testing.assert_allclose(model.beckmann(v), beckmann(v, t0, cap, b, p), rtol=1e-12)


def test_exact_line_search_matches_brentq():
    rng = np.random.default_rng(3)
    e, s = 40, 12
    t0, b = rng.uniform(1, 5, e), np.full(e, 0.15)
    cap = rng.uniform(100, 500, (s, e))
    x, y = rng.uniform(0, 600, (s, e)), rng.uniform(0, 600, (s, e))
    d = y - x
    for power in (4.0, np.where(np.arange(e) % 2 == 0, 4.0, 3.0)):
        model = BPR(t0, cap, b, np.broadcast_to(power, (e,)))
        g0 = np.einsum("se,se->s", model.time(x), d)
        keep = g0 < 0
        ls = _poly_line_search if model.int_power is not None else _newton_line_search
        assert keep.sum() > _SCALAR_ROWS  # the vectorised root finder runs
        tau = ls(model.subset_rows(np.flatnonzero(keep)), x[keep], d[keep], g0[keep])
        for k, row in enumerate(np.flatnonzero(keep)):
            def g(t, row=row, model=model):
                return float((model.subset_rows([row]).time(x[row] + t * d[row]) @ d[row])[0])
            ref = 1.0 if g(1.0) <= 0 else brentq(g, 0.0, 1.0, xtol=1e-14)
            assert tau[k] == pytest.approx(ref, abs=1e-9)
            # one row alone takes the scalar root finder (single solves): same step
            one = ls(model.subset_rows([row]), x[row:row + 1], d[row:row + 1], g0[row:row + 1])
            assert one[0] == pytest.approx(ref, abs=1e-9)


def test_methods_agree_and_gap_is_independent_of_solver(sf, sf_exact):
    ref = sf_exact
    results = {}
    for method in ("fw", "cfw"):
        res = results[method] = solve_ue(sf, rgap=1e-4, method=method)
        assert res.report.method == method and res.report.rgap <= 1e-4
        assert abs(res.beckmann - ref.beckmann) / ref.beckmann < 2e-4
        # relative gap recomputed independently with networkx shortest paths
        skim = _nx_skim(sf, res.times)
        sptt = float((sf.demand * skim).sum())
        gap = (res.total_travel_time - sptt) / res.total_travel_time
        assert gap == pytest.approx(res.report.rgap, rel=1e-6, abs=1e-12)
    # BFW needs far fewer iterations than FW for the same gap
    fw = results["fw"]
    bfw = solve_ue(sf, rgap=1e-4, method="bfw")
    assert bfw.report.iterations < fw.report.iterations / 3
    assert np.all(np.diff(ref.report.time_history) >= 0)
    assert ref.report.time_to(1e-4)[0] <= ref.report.iterations


def _nx_skim(net, cost):
    g = _nx_graph(net, cost)
    skim = np.zeros((net.num_zones, net.num_zones))
    for o in range(net.num_zones):
        dist = nx.single_source_dijkstra_path_length(g, o, weight="w")
        skim[o] = [dist[d] for d in range(net.num_zones)]
    return skim


def test_skim_and_overrides(sf):
    skim = shortest_path_costs(sf)
    np.testing.assert_allclose(skim, _nx_skim(sf, sf.free_flow_time), rtol=1e-12)
    # more capacity everywhere -> lower equilibrium travel time; less demand -> lower too
    base = solve_ue(sf, rgap=1e-4)
    more_cap = solve_ue(sf, rgap=1e-4, capacity=sf.capacity * 1.5)
    less_dem = solve_ue(sf, rgap=1e-4, demand=sf.demand * 0.8)
    assert more_cap.total_travel_time < base.total_travel_time
    assert less_dem.total_travel_time < base.total_travel_time
    # flow conservation: AON/UE flows out of each origin-only zone sum to its demand
    out_flow = np.bincount(sf.init, weights=base.flows, minlength=sf.num_nodes)
    in_flow = np.bincount(sf.term, weights=base.flows, minlength=sf.num_nodes)
    net_out = sf.demand.sum(1) - sf.demand.sum(0)
    np.testing.assert_allclose(out_flow - in_flow, net_out, atol=1e-6 * sf.total_demand)


def test_convergence_error_and_config_errors(sf):
    with pytest.raises(ConvergenceError) as ei:
        solve_ue(sf, rgap=1e-9, max_iter=5)
    assert ei.value.report.iterations == 5 and not ei.value.report.converged
    partial = solve_ue(sf, rgap=1e-9, max_iter=5, strict=False)
    assert not partial.report.converged
    with pytest.raises(ConfigError):
        solve_ue(sf, method="msa")
    with pytest.raises(ConfigError):
        solve_ue(sf, rgap=0)
    with pytest.raises(ConfigError):
        solve_ue(sf, capacity=-sf.capacity)


# ------------------------------------------------------------------ AON back ends
def _native_or_skip():
    from dyngraph.traffic.paths import aon_backend

    if aon_backend() != "native":
        pytest.skip("native traffic kernel unavailable (numpy back end in use)")


@pytest.mark.parametrize("backend,algo", [("native", "dijkstra"), ("native", "floyd"),
                                          ("native", "sweep"), ("native", "auto"),
                                          ("numpy", "auto")])
@pytest.mark.parametrize("seed,first_thru", [(3, 1), (4, 7)])
def test_routing_graph_aon_backends_match_networkx(backend, algo, seed, first_thru):
    from dyngraph.traffic.paths import ODPairs

    if backend == "native":
        _native_or_skip()
    net = _random_network(seed, first_thru=first_thru)
    rng = np.random.default_rng(seed + 20)
    costs = rng.uniform(1, 20, (3, net.num_links))
    dem = net.demand * rng.uniform(0.5, 1.5, (3, 1, 1))
    od = ODPairs(dem)
    flows, od_cost = RoutingGraph(net).aon(costs, od, need_cost=True, backend=backend,
                                           algorithm=algo)
    for k in range(3):
        ref_flows, ref_skim = _nx_aon(TrafficNetwork(
            num_nodes=net.num_nodes, num_zones=net.num_zones,
            first_thru_node=net.first_thru_node, init=net.init, term=net.term,
            capacity=net.capacity, free_flow_time=net.free_flow_time, b=net.b, power=net.power,
            demand=dem[k]), costs[k])
        np.testing.assert_allclose(flows[k], ref_flows, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(od_cost[k], ref_skim[od.orig, od.dest], rtol=1e-12)
    # one demand shared by many cost vectors
    shared = RoutingGraph(net).aon(costs, ODPairs(dem[0]), backend=backend, algorithm=algo)[0]
    for k in range(3):
        np.testing.assert_allclose(
            shared[k], RoutingGraph(net).aon(costs[k:k + 1], ODPairs(dem[0]), backend=backend,
                                             algorithm=algo)[0][0], rtol=1e-12)


def test_native_aon_parallel_links_and_bad_costs():
    from dyngraph.errors import DataError
    from dyngraph.traffic.paths import ODPairs

    _native_or_skip()
    base = _random_network(5, first_thru=3)
    dup = np.arange(0, base.num_links, 4)  # a parallel copy of every 4th link
    net = TrafficNetwork(
        num_nodes=base.num_nodes, num_zones=base.num_zones, first_thru_node=3,
        init=np.concatenate([base.init, base.init[dup]]),
        term=np.concatenate([base.term, base.term[dup]]),
        capacity=np.concatenate([base.capacity, base.capacity[dup]]),
        free_flow_time=np.concatenate([base.free_flow_time, base.free_flow_time[dup]]),
        b=np.full(base.num_links + dup.size, 0.15), power=np.full(base.num_links + dup.size, 4.0),
        demand=base.demand)
    g = RoutingGraph(net)
    assert g.parallel
    costs = np.random.default_rng(0).uniform(1, 20, (4, net.num_links))
    od = ODPairs(net.demand)
    b, cb = g.aon(costs, od, need_cost=True, backend="numpy")
    for algo in ("dijkstra", "floyd", "sweep"):
        a, ca = g.aon(costs, od, need_cost=True, backend="native", algorithm=algo)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(ca, cb, rtol=1e-12)
    with pytest.raises(ConfigError, match="algorithm"):
        g.aon(costs, od, backend="native", algorithm="bellman")
    for bad in (-1.0, np.nan):
        c = costs.copy()
        c[1, 3] = bad
        with pytest.raises(DataError, match="non-negative"):
            g.aon(c, od)


def test_backend_selection_and_fallback(monkeypatch, sf):
    from dyngraph.errors import BackendError
    from dyngraph.traffic import paths

    with pytest.raises(ConfigError, match="DYNGRAPH_TRAFFIC_BACKEND"):
        paths.aon_backend("gpu")
    assert paths.aon_backend("numpy") == "numpy"
    monkeypatch.setenv(paths.BACKEND_ENV, "numpy")
    assert paths.aon_backend() == "numpy"
    ref = solve_ue(sf, rgap=1e-4)
    # a failed build: auto falls back to numpy, a forced native raises BackendError
    monkeypatch.setattr(paths, "_native_state", {"reason": "no compiler (test)"})
    monkeypatch.setenv(paths.BACKEND_ENV, "auto")
    assert paths.aon_backend() == "numpy"
    with pytest.raises(BackendError, match="no compiler"):
        paths.aon_backend("native")
    assert solve_ue(sf, rgap=1e-4).total_travel_time == pytest.approx(ref.total_travel_time,
                                                                      rel=1e-12)


def test_native_and_numpy_solves_agree(monkeypatch, sf):
    from dyngraph.traffic import paths

    _native_or_skip()
    nat = solve_ue(sf, rgap=1e-5)
    monkeypatch.setenv(paths.BACKEND_ENV, "numpy")
    ref = solve_ue(sf, rgap=1e-5)
    assert nat.report.converged and ref.report.converged
    # Sioux Falls has integer free-flow times, so equal-cost paths abound and the back ends
    # may break ties differently (different AON flows, different trajectories). Both must be
    # within the gap bound of the one optimum: Beckmann(x) - min <= rgap * TSTT(x).
    bound = 1e-5 * max(nat.total_travel_time, ref.total_travel_time)
    assert abs(nat.beckmann - ref.beckmann) <= bound
    assert abs(nat.beckmann - SIOUX_FALLS_BEST_BECKMANN) <= bound
    # with distinct costs (no ties) the two back ends do the same arithmetic
    net = _random_network(6, first_thru=3)
    a = solve_ue(net, rgap=1e-6, method="cfw")
    monkeypatch.setenv(paths.BACKEND_ENV, "native")
    b = solve_ue(net, rgap=1e-6, method="cfw")
    assert a.report.iterations == b.report.iterations
    np.testing.assert_allclose(a.flows, b.flows, rtol=1e-9, atol=1e-8)


def test_row_dot_is_independent_of_batch_and_alignment():
    """The solver's per-row dot product must give a row the same bits whatever the batch
    around it and wherever its memory starts (single and batched solves agree bit for bit)."""
    from dyngraph.traffic.assignment import _rowdot

    rng = np.random.default_rng(5)
    for e in (7, 76, 258, 1031):
        a, b = rng.uniform(0, 1e4, (9, e)), rng.normal(size=(9, e))
        full = _rowdot(a, b)
        for i in range(9):
            for off in (0, 1, 3):
                ba, bb = np.empty(e + 4), np.empty(e + 4)
                ba[off:off + e], bb[4 - off:4 - off + e] = a[i], b[i]
                one = _rowdot(ba[off:off + e][None], bb[4 - off:4 - off + e][None])
                assert one[0] == full[i]

