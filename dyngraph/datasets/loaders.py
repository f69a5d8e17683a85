"""Parse temporal edge files (SNAP, JODIE/DyGLib, Bitcoin, SocioPatterns) into `EventStream`.

Every defect -- truncated row, non-numeric or non-integer id, negative id, NaN, time going
backwards -- raises :class:`~dyngraph.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dyngraph.data.events import EventStream
from dyngraph.errors import ConfigError, DataError

__all__ = ["load_events", "FORMATS", "detect_format"]


@dataclass(frozen=True)
class _Format:
    """Column layout: positions of src, dst, time and (optional) label/index columns."""

    name: str
    src: int
    dst: int
    t: int
    label: int | None = None
    idx: int | None = None
    min_cols: int = 3
    remap: str = "dense"  # "dense": sorted unique ids -> 0..N-1; "shift": 1-based -> 0-based


FORMATS: dict[str, _Format] = {
    "snap": _Format("snap", 0, 1, 2),
    "sociopatterns": _Format("sociopatterns", 1, 2, 0),
    "bitcoin": _Format("bitcoin", 0, 1, 3, label=2, min_cols=4),
    # DyGLib/TGN `ml_*.csv`: ",u,i,ts,label,idx" (first column is a pandas index)
    "jodie": _Format("jodie", 1, 2, 3, label=4, idx=5, min_cols=6, remap="shift"),
    # structure-only `ml_*.txt`: "u i ts"
    "jodie-txt": _Format("jodie-txt", 0, 1, 2, remap="shift"),
}


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline=None) as f:
            return f.read()
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file; check the path, or load a bundled dataset "
                        "by name (dyngraph.datasets.get_events('uci')).") from e
    except (UnicodeDecodeError, OSError) as e:
        raise DataError(f"{path}: cannot read it as text ({e}).") from e


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def detect_format(path: str | Path, first_line: str | None = None) -> str:
    """Guess the format from the file name and its first line."""
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    if first_line is None:
        first_line = _read_text(p).lstrip().split("\n", 1)[0]
    head = first_line.strip().lower()
    if name.startswith("ml_"):
        return "jodie" if name.endswith(".csv") or head.startswith(",") else "jodie-txt"
    if "bitcoin" in name or head.replace(" ", "").startswith("from,to,feature"):
        return "bitcoin"
    if head.startswith("time ") or head.startswith("t ") or "tij" in name or "sfhh" in name:
        return "sociopatterns"
    return "snap"


def _fail(path: Path, lineno: int, what: str, fix: str) -> DataError:
    return DataError(f"{path}:{lineno}: {what}; {fix}")


def _first_data_line(text: str) -> tuple[int, str | None]:
    for i, ln in enumerate(text.split("\n", 64)[:64]):
        if ln.strip() and not ln.lstrip().startswith(("#", "%")):
            return i + 1, ln
    for i, ln in enumerate(text.split("\n")):
        if ln.strip() and not ln.lstrip().startswith(("#", "%")):
            return i + 1, ln
    return 0, None


def _data_lines(text: str, has_header: bool) -> list[tuple[int, str]]:
    """(1-based line number, line) of every event row."""
    rows = [(i + 1, ln) for i, ln in enumerate(text.split("\n"))
            if ln.strip() and not ln.lstrip().startswith(("#", "%"))]
    return rows[1:] if has_header else rows


def _scan(path: Path, text: str, fmt: _Format, sep: str | None, cols: list[int],
          has_header: bool) -> dict[int, np.ndarray]:
    """Slow, exact parse used when numpy's parser rejects the file: finds the bad line."""
    data_lines = _data_lines(text, has_header)
    if not data_lines:
        raise DataError(f"{path}: only a header, no events.")
    table: list[list[str]] = [[] for _ in cols]
    for lineno, ln in data_lines:
        parts = ln.split(sep)
        if len(parts) < fmt.min_cols or any(not parts[c].strip() for c in cols):
            raise _fail(path, lineno, f"truncated row {ln.strip()!r} ({len(parts)} fields, "
                        f"{fmt.name} needs {fmt.min_cols})",
                        "repair or remove the line (was the file cut off while copying?)")
        for j, c in enumerate(cols):
            table[j].append(parts[c])
    values: dict[int, np.ndarray] = {}
    for j, c in enumerate(cols):
        try:
            values[c] = np.array(table[j], dtype=np.float64)
        except ValueError:
            for (lineno, _), tok in zip(data_lines, table[j]):
                if not _is_number(tok):
                    raise _fail(path, lineno, f"field {c + 1} is {tok.strip()!r}, not a number",
                                "fix the row or pick the right format=") from None
            raise
    return values


