"""Every example runs as shipped (in its ``--fast`` mode), from a clean working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_fast(script: Path, tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script), "--fast"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{script.name} failed:\n{tail}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"

