"""Read benchmark result files (``benchmarks/results/*.json``) into Markdown tables.

The benchmark scripts are written by different people and their JSON layouts differ, so this
reads any of them: a list of flat records, or an object holding one or more lists of records
(``{"args": {...}, "runs": [...]}``) plus scalar metadata. Records that differ only by
``seed`` are averaged (mean ± std, n). Recognised metadata keys (printed when present):
``command``/``cmd``/``argv`` (the command that produced the file), ``machine``/``platform``/
``host``/``cpu`` (where it ran), ``args`` (a command is rebuilt from them when no command is
recorded), ``date``/``timestamp``.

Nothing here types a number: every figure on the generated pages comes from these files.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

import formats
from formats import Stat

_SCALAR = (str, int, float, bool, type(None))
# integer fields that are measurements (averaged over seeds), not settings (grouped by)
_INT_MEASURE = re.compile(r"(^best_|_s$|_ms$|second|bytes|_mb$|iterations?$|^iters?$|calls$|"
                          r"count$|per_s|^n_?evals?$)", re.IGNORECASE)
COMMAND_KEYS = ("command", "cmd", "argv")
MACHINE_KEYS = ("machine", "platform", "host", "hostname", "cpu", "system")
DATE_KEYS = ("date", "timestamp", "time_utc", "created")


def load(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def tables_for(stem: str, data: Any) -> list[tuple[str, list[dict]]]:
    """The file's own reader (``formats.reader_for``) when it has one and recognises the data,
    else the generic :func:`tables`."""
    reader = formats.reader_for(stem)
    if reader is not None:
        try:
            return reader(data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            pass  # the layout changed: the generic reader still shows every figure
    return tables(data)


def flatten(rec: dict, prefix: str = "") -> dict:
    """One level of nested dicts becomes dotted keys; lists are dropped."""
    out: dict = {}
    for k, v in rec.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not prefix:
            out.update(flatten(v, key + "."))
        elif isinstance(v, _SCALAR):
            out[key] = v
    return out


def tables(data: Any) -> list[tuple[str, list[dict]]]:
    """(title, records) for every list of dict records in a result file."""
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return [("", [flatten(r) for r in data])]
    out: list[tuple[str, list[dict]]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
                out.append((k, [flatten(r) for r in v]))
            elif isinstance(v, dict) and k not in ("args", "config") and any(
                    isinstance(x, dict) for x in v.values()):
                # {"uci": {...}, "wikipedia": {...}}: one record per key
                recs = [dict(key=kk, **flatten(vv)) for kk, vv in v.items()
                        if isinstance(vv, dict)]
                if recs:
                    out.append((k, recs))
        if not out:
            flat = flatten(data)
            if flat:
                out.append(("", [flat]))
    return out


def metadata(data: Any) -> dict[str, str]:
    """Command, machine and date recorded in a result file (empty when not recorded)."""
    meta: dict[str, str] = {}
    if not isinstance(data, dict):
        return meta
    for k in COMMAND_KEYS:
        if k in data:
            v = data[k]
            meta["command"] = " ".join(map(str, v)) if isinstance(v, list) else str(v)
            break
    for k in MACHINE_KEYS:
        if k in data:
            v = data[k]
            meta["machine"] = (", ".join(f"{a}: {b}" for a, b in v.items())
                               if isinstance(v, dict) else str(v))
            break
    if "machine" not in meta:
        # no machine string: what the file does record about where it ran
        parts = []
        for k in ("cpus", "threads", "torch_threads", "python", "torch", "versions",
                  "load_average"):
            v = data.get(k)
            if isinstance(v, dict):
                v = ", ".join(f"{a} {b}" for a, b in v.items())
            elif isinstance(v, list):
                v = " ".join(fmt(x) for x in v)
            if v is not None:
                parts.append(f"{k.replace('_', ' ')}: {v}")
        if parts:
            meta["machine"] = "; ".join(parts)
    for k in DATE_KEYS:
        if k in data:
            meta["date"] = str(data[k])
            break
    if "command" not in meta and isinstance(data.get("args"), dict):
        meta["args"] = " ".join(_arg(k, v) for k, v in data["args"].items() if _arg(k, v))
    return meta


def _arg(k: str, v: Any) -> str:
    flag = "--" + k.replace("_", "-")
    if v is True:
        return flag
    if v is False or v is None:
        return ""
    if isinstance(v, list):
        return f"{flag} " + " ".join(map(str, v))
    return f"{flag} {v}"


def fmt(v: Any) -> str:
    if isinstance(v, Stat):
        if v.std is None or (isinstance(v.std, float) and math.isnan(v.std)):
            return fmt(v.mean)
        spread = f"{v.std:.2g}" if abs(v.std) < 100 else fmt(v.std)  # 2 digits suffice
        return f"{fmt(v.mean)} ± {spread}"
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        if abs(v) >= 100:
            return f"{v:,.1f}"
        return f"{v:.4g}"
    return " ".join(str(v).split()).replace("|", "\\|")


def _is_measure(key: str, values: list) -> bool:
    if any(isinstance(v, (float, Stat)) for v in values):
        return True
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values if v is not None):
        return bool(_INT_MEASURE.search(key))
    return False


def aggregate(records: list[dict]) -> tuple[list[str], list[list[str]], bool]:
    """Columns and formatted rows; records differing only by ``seed`` are averaged."""
    cols: list[str] = []
    for r in records:
        cols.extend(k for k in r if k not in cols)
    values = {c: [r.get(c) for r in records] for c in cols}
    measures = [c for c in cols if _is_measure(c, values[c])]
    keys = [c for c in cols if c not in measures and c != "seed"]
    if "seed" not in cols or len(records) < 2:
        return cols, [[fmt(r.get(c)) for c in cols] for r in records], False
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    rows = []
    for gkey, rs in groups.items():
        row = [fmt(v) for v in gkey]
        for m in measures:
            xs = [r[m] for r in rs if isinstance(r.get(m), (int, float))
                  and not isinstance(r.get(m), bool)]
            if not xs:
                row.append("–")
            elif len(xs) == 1:
                row.append(fmt(xs[0]))
            else:
                row.append(f"{fmt(statistics.fmean(xs))} ± {fmt(statistics.stdev(xs))}")
        row.append(str(len(rs)))
        rows.append(row)
    return keys + measures + ["n (seeds)"], rows, True


def markdown_table(records: list[dict], max_rows: int = 120, fold: bool = False) -> str:
    """A Markdown table; ``fold``: columns with one value in every row (of three or more rows)
    become a line above the table, and columns that are empty everywhere are dropped."""
    cols, rows, averaged = aggregate(records)
    if not cols:
        return ""
    head = ""
    if fold and rows:
        keep, same = [], []
        for i, c in enumerate(cols):
            vals = {r[i] for r in rows}
            if vals == {"–"}:
                continue
            if len(rows) >= 3 and len(vals) == 1:
                same.append(f"{c.replace('_', ' ')} = {rows[0][i]}")
            else:
                keep.append(i)
        if keep:
            cols, rows = [cols[i] for i in keep], [[r[i] for i in keep] for r in rows]
            head = f"In every row: {', '.join(same)}.\n\n" if same else ""
    lines = ["| " + " | ".join(c.replace("_", " ") for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append(f"\n*{len(rows) - max_rows} more rows in the JSON file.*")
    if averaged:
        lines.append("\nmean ± sample std over seeds; n = number of seeds.")
    return head + "\n".join(lines)


def all_records(results_dir: Path) -> list[tuple[str, dict]]:
    """(file name, record) for every record of every result file."""
    out = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            data = load(path)
        except (OSError, ValueError):
            continue
        for _, recs in tables_for(path.stem, data):
            out.extend((path.name, r) for r in recs)
    return out
