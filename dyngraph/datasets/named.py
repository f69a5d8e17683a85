"""Named, md5-verified loaders for the bundled event-stream datasets."""

from __future__ import annotations

from pathlib import Path

from dyngraph.data.events import EventStream
from dyngraph.datasets.files import data_file
from dyngraph.datasets.loaders import load_events
from dyngraph.datasets.registry import DATASETS, resolve_name
from dyngraph.errors import DataError

__all__ = ["CollegeMsg", "UCI", "Wikipedia", "BitcoinOTC", "BitcoinAlpha", "SFHH",
           "get_events", "load_dataset"]

_CACHE: dict[tuple, EventStream] = {}


def _copy(s: EventStream) -> EventStream:
    # callers may modify tensors in place; never hand out the cached ones
    return s._derive(**{k: (v.clone() if v is not None else None)
                        for k, v in dict(src=s.src, dst=s.dst, t=s.t, msg=s.msg,
                                         label=s.label).items()})


def _named(name: str) -> EventStream:
    info = DATASETS[name]
    path = data_file(info.files[0])
    st = path.stat()
    key = (name, str(path), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = load_events(path, format=info.format or "auto", sort=info.sort,
                                  name=name)
    return _copy(_CACHE[key])


def CollegeMsg() -> EventStream:
    """UC Irvine online messages (SNAP CollegeMsg; "UCI" in EvolveGCN/DyGLib):
    59,835 directed messages among 1,899 students, Unix-second timestamps."""
    return _named("collegemsg")


UCI = CollegeMsg


def Wikipedia() -> EventStream:
    """JODIE Wikipedia edits, structure only: 157,474 user -> page events, 8,227 users
    then 1,000 pages (bipartite, ``item_offset=8227``), seconds since start."""
    return _named("wikipedia")


def BitcoinOTC() -> EventStream:
    """Bitcoin OTC who-trusts-whom: 35,592 rated edges, 5,881 nodes; ``label`` = rating in
    [-10, 10]; sorted by time (stable)."""
    return _named("bitcoin-otc")


def BitcoinAlpha() -> EventStream:
    """Bitcoin Alpha who-trusts-whom: 24,186 rated edges, 3,783 nodes; ``label`` = rating
    in [-10, 10]; the SNAP file is not time-ordered, so events are sorted (stable)."""
    return _named("bitcoin-alpha")


def SFHH() -> EventStream:
    """SocioPatterns SFHH conference: 70,261 face-to-face contacts (20 s resolution) among
    403 participants."""
    return _named("sfhh")


def get_events(name_or_path: str | Path, **kwargs) -> EventStream:
    """A bundled dataset by name ("uci"/"collegemsg", "wikipedia", "bitcoin-otc",
    "bitcoin-alpha", "sfhh") or any event file path (``kwargs`` go to
    :func:`~dyngraph.datasets.load_events`)."""
    key = resolve_name(str(name_or_path))
    if key is not None and DATASETS[key].kind == "events" and not kwargs:
        return _named(key)
    p = Path(name_or_path)
    if p.is_file():
        return load_events(p, **kwargs)
    known = ", ".join(n for n, d in DATASETS.items() if d.kind == "events")
    raise DataError(f"{name_or_path!r} is neither a bundled event dataset ({known}) nor an "
                    "existing file.")


def load_dataset(name: str):
    """Any bundled dataset by name: an EventStream, or a PyG ``Data`` for Cora/CiteSeer."""
    key = resolve_name(name)
    if key is None:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}.")
    kind = DATASETS[key].kind
    if kind == "events":
        return _named(key)
    if kind == "planetoid":
        from dyngraph.datasets.planetoid import load_planetoid

        return load_planetoid(key)
    raise DataError(f"{name!r} is a road network; load it with dyngraph.traffic "
                    f"(files: dyngraph.datasets.data_file({DATASETS[key].files[0]!r})).")
