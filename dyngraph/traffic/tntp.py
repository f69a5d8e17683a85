"""Readers for the TNTP text format of the Transportation Networks for Research repository.

TNTP files start with ``<TAG> value`` metadata lines closed by ``<END OF METADATA>``; ``~``
starts a comment; data rows are whitespace separated and end with ``;``. Every parse error
is a :class:`~dyngraph.errors.DataError` whose message starts with ``file:line:`` so the
user can open the offending row directly.

Data: Transportation Networks for Research Core Team, *Transportation Networks for
Research*, https://github.com/bstabler/TransportationNetworks (academic research use; cite
the repository).
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dyngraph.errors import ChecksumError, ConfigError, DataError

__all__ = [
    "TNTP_BASE_URL",
    "KNOWN_NETWORKS",
    "TNTPLinks",
    "TNTPTrips",
    "read_net",
    "read_trips",
    "read_nodes",
    "read_flow",
    "tntp_url",
    "download_tntp",
    "md5sum",
]

#: Raw-file root of the TransportationNetworks GitHub repository (canonical TNTP source).
TNTP_BASE_URL = "https://raw.githubusercontent.com/bstabler/TransportationNetworks/master"

#: Canonical folder and file prefix of networks in that repository, keyed by a lower-case name.
KNOWN_NETWORKS: dict[str, tuple[str, str]] = {
    "sioux-falls": ("SiouxFalls", "SiouxFalls"),
    "eastern-massachusetts": ("Eastern-Massachusetts", "EMA"),
    "anaheim": ("Anaheim", "Anaheim"),
    "chicago-sketch": ("Chicago-Sketch", "ChicagoSketch"),
    "barcelona": ("Barcelona", "Barcelona"),
    "winnipeg": ("Winnipeg", "Winnipeg"),
}

# Standard column order of TNTP network files; the first seven are required.
_NET_COLUMNS = (
    "init_node",
    "term_node",
    "capacity",
    "length",
    "free_flow_time",
    "b",
    "power",
    "speed",
    "toll",
    "link_type",
)
_NET_REQUIRED = 7


@dataclass
class TNTPLinks:
    """Parsed network file: one entry per directed link, node ids 1-based as in the file."""

    path: Path
    metadata: dict[str, str]
    num_nodes: int
    num_zones: int
    first_thru_node: int
    init_node: np.ndarray
    term_node: np.ndarray
    capacity: np.ndarray
    length: np.ndarray
    free_flow_time: np.ndarray
    b: np.ndarray
    power: np.ndarray
    toll: np.ndarray
    link_type: np.ndarray
    lines: np.ndarray = field(repr=False)  # 1-based source line of every link


@dataclass
class TNTPTrips:
    """Parsed trip table: dense ``(zones, zones)`` demand, plus source line of every entry."""

    path: Path
    metadata: dict[str, str]
    num_zones: int
    demand: np.ndarray
    lines: np.ndarray = field(repr=False)  # (zones, zones) int, 0 where the file has no entry


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _read_lines(path: str | os.PathLike) -> tuple[Path, list[str]]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: TNTP file not found; pass an existing path or download it first")
    with open(p, encoding="utf-8", errors="replace") as fh:
        return p, fh.read().splitlines()


_META = re.compile(r"^\s*<([^>]+)>\s*(.*?)\s*$")


def _split_metadata(path: Path, lines: list[str]) -> tuple[dict[str, str], int]:
    """Return the metadata dict and the index of the first line after ``<END OF METADATA>``."""
    meta: dict[str, str] = {}
    for i, raw in enumerate(lines):
        m = _META.match(raw)
        if m is None:
            if raw.strip() and not raw.lstrip().startswith("~"):
                # Files without a metadata block: treat everything as body.
                return meta, i
            continue
        key = m.group(1).strip().upper()
        if key == "END OF METADATA":
            return meta, i + 1
        meta[key] = m.group(2)
    raise DataError(f"{path}: no '<END OF METADATA>' line; is this a TNTP file?")


def _meta_int(path: Path, meta: dict[str, str], key: str, default: int | None = None) -> int:
    if key not in meta:
        if default is not None:
            return default
        raise DataError(f"{path}: metadata tag <{key}> missing; add it to the file header")
    try:
        return int(float(meta[key].split()[0]))
    except (ValueError, IndexError):
        raise DataError(f"{path}: metadata <{key}> = {meta[key]!r} is not a number") from None


def read_net(path: str | os.PathLike) -> TNTPLinks:
    """Read a TNTP network file (``*_net.tntp``).

    Validates every row: at least the seven required columns (init node, term node, capacity,
    length, free-flow time, B, power), node ids within ``1..<NUMBER OF NODES>``, positive
    capacity, non-negative free-flow time, B and power, finite numbers, and the declared
    ``<NUMBER OF LINKS>``.
    """
    p, lines = _read_lines(path)
    meta, start = _split_metadata(p, lines)
    num_nodes = _meta_int(p, meta, "NUMBER OF NODES")
    num_zones = _meta_int(p, meta, "NUMBER OF ZONES")
    first_thru = _meta_int(p, meta, "FIRST THRU NODE", default=1)
    declared_links = _meta_int(p, meta, "NUMBER OF LINKS", default=-1)
    if not 0 < num_zones <= num_nodes:
        raise DataError(f"{p}: <NUMBER OF ZONES> {num_zones} must be in 1..{num_nodes} (nodes)")

    rows: list[list[float]] = []
    src_lines: list[int] = []
    for i in range(start, len(lines)):
        text = lines[i].split("~", 1)[0].strip()
        if not text:
            continue
        lineno = i + 1
        text = text.rstrip(";").strip()
        fields = text.split()
        if len(fields) < _NET_REQUIRED:
            missing = ", ".join(_NET_COLUMNS[len(fields) : _NET_REQUIRED])
            raise DataError(
                f"{_where(p, lineno)}: link row has {len(fields)} columns, needs at least "
                f"{_NET_REQUIRED} ({', '.join(_NET_COLUMNS[:_NET_REQUIRED])}); missing: {missing}"
            )
        try:
            vals = [float(f) for f in fields[: len(_NET_COLUMNS)]]
        except ValueError:
            raise DataError(
                f"{_where(p, lineno)}: non-numeric value in link row {text!r}"
            ) from None
        vals += [0.0] * (len(_NET_COLUMNS) - len(vals))
        if not all(np.isfinite(vals)):
            raise DataError(f"{_where(p, lineno)}: NaN or infinite value in link row {text!r}")
        rows.append(vals)
        src_lines.append(lineno)

    if not rows:
        raise DataError(f"{p}: no link rows after the metadata block")
    arr = np.asarray(rows, dtype=np.float64)
    line_arr = np.asarray(src_lines, dtype=np.int64)
    if declared_links >= 0 and declared_links != len(rows):
        raise DataError(
            f"{p}: header declares <NUMBER OF LINKS> {declared_links} but the file has "
            f"{len(rows)} link rows; the file is truncated or the header is wrong"
        )

    init = arr[:, 0]
    term = arr[:, 1]
    checks = [
        ((init != np.round(init)) | (term != np.round(term)), "node ids must be integers"),
        ((init < 1) | (init > num_nodes), f"init node outside 1..{num_nodes}"),
        ((term < 1) | (term > num_nodes), f"term node outside 1..{num_nodes}"),
        (init == term, "self-loop (init node == term node)"),
        (arr[:, 2] <= 0, "capacity must be positive"),
        (arr[:, 4] < 0, "free-flow time must be non-negative"),
        (arr[:, 5] < 0, "B must be non-negative"),
        (arr[:, 6] < 0, "power must be non-negative"),
    ]
    for bad, what in checks:
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{_where(p, int(line_arr[k]))}: {what} (row: init={init[k]:g}, "
                f"term={term[k]:g}, capacity={arr[k, 2]:g}, free_flow_time={arr[k, 4]:g}, "
                f"b={arr[k, 5]:g}, power={arr[k, 6]:g}); fix the row"
            )

    return TNTPLinks(
        path=p,
        metadata=meta,
        num_nodes=num_nodes,
        num_zones=num_zones,
        first_thru_node=first_thru,
        init_node=init.astype(np.int64),
        term_node=term.astype(np.int64),
        capacity=arr[:, 2].copy(),
        length=arr[:, 3].copy(),
        free_flow_time=arr[:, 4].copy(),
        b=arr[:, 5].copy(),
        power=arr[:, 6].copy(),
        toll=arr[:, 8].copy(),
        link_type=arr[:, 9].astype(np.int64),
        lines=line_arr,
    )


_ORIGIN = re.compile(r"^\s*Origin\s+(\S+)\s*$", re.IGNORECASE)
_ENTRY = re.compile(r"^\s*(\S+)\s*:\s*(\S+?)\s*$")


def read_trips(path: str | os.PathLike, num_zones: int | None = None) -> TNTPTrips:
    """Read a TNTP trip table (``*_trips.tntp``) into a dense ``(zones, zones)`` array.

    ``num_zones`` (from the network file) overrides the trip file's ``<NUMBER OF ZONES>``
    when given; the two must agree. Negative or non-finite demand, zone ids out of range,
    entries before the first ``Origin`` line and duplicate OD entries are errors.
    """
    p, lines = _read_lines(path)
    meta, start = _split_metadata(p, lines)
    z_file = _meta_int(p, meta, "NUMBER OF ZONES", default=-1)
    if num_zones is None:
        if z_file < 0:
            raise DataError(f"{p}: metadata tag <NUMBER OF ZONES> missing")
        num_zones = z_file
    elif z_file >= 0 and z_file != num_zones:
        raise DataError(
            f"{p}: <NUMBER OF ZONES> {z_file} disagrees with the network's {num_zones} zones; "
            "pass the trip table that belongs to this network"
        )
    demand = np.zeros((num_zones, num_zones), dtype=np.float64)
    src = np.zeros((num_zones, num_zones), dtype=np.int64)
    origin = -1
    for i in range(start, len(lines)):
        text = lines[i].split("~", 1)[0].strip()
        if not text:
            continue
        lineno = i + 1
        m = _ORIGIN.match(text)
        if m is not None:
            try:
                origin = int(m.group(1))
            except ValueError:
                raise DataError(
                    f"{_where(p, lineno)}: origin id {m.group(1)!r} is not an integer"
                ) from None
            if not 1 <= origin <= num_zones:
                raise DataError(f"{_where(p, lineno)}: origin {origin} outside 1..{num_zones}")
            continue
        for chunk in text.split(";"):
            if not chunk.strip():
                continue
            e = _ENTRY.match(chunk)
            if e is None:
                raise DataError(
                    f"{_where(p, lineno)}: expected 'destination : flow;' entries, got "
                    f"{chunk.strip()!r}"
                )
            if origin < 0:
                raise DataError(f"{_where(p, lineno)}: OD entry before any 'Origin' line")
            try:
                dest = int(e.group(1))
                flow = float(e.group(2))
            except ValueError:
                raise DataError(
                    f"{_where(p, lineno)}: bad OD entry {chunk.strip()!r} (need int : number)"
                ) from None
            if not 1 <= dest <= num_zones:
                raise DataError(f"{_where(p, lineno)}: destination {dest} outside 1..{num_zones}")
            if not np.isfinite(flow) or flow < 0:
                raise DataError(
                    f"{_where(p, lineno)}: demand {origin}->{dest} = {flow} must be finite and "
                    "non-negative"
                )
            if src[origin - 1, dest - 1]:
                raise DataError(
                    f"{_where(p, lineno)}: duplicate OD entry {origin}->{dest} (first on line "
                    f"{src[origin - 1, dest - 1]})"
                )
            demand[origin - 1, dest - 1] = flow
            src[origin - 1, dest - 1] = lineno
    total = meta.get("TOTAL OD FLOW")
    if total is not None:
        try:
            declared = float(total.split()[0])
        except (ValueError, IndexError):
            declared = None
        if declared is not None and not np.isclose(declared, demand.sum(), rtol=1e-6, atol=1e-6):
            raise DataError(
                f"{p}: <TOTAL OD FLOW> {declared} but the entries sum to {demand.sum():.6f}; "
                "the file is truncated or edited"
            )
    return TNTPTrips(path=p, metadata=meta, num_zones=num_zones, demand=demand, lines=src)


def read_nodes(path: str | os.PathLike, num_nodes: int | None = None) -> np.ndarray:
    """Read a TNTP node-coordinate file into a ``(nodes, 2)`` array of (x, y)."""
    p, lines = _read_lines(path)
    rows: dict[int, tuple[float, float]] = {}
    for i, raw in enumerate(lines):
        text = raw.split("~", 1)[0].strip().rstrip(";").strip()
        if not text or not (text[0].isdigit() or text[0] == "-"):
            continue  # header line ("Node X Y ;") or metadata
        fields = text.split()
        if len(fields) < 3:
            raise DataError(f"{_where(p, i + 1)}: node row needs 'id x y', got {text!r}")
        try:
            rows[int(fields[0])] = (float(fields[1]), float(fields[2]))
        except ValueError:
            raise DataError(f"{_where(p, i + 1)}: bad node row {text!r}") from None
    n = num_nodes if num_nodes is not None else max(rows, default=0)
    missing = [k for k in range(1, n + 1) if k not in rows]
    if missing:
        raise DataError(f"{p}: coordinates missing for nodes {missing[:10]}")
    return np.asarray([rows[k] for k in range(1, n + 1)], dtype=np.float64)


def read_flow(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a best-known-solution flow file: returns (init, term, volume, cost), ids 1-based."""
    p, lines = _read_lines(path)
    out = []
    for i, raw in enumerate(lines):
        text = raw.split("~", 1)[0].strip().rstrip(";").strip()
        if not text or not text[0].isdigit():
            continue
        fields = text.split()
        if len(fields) < 3:
            raise DataError(f"{_where(p, i + 1)}: flow row needs 'from to volume [cost]'")
        try:
            out.append([float(f) for f in fields[:4]] + [np.nan] * (4 - len(fields[:4])))
        except ValueError:
            raise DataError(f"{_where(p, i + 1)}: bad flow row {text!r}") from None
    a = np.asarray(out, dtype=np.float64).reshape(-1, 4)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3]


