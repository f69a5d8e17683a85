"""Shared by the benchmark scripts: read-modify-write of a results file, so that a partial run
(one section, one dataset) updates its part and keeps what other runs stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def update_json(path: str | Path, change: Callable[[dict], object], indent: int = 1) -> None:
    """Read the results file (or start one), apply ``change``, write it back."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    change(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=indent))