def load_events(path: str | Path, format: str = "auto", num_nodes: int | None = None, *,
                sort: bool = False, name: str | None = None) -> EventStream:
    """Read an event file into an :class:`~dyngraph.data.EventStream`.

    Formats (``format="auto"`` guesses from name and header):

    * ``"snap"``: ``src dst t`` whitespace separated (SNAP temporal edge lists).
    * ``"jodie"``: DyGLib/TGN ``ml_*.csv`` with header ``,u,i,ts,label,idx``; ids 1-based,
      items numbered after users (kept bipartite: ``item_offset`` = number of users); event
      features are read from a sibling ``ml_<name>.npy`` (row ``idx``) when present.
      ``"jodie-txt"``: structure-only ``u i ts`` in the same id layout.
    * ``"bitcoin"``: SNAP signed network csv ``from,to,feature,time`` (header optional);
      ``label`` = rating.
    * ``"sociopatterns"``: ``time from to`` (header optional), e.g. ``tij_*.dat``.

    Node ids are remapped to ``0..N-1`` (sorted order, original ids in
    ``stream.original_ids``) unless already contiguous; JODIE ids are shifted to 0-based.
    Blank lines and lines starting with ``#`` or ``%`` are skipped.

    Args:
        path: file (optionally ``.gz``).
        format: one of ``"auto"``, ``"snap"``, ``"jodie"``, ``"jodie-txt"``, ``"bitcoin"``,
            ``"sociopatterns"``.
        num_nodes: total node count if larger than the ids seen.
        sort: sort events by time (stable) instead of raising on unsorted input.
        name: dataset name for the stream (default: file stem).
    """
    path = Path(path)
    text = _read_text(path)
    head_no, head = _first_data_line(text)
    if head is None:
        raise DataError(f"{path}: no data rows; is it the right file?")
    if format == "auto":
        format = detect_format(path, head)
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of auto, "
                          f"{', '.join(FORMATS)}.")
    fmt = FORMATS[format]
    sep = "," if "," in head else None
    has_header = fmt.name == "jodie" or not all(
        _is_number(tok) for tok in head.split(sep)[:fmt.min_cols] if tok)
    cols = sorted({c for c in (fmt.src, fmt.dst, fmt.t, fmt.label, fmt.idx) if c is not None})
    try:
        # numpy's C parser; on any defect fall back to the line-by-line scan that names the line
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # several comment markers make numpy preprocess every line in Python: only when needed
            comments = ("#", "%") if "%" in text else "#"
            arr = np.loadtxt(io.StringIO(text), delimiter=sep, comments=comments,
                             skiprows=head_no if has_header else 0, usecols=cols, ndmin=2,
                             dtype=np.float64)
        if len(arr) == 0:
            raise ValueError("empty")
        values = {c: arr[:, j] for j, c in enumerate(cols)}
    except (ValueError, UserWarning):
        values = _scan(path, text, fmt, sep, cols, has_header)

    def lineno_of(i: int) -> int:
        return _data_lines(text, has_header)[i][0]

    def bad_row(mask: np.ndarray) -> tuple[int, int]:
        i = int(np.flatnonzero(mask)[0])
        return i, lineno_of(i)

    ids = {}
    for role, c in (("source", fmt.src), ("destination", fmt.dst)):
        v = values[c]
        bad = ~np.isfinite(v) | (v != np.round(v))
        if bad.any():
            i, ln = bad_row(bad)
            raise _fail(path, ln, f"{role} id {v[i]} is not an integer",
                        "node ids must be whole numbers")
        if (v < 0).any():
            i, ln = bad_row(v < 0)
            raise _fail(path, ln, f"negative {role} id {int(v[i])}",
                        "node ids must be >= 0; fix or drop the row")
        ids[role] = v.astype(np.int64)
    t = values[fmt.t]
    if not np.isfinite(t).all():
        i, ln = bad_row(~np.isfinite(t))
        raise _fail(path, ln, f"time is {t[i]}", "every event needs a finite timestamp")
    label = None
    if fmt.label is not None:
        label = values[fmt.label]
        if not np.isfinite(label).all():
            i, ln = bad_row(~np.isfinite(label))
            raise _fail(path, ln, f"feature/label is {label[i]}",
                        "drop the row or impute the value before loading")
    if len(t) > 1 and (np.diff(t) < 0).any():
        if not sort:
            i, ln = bad_row(np.concatenate([[False], np.diff(t) < 0]))
            raise _fail(path, ln, f"time {t[i]:.17g} is earlier than the previous row's "
                        f"{t[i - 1]:.17g}", "sort the file by time or pass sort=True")

    src, dst = ids["source"], ids["destination"]
    item_offset = None
    original = None
    if fmt.remap == "shift":
        base = 1 if min(src.min(), dst.min()) >= 1 else 0  # TGN reserves id 0 for padding
        src, dst = src - base, dst - base
        if src.max() < dst.min():  # JODIE layout: users first, then items
            item_offset = int(src.max()) + 1
    else:
        uniq, inv = np.unique(np.concatenate([src, dst]), return_inverse=True)
        if not (uniq[0] == 0 and uniq[-1] == len(uniq) - 1):
            src, dst = inv[:len(src)], inv[len(src):]
            original = torch.from_numpy(uniq)
    msg = None
    if fmt.idx is not None:
        npy = path.with_name(path.name.removesuffix(".gz").rsplit(".", 1)[0] + ".npy")
        if npy.is_file():
            feat = np.load(npy)
            idx = values[fmt.idx].astype(np.int64)
            if idx.min() < 0 or idx.max() >= len(feat):
                i, ln = bad_row((idx < 0) | (idx >= len(feat)))
                raise _fail(path, ln, f"idx {idx[i]} has no row in {npy.name} "
                            f"({len(feat)} rows)", "use the .npy made with this csv")
            msg = torch.from_numpy(np.ascontiguousarray(feat[idx], dtype=np.float32))
            if not torch.isfinite(msg).all():
                i, ln = bad_row(~np.isfinite(msg.numpy()).all(axis=1))
                raise _fail(path, ln, f"event feature row {idx[i]} of {npy.name} is not "
                            "finite", "impute or drop NaN features")
    n_seen = int(max(src.max(), dst.max())) + 1
    if num_nodes is not None and num_nodes < n_seen:
        raise DataError(f"{path}: num_nodes={num_nodes} but the file has {n_seen} nodes "
                        "(after remapping); omit num_nodes or raise it.")
    lab = None
    if label is not None:
        lab = (torch.from_numpy(label.astype(np.int64)) if fmt.name == "jodie"
               else torch.from_numpy(label.astype(np.float32)))
    stream = EventStream(
        torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(t), msg=msg, label=lab,
        num_nodes=num_nodes if num_nodes is not None else n_seen, sort=sort,
        name=name if name is not None else path.name.split(".")[0], item_offset=item_offset,
        original_ids=original,
    )
    return stream

