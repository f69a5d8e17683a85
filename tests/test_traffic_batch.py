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
