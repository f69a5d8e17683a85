"""The dyngraph command: `datasets` and `demo` subcommands, module entry point."""

import json
import runpy
import sys

import pytest

from dyngraph import cli


def test_datasets_command_json(capsys):
    assert cli.main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["collegemsg"]["events"] == 59_835 and rows["collegemsg"]["nodes"] == 1_899
    assert rows["wikipedia"]["nodes"] == 9_227
    assert rows["cora"]["nodes"] == 2_708 and rows["cora"]["events"] == 10_556
    for name in ("collegemsg", "wikipedia", "bitcoin-otc", "bitcoin-alpha", "sfhh", "cora",
                 "citeseer", "siouxfalls"):
        assert rows[name]["md5"] == "OK" and rows[name]["bytes"] > 0
    assert rows["eastern-massachusetts"]["md5"] == "missing (downloadable)"


def test_datasets_command_table(capsys):
    assert cli.main(["datasets", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "collegemsg" in out and "SNAP CollegeMsg" in out and "OK" in out


def test_datasets_command_reports_mismatch(tmp_path, monkeypatch, capsys):
    (tmp_path / "temporal").mkdir()
    (tmp_path / "temporal" / "CollegeMsg.txt").write_text("1 2 3\n")
    monkeypatch.setenv("DYNGRAPH_DATA", str(tmp_path))
    monkeypatch.setenv("DYNGRAPH_CACHE", str(tmp_path / "cache"))
    assert cli.main(["datasets", "--quick"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_demo_json(capsys):
    assert cli.main(["demo", "--json", "--k", "5"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["events"] == 59_835 and st["nodes"] == 1_899
    assert st["train"] + st["val"] + st["test"] <= st["events"]
    assert 0 < st["new_node_fraction"] < 1 and st["queries"] == 2 * 59_835
    assert 0 < st["mean_neighbors"] <= 5 and st["queries_per_second"] > 0


def test_demo_errors_are_reported(capsys):
    assert cli.main(["demo", "--dataset", "no-such-thing"]) == 1
    assert "error" in capsys.readouterr().err


def test_python_dash_m_entry_point(monkeypatch, capsys):
    # `python -m dyngraph` runs dyngraph/__main__.py; run it in-process (a fresh interpreter
    # re-imports torch, which takes many seconds on the shared machine)
    monkeypatch.setattr(sys, "argv", ["dyngraph", "--help"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("dyngraph", run_name="__main__")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "datasets" in out and "demo" in out
