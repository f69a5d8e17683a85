"""The results scripts' summary files: partial grids must not erase stored cells."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the scripts import their shared helpers (benchmarks/_results.py) as a run from there would
sys.path.insert(0, str(ROOT / "benchmarks"))


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _report(tmp: Path, dataset: str, model: str, seed: int, mrr: float) -> None:
    r = {
        "task": "linkpred", "dataset": dataset, "model": model, "seed": seed, "lr": 0.005,
        "map": mrr / 10, "mrr": mrr, "epochs_run": 60, "best_val": 0.001,
        "budget": {"epochs": 500, "patience": 50, "eval_every": 1, "eval_after": 6},
        "select": "mrr", "loss_norm": "weights", "times": {"epoch_s_median": 3.0},
    }
    (tmp / f"linkpred_{dataset}_{model}_s{seed}.json").write_text(json.dumps(r))


def test_evolvegcn_summary_merges_cells(tmp_path) -> None:
    mod = _script("evolvegcn_results")
    summary = tmp_path / "summary.json"
    stored = {"linkpred/uci/gcn": {"map": {"mean": 0.02}}, "linkpred/bitcoin-alpha/evolvegcn-h":
              {"map": {"mean": 0.5}}}
    summary.write_text(json.dumps(stored))
    out = tmp_path / "runs"
    out.mkdir()
    for seed, mrr in enumerate((0.08, 0.10)):
        _report(out, "bitcoin-alpha", "evolvegcn-h", seed, mrr)
    updated = mod.merge_summary(summary, mod.summarize(out))
    merged = json.loads(summary.read_text())
    assert updated == ["linkpred/bitcoin-alpha/evolvegcn-h"]
    # the cell not run here survives, the one run here is replaced by the new runs
    assert merged["linkpred/uci/gcn"] == stored["linkpred/uci/gcn"]
    cell = merged["linkpred/bitcoin-alpha/evolvegcn-h"]
    assert abs(cell["mrr"]["mean"] - 0.09) < 1e-12 and cell["mrr"]["n"] == 2
    assert {r["select"] for r in cell["runs"]} == {"mrr"}
    assert cell["paper"] == {"map": 0.0049, "mrr": 0.1104}
