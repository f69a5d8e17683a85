"""Streaming link-prediction trainer on a slice of the bundled UCI (CollegeMsg) data:
learning happens, checkpoint + resume is bit-for-bit, early stopping, CLI report/plot."""

from __future__ import annotations

import argparse
import json
import sys
import types

import pytest
import torch

from dyngraph.datasets import get_events
from dyngraph.train import StreamingConfig, load_checkpoint, train_link_prediction
from dyngraph.train.cli import register


@pytest.fixture(scope="module")
def split():
    return get_events("uci")[:3000].split(seed=0)


def _cfg(**kw):
    base = dict(memory_dim=16, time_dim=16, embedding_dim=16, num_neighbors=5, epochs=2,
                batch_size=200, mrr_negatives=10, progress=False, patience=5, lr=3e-3)
    base.update(kw)
    return StreamingConfig(**base)


def _quiet(*a, **k):
    pass


def test_tgn_learns_on_uci_slice(split):
    _, res = train_link_prediction(split, _cfg(epochs=3), log=_quiet)
    t = res.test
    # random scores give AP ~0.5 and MRR ~ H_11/11 ~ 0.27 with 10 negatives
    assert t["ap"] > 0.7 and t["auc"] > 0.7
    assert t["mrr"] > 0.35
    assert "ind_ap" in t and 0 <= t["ind_ap"] <= 1
    assert len(res.history) == 3 and res.train_events_per_s > 0


def test_resume_is_bit_for_bit(split, tmp_path):
    cfg = _cfg(model="tgn", epochs=2)
    m_full, r_full = train_link_prediction(split, cfg, checkpoint_dir=str(tmp_path / "a"),
                                           log=_quiet)
    cfg1 = _cfg(model="tgn", epochs=1)
    train_link_prediction(split, cfg1, checkpoint_dir=str(tmp_path / "b"), log=_quiet)
    m_res, r_res = train_link_prediction(split, cfg, checkpoint_dir=str(tmp_path / "b"),
                                         resume=True, log=_quiet)
    ck_a = load_checkpoint(tmp_path / "a")
    ck_b = load_checkpoint(tmp_path / "b")
    assert ck_a["epoch"] == ck_b["epoch"] == 2
    for k, v in ck_a["model"].items():
        assert torch.equal(v, ck_b["model"][k]), k
    assert [h["loss"] for h in r_full.history] == [h["loss"] for h in r_res.history]
    assert r_full.test["ap"] == r_res.test["ap"]
    with pytest.raises(Exception, match="different settings"):
        train_link_prediction(split, _cfg(model="tgn", epochs=3, lr=1e-2),
                              checkpoint_dir=str(tmp_path / "b"), resume=True, log=_quiet)


def test_early_stopping(split):
    # lr = 0 cannot improve validation AP after the first epoch
    _, res = train_link_prediction(split, _cfg(model="jodie", epochs=6, patience=2, lr=0.0),
                                   log=_quiet)
    assert len(res.history) == 3 and res.best_epoch == 1


def _parse(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    register(sub)
    return ap.parse_args(argv)


@pytest.mark.parametrize("model", ["dyrep", "apan"])
def test_cli_linkpred_writes_report_and_plot(tmp_path, model, capsys):
    rep, png = tmp_path / "r.json", tmp_path / "c.png"
    args = _parse(["linkpred", "--model", model, "--dataset", "uci", "--max-events", "2500",
                   "--epochs", "1", "--memory-dim", "8", "--time-dim", "8",
                   "--embedding-dim", "8", "--num-neighbors", "4", "--mrr-negatives", "5",
                   "--report", str(rep), "--plot", str(png), "--no-progress"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "test  AP" in out and "MRR" in out
    report = json.loads(rep.read_text())
    for key in ("ap", "auc", "mrr", "ind_ap"):
        assert 0.0 <= report["test"][key] <= 1.0
    assert report["train_events_per_s"] > 0 and len(report["epoch_times"]) == 1
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_dispatches_snapshot_models(monkeypatch):
    seen = {}
    fake = types.ModuleType("dyngraph.train.snapshot")

    def run_snapshot_linkpred(args):
        seen.update(vars(args))
        return {"test": {}}

    fake.run_snapshot_linkpred = run_snapshot_linkpred
    monkeypatch.setitem(sys.modules, "dyngraph.train.snapshot", fake)
    args = _parse(["linkpred", "--model", "evolvegcn-h", "--window", "86400",
                   "--num-snapshots", "20"])
    assert args.func(args) == 0
    assert seen["model"] == "evolvegcn-h" and seen["window"] == 86400.0
    assert seen["num_snapshots"] == 20