def tntp_url(network: str, kind: str) -> str:
    """Canonical download URL of ``kind`` (``net``, ``trips``, ``node``, ``flow``) of a network."""
    key = network.lower()
    if key not in KNOWN_NETWORKS:
        raise ConfigError(
            f"unknown TNTP network {network!r}; known: {sorted(KNOWN_NETWORKS)}. "
            "For another network pass its file paths instead"
        )
    folder, prefix = KNOWN_NETWORKS[key]
    return f"{TNTP_BASE_URL}/{folder}/{prefix}_{kind}.tntp"


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_tntp(
    network: str,
    cache_dir: str | os.PathLike,
    kinds: tuple[str, ...] = ("net", "trips"),
    md5: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> dict[str, Path]:
    """Fetch TNTP files of a known network into ``cache_dir`` (kept there for next time).

    Returns ``{kind: path}``. Files already in the cache are not downloaded again. ``md5``
    maps kind to the expected checksum; a mismatch raises :class:`ChecksumError`.
    """
    folder, prefix = KNOWN_NETWORKS.get(network.lower(), (None, None))
    if folder is None:
        tntp_url(network, "net")  # raises the helpful ConfigError
    dest_dir = Path(cache_dir) / str(folder)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for kind in kinds:
        dest = dest_dir / f"{prefix}_{kind}.tntp"
        if not dest.is_file():
            url = tntp_url(network, kind)
            tmp = dest.with_suffix(".part")
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    fh.write(resp.read())
            except OSError as exc:
                raise DataError(
                    f"could not download {url} ({exc}); check the internet connection or put "
                    f"the file at {dest} yourself"
                ) from exc
            os.replace(tmp, dest)
        if md5 and kind in md5 and md5sum(dest) != md5[kind]:
            raise ChecksumError(
                f"{dest}: md5 {md5sum(dest)} != expected {md5[kind]}; delete it and re-download"
            )
        out[kind] = dest
    return out
