"""Batched UE scenarios: agree with one-by-one solves; streamed to disk and resumable."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.traffic import RoutingGraph, sioux_falls, solve_ue, solve_ue_batch
from dyngraph.traffic.batch import ScenarioSampler, load_scenarios, run_scenarios
from dyngraph.traffic.cli import register


@pytest.fixture(scope="module")
def sf():
    return sioux_falls()


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_batch_matches_single_solves(sf, backend, monkeypatch):
    from dyngraph.traffic import paths

    if backend == "native" and paths.aon_backend() != "native":
        pytest.skip("native traffic kernel unavailable")
    monkeypatch.setenv(paths.BACKEND_ENV, backend)
    sampler = ScenarioSampler(seed=7)
    cap, dem = sampler(sf, np.arange(5))
    assert np.all(np.isin(np.round(cap / sf.capacity, 6), [0.5, 0.75, 1.0, 1.25, 1.5]))
    ratio = dem / np.where(sf.demand > 0, sf.demand, 1)
    assert ratio[:, sf.demand > 0].min() >= 0.8 and ratio[:, sf.demand > 0].max() <= 1.2
    # numpy: blocks of 2 and slices of 2 scenarios on purpose: the last block/slice is partial
    g = RoutingGraph(sf, block=2, slice_elems=1)
    batch = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-5, graph=g)
    assert batch.converged.all() and np.all(batch.rgap <= 1e-5)
    for i in range(5):
        one = solve_ue(sf, rgap=1e-5, capacity=cap[i], demand=dem[i])
        assert one.report.iterations == batch.iterations[i]
        np.testing.assert_allclose(batch.flows[i], one.flows, rtol=1e-7, atol=1e-6)
        assert batch.total_travel_time[i] == pytest.approx(one.total_travel_time, rel=1e-9)
    # shared capacity, per-scenario demand only
    only_dem = solve_ue_batch(sf, demand=dem[:2], rgap=1e-4)
    assert only_dem.flows.shape == (2, sf.num_links)
    with pytest.raises(ShapeError):
        solve_ue_batch(sf, capacity=cap[:2], demand=dem[:3])


def test_run_scenarios_streams_and_resumes(sf, tmp_path):
    out = tmp_path / "run"
    run_scenarios(sf, 7, out, chunk_size=3, rgap=1e-4, progress=False)
    files = sorted(out.glob("chunk_*.npz"))
    assert len(files) == 3
    data = load_scenarios(out)
    assert data["index"].tolist() == list(range(7)) and data["converged"].all()
    # same scenarios, solved directly
    cap, dem = ScenarioSampler()(sf, np.arange(7))
    ref = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-4)
    np.testing.assert_allclose(data["flows"], ref.flows, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(data["demand"], dem, rtol=1e-6)

    # interrupted run: drop one chunk; resuming recomputes only that one
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    files[1].unlink()
    with pytest.raises(DataError, match="resume"):
        load_scenarios(out)
    assert load_scenarios(out, allow_partial=True)["index"].size == 4
    run_scenarios(sf, 7, out, chunk_size=3, rgap=1e-4, progress=False)
    again = load_scenarios(out)
    np.testing.assert_array_equal(again["flows"], data["flows"])
    assert files[0].stat().st_mtime_ns == stamp[files[0].name]
    assert files[2].stat().st_mtime_ns == stamp[files[2].name]
    # different settings in the same folder are refused
    with pytest.raises(ConfigError, match="different settings"):
        run_scenarios(sf, 7, out, chunk_size=3, rgap=1e-5, progress=False)


def test_cli_ue_writes_report_flows_and_plot(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="dyngraph")
    register(parser.add_subparsers(dest="command"))
    png, rep, csv = tmp_path / "vc.png", tmp_path / "r.json", tmp_path / "f.csv"
    args = parser.parse_args(["ue", "--network", "sioux-falls", "--rgap", "1e-4", "--method",
                              "bfw", "--plot", str(png), "--report", str(rep),
                              "--flows", str(csv)])
    assert args.func(args) == 0
    r = json.loads(rep.read_text())
    assert r["report"]["converged"] and r["report"]["rgap"] <= 1e-4
    assert len(r["report"]["gap_history"]) == r["report"]["iterations"]
    flows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert flows.shape == (76, 5)
    assert r["total_travel_time"] == pytest.approx(float(flows[:, 2] @ flows[:, 3]), rel=1e-6)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "converged" in capsys.readouterr().out


def test_run_scenarios_progress_bar_and_two_workers(sf, tmp_path, capsys):
    one = tmp_path / "one"
    run_scenarios(sf, 4, one, chunk_size=2, rgap=1e-3, progress=True)
    err = capsys.readouterr().err
    assert "UE scenarios" in err and "4/4" in err
    # resuming a finished run only re-reports what is on disk
    run_scenarios(sf, 4, one, chunk_size=2, rgap=1e-3, progress=True)
    assert "4/4" in capsys.readouterr().err
    two = tmp_path / "two"
    run_scenarios(sf, 4, two, chunk_size=2, rgap=1e-3, n_jobs=2, progress=False)
    a, b = load_scenarios(one), load_scenarios(two)
    np.testing.assert_array_equal(a["flows"], b["flows"])
    np.testing.assert_array_equal(a["iterations"], b["iterations"])


def test_continuous_batching_gives_the_same_bits(sf):
    """``width`` < scenarios: converged rows make room for the next in line; every scenario
    still gets the same iterations and flows, bit for bit, as in one batch and alone."""
    from dyngraph.traffic import paths

    if paths.aon_backend() != "native":
        pytest.skip("bit-identical line search needs the native kernels")
    cap, dem = ScenarioSampler(seed=3)(sf, np.arange(6))
    g = RoutingGraph(sf)
    full = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-5, graph=g)
    assert len(set(full.iterations.tolist())) > 1  # rows leave at different iterations
    for width in (1, 4):
        part = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-5, graph=g, width=width)
        np.testing.assert_array_equal(part.iterations, full.iterations)
        np.testing.assert_array_equal(part.flows, full.flows)
        np.testing.assert_array_equal(part.rgap, full.rgap)
    one = solve_ue(sf, rgap=1e-5, capacity=cap[2], demand=dem[2], graph=g)
    np.testing.assert_array_equal(one.flows, full.flows[2])
    # the iteration budget is per scenario, also for rows that joined late
    short = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-9, max_iter=7, graph=g,
                           width=4)
    assert np.all(short.iterations == 7) and not short.converged.any()
    ref = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=1e-9, max_iter=7, graph=g)
    np.testing.assert_array_equal(short.flows, ref.flows)


def _native_row_ops():
    from dyngraph.traffic import paths

    ops = paths.native_row_ops()
    if ops is None:
        pytest.skip("native traffic row operations unavailable")
    return ops


@pytest.mark.parametrize("method", ["bfw", "cfw", "fw"])
def test_fused_rows_and_lazy_leaving_give_the_same_bits(sf, method, monkeypatch):
    """Batches of >= 8 rows take the native fused row operations, and finished rows stay in
    the batch until dropping them pays; neither may change a bit: the same flows and
    iterations as pure numpy arithmetic with rows dropped at once, and as solving alone."""
    from dyngraph.traffic import assignment

    _native_row_ops()
    cap, dem = ScenarioSampler(seed=5)(sf, np.arange(24))
    g = RoutingGraph(sf)
    gap = 1e-4 if method == "bfw" else 1e-3  # (CFW/FW crawl on Sioux Falls)
    fast = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=gap, method=method, graph=g)
    assert len(set(fast.iterations.tolist())) > 4  # rows leave at many different iterations
    monkeypatch.setattr(assignment, "_FUSED_ROWS", 10**9)  # numpy arithmetic only
    monkeypatch.setattr(assignment, "_DEAD_SHARE", 10**9)  # drop every finished row at once
    slow = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=gap, method=method, graph=g)
    np.testing.assert_array_equal(fast.iterations, slow.iterations)
    np.testing.assert_array_equal(fast.flows, slow.flows)
    np.testing.assert_array_equal(fast.rgap, slow.rgap)
    np.testing.assert_array_equal(fast.converged, slow.converged)
    monkeypatch.undo()
    for i in (0, 17):
        one = solve_ue(sf, rgap=gap, method=method, capacity=cap[i], demand=dem[i], graph=g)
        assert one.report.iterations == fast.iterations[i]
        np.testing.assert_array_equal(one.flows, fast.flows[i])
    # a time-out stores the flows of the rows still running, not of rows already finished
    cut = solve_ue_batch(sf, capacity=cap, demand=dem, rgap=gap, method=method, graph=g,
                         max_iter=int(np.median(fast.iterations)))
    done = cut.converged
    assert done.any() and not done.all()
    np.testing.assert_array_equal(cut.flows[done], fast.flows[done])


@pytest.mark.parametrize("power", [2, 3, 4, 5])
@pytest.mark.parametrize("shared_coef", [False, True])
def test_native_bpr_times_is_bit_identical(power, shared_coef):
    """traffic_bpr_times against the numpy products of assignment._Workspace.times."""
    ops = _native_row_ops()
    rng = np.random.default_rng(power)
    n, e = 9, 31
    x = rng.uniform(0, 3e3, (n, e))
    coef = rng.uniform(1e-12, 1e-6, e if shared_coef else (n, e))
    t0 = rng.uniform(0.5, 9.0, e)
    xs = [x]
    for _ in range(2, power):
        xs.append(xs[-1] * x)
    cv = coef * xs[-1]
    out = [np.empty((n, e)) for _ in range(power)]
    ops.bpr_times(x, coef, t0, float(power), out)
    for k in range(power - 2):
        np.testing.assert_array_equal(out[k], xs[k + 1])
    np.testing.assert_array_equal(out[-2], cv * x + t0)
    np.testing.assert_array_equal(out[-1], cv * float(power))


def test_native_direction_step_is_bit_identical():
    """One FW/CFW/BFW step (direction weights, s, d, line search, update) with the native
    row operations and with numpy, on rows of every phase, including degenerate ones (s1 = x:
    zero conjugacy denominators) -- the same bits."""
    from dyngraph.traffic import assignment as A
    from dyngraph.traffic.costs import BPR

    ops = _native_row_ops()
    rng = np.random.default_rng(0)
    n, e = 12, 40
    cost = BPR(rng.uniform(1, 5, e), rng.uniform(50, 200, (n, e)), 0.15, 4.0)
    x = rng.uniform(0, 300, (n, e))
    y = rng.uniform(0, 300, (n, e))
    s1 = rng.uniform(0, 300, (n, e))
    s2 = rng.uniform(0, 300, (n, e))
    s1[3] = x[3]  # degenerate conjugacy: zero denominators
    s2[5] = s1[5]
    phase = np.tile(np.arange(4), 3).astype(np.int64)
    tau_prev = rng.uniform(0.05, 0.95, n)
    out = []
    for fused in (ops, None):
        ws = A._Workspace(n, e, fused)
        eng = A._Engine(None, cost, None, "bfw")
        xx = x.copy()
        t, h, xp = ws.times(cost, xx)
        res = A._iterate(eng, ws, cost, 2, n, xx, y.copy(), t, h, xp, s1.copy(), s2.copy(),
                         tau_prev.copy(), phase.copy(), np.ones(n, dtype=np.int64), [], False)
        out.append([np.array(r, copy=True) for r in res])
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [8, 9, 33, 64])
def test_native_line_search_is_bit_identical(n):
    """The batched exact line search (native products, numpy row sums, native coefficients,
    their sum in numpy's order and the root) against the numpy path, on steps that end inside
    (0, 1) and at the full step."""
    from dyngraph.traffic import assignment as A
    from dyngraph.traffic.costs import BPR
    from dyngraph.traffic.paths import native_poly_root

    ops = _native_row_ops()
    rng = np.random.default_rng(n)
    e = 45
    cost = BPR(rng.uniform(1, 5, e), rng.uniform(50, 200, (n, e)), 0.15, 4.0)
    x = rng.uniform(0, 300, (n, e))
    d = rng.uniform(-300, 300, (n, e)) * rng.uniform(0.001, 1.0, (n, 1))
    d[:3] *= 1e-6  # tiny directions: Beckmann still falls at tau = 1 (full steps)
    g0 = -np.abs(A._rowdot(cost.time(x), d)) - 1.0
    taus = []
    for fused in (ops, None):
        ws = A._Workspace(n, e, fused)
        _, _, xp = ws.times(cost, x)
        taus.append(A._poly_line_search(cost, x, d, g0, native_poly_root(), xp, ws))
    np.testing.assert_array_equal(taus[0], taus[1])
    assert (taus[0] < 1).any() and (taus[0] == 1).any()
