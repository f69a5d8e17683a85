"""Native "sweep" all-or-nothing kernel: exact against networkx, tie breaks independent of the
batch, the dirty re-sweep and load carrying paths, plan validation, and the native line-search
root (bit-identical to the Python one)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dyngraph.traffic import RoutingGraph, TrafficNetwork, sioux_falls
from dyngraph.traffic.assignment import _poly_root
from dyngraph.traffic.paths import ODPairs, aon_backend, native_poly_root


@pytest.fixture(autouse=True)
def _native_only():
    if aon_backend() != "native":
        pytest.skip("native traffic kernel unavailable (numpy back end in use)")


def _grid(n: int = 5, zones: int = 6, seed: int = 0, first_thru: int = 1) -> TrafficNetwork:
    """A two-way grid: many equal-length routes (ties) under integer costs."""
    g = nx.grid_2d_graph(n, n).to_directed()
    idx = {v: i for i, v in enumerate(sorted(g.nodes))}
    edges = np.array(sorted((idx[a], idx[b]) for a, b in g.edges))
    e = len(edges)
    rng = np.random.default_rng(seed)
    dem = rng.uniform(1, 50, (zones, zones)) * (rng.random((zones, zones)) < 0.8)
    return TrafficNetwork(
        num_nodes=n * n, num_zones=zones, first_thru_node=first_thru,
        init=edges[:, 0].astype(np.int64), term=edges[:, 1].astype(np.int64),
        capacity=np.full(e, 100.0), free_flow_time=np.ones(e), b=np.full(e, 0.15),
        power=np.full(e, 4.0), demand=dem, name=f"grid{n}")


def _nx_dist(net: TrafficNetwork, cost: np.ndarray) -> np.ndarray:
    """Zone-to-zone shortest-path costs; zones below first_thru_node are never passed through."""
    blocked = set(range(min(net.first_thru_node - 1, net.num_zones)))
    out = np.full((net.num_zones, net.num_zones), np.inf)
    for o in range(net.num_zones):
        g = nx.DiGraph()
        for a, (i, j) in enumerate(zip(net.init, net.term)):
            if int(i) in blocked and int(i) != o:
                continue
            w = float(cost[a])
            if not g.has_edge(int(i), int(j)) or g[int(i)][int(j)]["w"] > w:
                g.add_edge(int(i), int(j), w=w)
        d = nx.single_source_dijkstra_path_length(g, o, weight="w")
        for z in range(net.num_zones):
            out[o, z] = 0.0 if z == o else d.get(z, np.inf)
    return out


def _check_valid_aon(net, cost, dem, flows, od_cost, od):
    """Any correct AON, whatever its tie breaks: OD costs are shortest-path costs, flows are
    conserved, and the network cost of the flows equals the demand-weighted OD costs (so every
    unit travels on a shortest path)."""
    ref = _nx_dist(net, cost)
    np.testing.assert_allclose(od_cost, ref[od.orig, od.dest], rtol=1e-12, atol=1e-12)
    assert np.all(flows >= -1e-12)
    n = net.num_nodes
    net_out = np.bincount(net.init, flows, n) - np.bincount(net.term, flows, n)
    supply = np.zeros(n)
    np.add.at(supply, od.orig, dem[od.orig, od.dest])
    np.add.at(supply, od.dest, -dem[od.orig, od.dest])
    np.testing.assert_allclose(net_out, supply, atol=1e-9)
    assert flows @ cost == pytest.approx(float(dem[od.orig, od.dest] @ od_cost), rel=1e-12)


@pytest.mark.parametrize("first_thru", [1, 4])
def test_sweep_ties_valid_and_independent_of_batch(first_thru):
    net = _grid(first_thru=first_thru)
    g = RoutingGraph(net)
    rng = np.random.default_rng(3)
    # blocks of 2 x 8 lanes (two interleaved registers) + a remainder of 6 (one 8-lane
    # register); pairs take the 4-lane code and single scenarios the scalar one
    s = 22
    cost = rng.integers(1, 4, (s, net.num_links)).astype(np.float64)  # ties everywhere
    dem = net.demand * rng.uniform(0.5, 1.5, (s, 1, 1))
    od = ODPairs(dem)
    flows, od_cost = g.aon(cost, od, need_cost=True, algorithm="sweep")
    for k in range(s):
        _check_valid_aon(net, cost[k], dem[k], flows[k], od_cost[k], od)
        alone = g.aon(cost[k:k + 1], od.subset(np.array([k])), algorithm="sweep")[0][0]
        np.testing.assert_array_equal(alone, flows[k])  # same tie breaks alone or batched
    # any other batch composition: reversed order, pairs
    rev = g.aon(cost[::-1].copy(), od.subset(np.arange(s)[::-1]), algorithm="sweep")[0]
    np.testing.assert_array_equal(rev[::-1], flows)
    pair = g.aon(cost[3:5], od.subset(np.arange(3, 5)), algorithm="sweep")[0]
    np.testing.assert_array_equal(pair, flows[3:5])


def test_sweep_far_from_plan_order_resweeps_and_carries_loads():
    """Costs unrelated to the plan's (congested free-flow) order: labels improve through
    backward links (dirty re-sweeps) and tree links point to nodes later in the order (loads
    carried up past processed ancestors); the result must still be exact."""
    net = sioux_falls()
    g = RoutingGraph(net)
    rng = np.random.default_rng(0)
    cost = net.free_flow_time * rng.uniform(0.05, 20.0, (9, net.num_links))
    cost[0, :] = cost[0, ::-1]  # the link costs of one scenario permuted outright
    dem = net.demand * rng.uniform(0.8, 1.2, (9, 1, 1))
    od = ODPairs(dem)
    flows, od_cost = g.aon(cost, od, need_cost=True, algorithm="sweep")
    ref, ref_cost = g.aon(cost, od, need_cost=True, backend="numpy")
    np.testing.assert_allclose(od_cost, ref_cost, rtol=1e-12)
    np.testing.assert_allclose(flows, ref, rtol=1e-10, atol=1e-8)  # unique paths a.s.
    floyd = g.aon(cost, od, algorithm="floyd")[0]
    np.testing.assert_allclose(flows, floyd, rtol=1e-10, atol=1e-8)


def test_sweep_zero_cost_links_and_unreachable_pairs():
    net = _grid(n=4, zones=5, seed=2)
    g = RoutingGraph(net)
    rng = np.random.default_rng(1)
    cost = rng.uniform(0, 3, (5, net.num_links))
    cost[:, ::3] = 0.0  # zero-cost links (and zero-cost cycles): still a tree, no cycle error
    od = ODPairs(net.demand)
    flows, od_cost = g.aon(cost, od, need_cost=True, algorithm="sweep")
    for k in range(5):
        _check_valid_aon(net, cost[k], net.demand, flows[k], od_cost[k], od)
    # an unreachable destination: cost inf, no flow, no error from the kernel itself
    cut = cost.copy()
    into = net.term == 4
    cut[:, into] = np.inf
    f2, c2 = g.aon(cut, od, need_cost=True, algorithm="sweep")
    pairs = od.dest == 4
    assert np.all(np.isinf(c2[:, pairs])) and np.all(np.isfinite(c2[:, ~pairs]))
    assert np.all(f2[:, into] == 0)


def test_sweep_plan_structure_and_bad_plans():
    import torch

    net = sioux_falls()
    g = RoutingGraph(net)
    sweep, ptr, order, pos, seg, pull, pull_ptr, pull_seg = g.sweep_plan()
    z, r = order.shape
    assert torch.equal(order[:, 0], torch.from_numpy(g.sources).int())
    assert torch.equal(torch.sort(order, dim=1).values, torch.arange(r).int().expand(z, r))
    assert torch.equal(torch.gather(pos, 1, order.long()), torch.arange(r).int().expand(z, r))
    for k in range(z):
        t, h, e = (sweep[:, ptr[k]:ptr[k + 1]]).long()
        link = torch.where(e < 0, ~e, e)
        assert torch.equal(torch.from_numpy(g._tail)[link], t)
        assert torch.equal(torch.from_numpy(g._head)[link], h)
        pt, ph = pos[k].long()[t], pos[k].long()[h]
        assert torch.equal(e < 0, ph <= pt)  # backward flags
        nf = int(seg[k, 0, -1])
        assert int(seg[k, 1, -1]) == int(ptr[k + 1] - ptr[k]) and int(seg[k, 1, 0]) == nf
        assert torch.all(e[:nf] >= 0) and torch.all(e[nf:] < 0)  # forward links first
        for part in (pt[:nf], pt[nf:]):
            assert torch.all(part[1:] >= part[:-1])  # each part by tail position
        for side in (0, 1):  # segments: the entries of the node at each position
            counts = (seg[k, side, 1:] - seg[k, side, :-1]).long()
            tails = torch.repeat_interleave(order[k].long(), counts)
            lo, hi = int(seg[k, side, 0]), int(seg[k, side, -1])
            assert torch.equal(tails, t[lo:hi])
        # pull: the same forward links, grouped by head position, within a head by tail
        # position then link id (the order the tail-by-tail pass relaxes them in)
        pt_, pl_ = pull[:, pull_ptr[k]:pull_ptr[k + 1]].long()
        assert int(pull_ptr[k + 1] - pull_ptr[k]) == nf
        assert sorted(pl_.tolist()) == sorted(e[:nf].tolist())
        assert torch.equal(torch.from_numpy(g._tail)[pl_], pt_)
        heads = pos[k].long()[torch.from_numpy(g._head)[pl_]]
        counts = (pull_seg[k, 1:] - pull_seg[k, :-1]).long()
        assert int(pull_seg[k, 0]) == 0 and int(pull_seg[k, -1]) == nf
        assert torch.equal(torch.repeat_interleave(torch.arange(r), counts), heads)
        key = heads * (r * net.num_links) + pos[k].long()[pt_] * net.num_links + pl_
        assert torch.all(key[1:] > key[:-1])
    c = np.ascontiguousarray(net.free_flow_time[None])
    od = ODPairs(net.demand)
    od_ptr, od_dest = od.index_tensors(g.num_zones)
    g.aon(c, od)  # builds the native arguments
    args = (torch.from_numpy(c), *g._native_args, od_ptr, od_dest,
            torch.from_numpy(np.ascontiguousarray(od.values)), False, 3)
    bad_entry = sweep.clone()
    bad_entry[1, 5] = r  # a head past the last node
    bad_link = sweep.clone()
    bad_link[2, 7] = -net.num_links - 1
    bad_order = order.clone()
    bad_order[2, 3] = -1
    bad_pull = pull.clone()
    bad_pull[0, 4] = r  # a tail past the last node
    bad_pull_link = pull.clone()
    bad_pull_link[1, 2] = -1
    rest = [pull, pull_ptr, pull_seg]
    for plan, msg in (([bad_entry, ptr, order, pos, seg, *rest], "out of range"),
                      ([bad_link, ptr, order, pos, seg, *rest], "out of range"),
                      ([sweep, ptr, bad_order, pos, seg, *rest], "order"),
                      ([sweep, ptr, order, pos, seg], "plan is"),
                      ([sweep, ptr.flip(0), order, pos, seg, *rest], "sweep_ptr"),
                      ([sweep, ptr, order, pos, seg, bad_pull, pull_ptr, pull_seg], "pull entry"),
                      ([sweep, ptr, order, pos, seg, bad_pull_link, pull_ptr, pull_seg],
                       "pull entry"),
                      ([sweep, ptr, order, pos, seg, pull, pull_ptr.flip(0), pull_seg],
                       "pull_ptr"),
                      ([sweep, ptr, order, pos, seg, pull, pull_ptr, pull_seg[:, :-1]],
                       "pull_segment")):
        with pytest.raises(RuntimeError, match=msg):
            torch.ops.dyngraph.traffic_aon(*args, plan)
    with pytest.raises(RuntimeError, match="needs the plan"):
        torch.ops.dyngraph.traffic_aon(*args, [])
    # the sweeps check the costs as they read them (the Python wrapper checks first)
    for bad in (-1.0, float("nan")):
        neg = torch.from_numpy(np.repeat(c, 3, axis=0))
        neg[2, 5] = bad
        with pytest.raises(RuntimeError, match="non-negative"):
            torch.ops.dyngraph.traffic_aon(neg, *args[1:], g.sweep_plan())


def test_native_poly_root_bit_identical_to_python():
    root = native_poly_root()
    assert root is not None
    rng = np.random.default_rng(5)
    for p in (1, 2, 4, 6):
        c = rng.normal(size=(3000, p + 1)) * rng.uniform(0.01, 100.0, (3000, 1))
        c[:, 0] = -np.abs(c[:, 0]) - 1e-3  # g(0) < 0
        g1 = c.sum(axis=1)
        keep = g1 > 0  # and g(1) > 0: a root in (0, 1)
        c, g1 = c[keep], g1[keep]
        tau = root(c, g1)
        ref = np.array([_poly_root(row.tolist(), float(v)) for row, v in zip(c, g1)])
        np.testing.assert_array_equal(tau, ref)
        assert np.all((tau > 0) & (tau < 1))
