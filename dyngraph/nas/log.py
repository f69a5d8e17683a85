"""Append-only JSON-lines trial log: one header line, then one line per finished trial."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dyngraph.errors import ConfigError, DataError

__all__ = ["TrialLog"]


class TrialLog:
    """``path`` holds ``{"type": "header", ...}`` then ``{"type": "trial", ...}`` records.

    Each record is written with a single ``write`` + ``flush`` + ``fsync``, so a search killed
    at any moment leaves at most one partial last line, which :meth:`read` drops.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        """Whether the log file exists and is not empty."""
        return self.path.exists() and self.path.stat().st_size > 0

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``(header, trials)``; a truncated final line (interrupted write) is ignored."""
        if not self.exists():
            return None, []
        header = None
        trials: list[dict[str, Any]] = []
        lines = self.path.read_text().splitlines()
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                if n == len(lines) - 1:
                    break  # partial last line of a killed run
                raise DataError(f"{self.path}:{n + 1}: corrupt trial log line ({e})") from e
            if rec.get("type") == "header":
                header = rec
            elif rec.get("type") == "trial":
                trials.append(rec)
        return header, trials

    def repair(self) -> bool:
        """Cut a partial last line left by a killed writer; ``True`` if something was cut."""
        if not self.exists():
            return False
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return False
        with open(self.path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
        return True

    def _append(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a killed writer may have left a partial line: start ours on a fresh line
        prefix = ""
        if self.exists():
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    prefix = "\n"
        with open(self.path, "a") as f:
            f.write(prefix + json.dumps(rec, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def start(self, header: dict[str, Any]) -> None:
        """Append the header record ``{"type": "header", **header}``."""
        self._append({"type": "header", **header})

    def append(self, record: dict[str, Any]) -> None:
        """Append one trial record ``{"type": "trial", **record}`` (flushed and fsynced)."""
        self._append({"type": "trial", **record})

    @staticmethod
    def check_compatible(found: dict[str, Any], expected: dict[str, Any]) -> None:
        """Check that a log header matches the search about to resume it.

        Args:
            found: header read from the log.
            expected: header of the current search; every key must have the same value in ``found``.

        Raises:
            ConfigError: some key differs.
        """
        diffs = [k for k in expected if found.get(k) != expected[k]]
        if diffs:
            raise ConfigError(
                f"trial log was written by a different search (differs in {diffs}); "
                "pass a new log path or resume=False to start over"
            )
