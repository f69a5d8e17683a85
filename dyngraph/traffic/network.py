"""TrafficNetwork: directed links with BPR parameters, zones and an OD demand matrix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dyngraph.errors import ChecksumError, ConfigError, DataError, ShapeError
from dyngraph.traffic import tntp

__all__ = ["TrafficNetwork", "sioux_falls", "load_network", "datasets_root"]


@dataclass(frozen=True, eq=False)
class TrafficNetwork:
    """A road network for static traffic assignment.

    Node ids are 0-based here (TNTP id − 1); zones are nodes ``0..num_zones-1``. Zones with
    TNTP id below ``first_thru_node`` are centroids: trips start and end there but no path
    passes through them.

    Attributes:
        init, term: ``(E,)`` int64 tail/head of each directed link.
        capacity, free_flow_time, b, power: ``(E,)`` BPR parameters,
            ``t = t0 * (1 + b * (v/c)**power)``.
        demand: ``(Z, Z)`` OD demand (vehicles per period), zero diagonal allowed.
        coords: optional ``(N, 2)`` node coordinates used for plotting.
    """

    num_nodes: int
    num_zones: int
    first_thru_node: int
    init: np.ndarray
    term: np.ndarray
    capacity: np.ndarray
    free_flow_time: np.ndarray
    b: np.ndarray
    power: np.ndarray
    demand: np.ndarray
    length: np.ndarray | None = None
    toll: np.ndarray | None = None
    coords: np.ndarray | None = None
    name: str = "network"
    # Provenance for error messages: trips file and the source line of every OD entry.
    trips_path: Path | None = field(default=None, repr=False)
    demand_lines: np.ndarray | None = field(default=None, repr=False)
    net_path: Path | None = field(default=None, repr=False)
    link_lines: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        e = self.init.shape[0]
        for nm in ("term", "capacity", "free_flow_time", "b", "power"):
            if getattr(self, nm).shape != (e,):
                raise ShapeError(f"TrafficNetwork.{nm} has shape {getattr(self, nm).shape}, "
                                 f"expected ({e},) like init")
        if self.demand.shape != (self.num_zones, self.num_zones):
            raise ShapeError(f"demand has shape {self.demand.shape}, expected "
                             f"({self.num_zones}, {self.num_zones}) (zones x zones)")
        if e and (self.init.min() < 0 or max(self.init.max(), self.term.max()) >= self.num_nodes):
            raise DataError(f"link endpoints must be in 0..{self.num_nodes - 1}")
        if not np.all(np.isfinite(self.capacity)) or np.any(self.capacity <= 0):
            raise DataError("capacity must be finite and positive on every link")
        if not np.all(np.isfinite(self.demand)) or np.any(self.demand < 0):
            raise DataError("demand must be finite and non-negative")
        if self.coords is not None and self.coords.shape != (self.num_nodes, 2):
            raise ShapeError(f"coords has shape {self.coords.shape}, expected "
                             f"({self.num_nodes}, 2)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_tntp(
        cls,
        net: str | os.PathLike,
        trips: str | os.PathLike,
        nodes: str | os.PathLike | None = None,
        name: str | None = None,
    ) -> TrafficNetwork:
        """Load from TNTP network and trip files (and optionally node coordinates)."""
        links = tntp.read_net(net)
        tr = tntp.read_trips(trips, num_zones=links.num_zones)
        coords = tntp.read_nodes(nodes, links.num_nodes) if nodes is not None else None
        if name is None:
            name = Path(net).name.replace("_net.tntp", "").replace(".tntp", "")
        return cls(
            num_nodes=links.num_nodes,
            num_zones=links.num_zones,
            first_thru_node=links.first_thru_node,
            init=links.init_node - 1,
            term=links.term_node - 1,
            capacity=links.capacity,
            free_flow_time=links.free_flow_time,
            b=links.b,
            power=links.power,
            demand=tr.demand,
            length=links.length,
            toll=links.toll,
            coords=coords,
            name=name,
            trips_path=tr.path,
            demand_lines=tr.lines,
            net_path=links.path,
            link_lines=links.lines,
        )

    # ------------------------------------------------------------------ properties
    @property
    def num_links(self) -> int:
        """Number of links ``E``."""
        return int(self.init.shape[0])

    @property
    def total_demand(self) -> float:
        """Total trips of the OD matrix."""
        return float(self.demand.sum())

    @property
    def edge_index(self):
        """``(2, E)`` torch.long tensor (PyG convention) of the directed links."""
        import torch

        return torch.as_tensor(np.stack([self.init, self.term]), dtype=torch.long)

    def link_id(self, init: int, term: int) -> int:
        """0-based index of the link ``init -> term`` (0-based node ids)."""
        hit = np.flatnonzero((self.init == init) & (self.term == term))
        if hit.size == 0:
            raise ConfigError(f"no link {init + 1}->{term + 1} (TNTP ids) in {self.name}")
        return int(hit[0])

    def with_(self, *, capacity=None, demand=None, free_flow_time=None) -> TrafficNetwork:
        """A copy with some arrays replaced (validated like the original)."""
        kw = {}
        if capacity is not None:
            kw["capacity"] = np.asarray(capacity, dtype=np.float64)
        if demand is not None:
            kw["demand"] = np.asarray(demand, dtype=np.float64)
        if free_flow_time is not None:
            kw["free_flow_time"] = np.asarray(free_flow_time, dtype=np.float64)
        return replace(self, **kw)

    def __repr__(self) -> str:
        return (f"TrafficNetwork(name={self.name!r}, nodes={self.num_nodes}, "
                f"links={self.num_links}, zones={self.num_zones}, "
                f"first_thru_node={self.first_thru_node}, demand={self.total_demand:.6g})")


# ---------------------------------------------------------------------- bundled data
_SIOUX_FILES = ("SiouxFalls_net.tntp", "SiouxFalls_trips.tntp", "SiouxFalls_node.tntp",
                "SiouxFalls_flow.tntp")

#: Sioux Falls best-known UE (TransportationNetworks ``SiouxFalls_flow.tntp``).
SIOUX_FALLS_BEST_TSTT = 7_480_225.34
SIOUX_FALLS_BEST_BECKMANN = 4_231_335.287


def datasets_root() -> Path:
    """Folder of bundled data: ``$DYNGRAPH_DATA`` if set, else ``<repo>/datasets``."""
    env = os.environ.get("DYNGRAPH_DATA")
    if env:
        return Path(env)
    import dyngraph

    return Path(dyngraph.__file__).resolve().parents[1] / "datasets"


def _verify_md5(root: Path, rel: str) -> None:
    sums = root / "MD5SUMS"
    if not sums.is_file():
        return  # a user-provided data folder without sums: nothing to verify against
    want = None
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("./") == rel:
            want = parts[0]
    if want is None:
        return
    got = tntp.md5sum(root / rel)
    if got != want:
        raise ChecksumError(f"{root / rel}: md5 {got} != {want} in {sums}; the bundled file "
                            "was modified, restore it from git")


def sioux_falls(with_coords: bool = True, verify: bool = True) -> TrafficNetwork:
    """The bundled Sioux Falls network (24 nodes, 76 links, 360,600 trips).

    Source: Transportation Networks for Research Core Team, *Transportation Networks for
    Research*, https://github.com/bstabler/TransportationNetworks.
    """
    root = datasets_root()
    folder = root / "transport" / "SiouxFalls"
    if not (folder / _SIOUX_FILES[0]).is_file():
        raise DataError(f"Sioux Falls files not found under {folder}; set DYNGRAPH_DATA to the "
                        "folder holding transport/SiouxFalls")
    if verify:
        for f in _SIOUX_FILES[:3]:
            _verify_md5(root, f"transport/SiouxFalls/{f}")
    return TrafficNetwork.from_tntp(
        folder / _SIOUX_FILES[0], folder / _SIOUX_FILES[1],
        folder / _SIOUX_FILES[2] if with_coords else None, name="SiouxFalls",
    )


def sioux_falls_best_flows(network: TrafficNetwork | None = None) -> np.ndarray:
    """Best-known UE link flows of Sioux Falls, aligned with ``network``'s link order."""
    net = network if network is not None else sioux_falls(with_coords=False)
    root = datasets_root()
    path = root / "transport" / "SiouxFalls" / _SIOUX_FILES[3]
    _verify_md5(root, f"transport/SiouxFalls/{_SIOUX_FILES[3]}")
    i, j, vol, _ = tntp.read_flow(path)
    out = np.full(net.num_links, np.nan)
    for a, b_, v in zip(i - 1, j - 1, vol):
        out[net.link_id(int(a), int(b_))] = v
    return out


def _find_in_dir(folder: Path, kind: str) -> Path | None:
    hits = sorted(folder.glob(f"*_{kind}.tntp"))
    return hits[0] if hits else None


def load_network(
    network: str | os.PathLike,
    trips: str | os.PathLike | None = None,
    nodes: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> TrafficNetwork:
    """Load a network by name or path.

    ``network`` is ``"sioux-falls"`` (bundled), a folder holding ``*_net.tntp`` and
    ``*_trips.tntp`` (and optionally ``*_node.tntp``), a ``*_net.tntp`` path (the trip file
    is found next to it), or a known repository name (``"eastern-massachusetts"``, ...)
    which is looked up in ``cache_dir`` and fetched from the TransportationNetworks
    repository when ``download=True``.
    """
    key = str(network).lower().replace("_", "-")
    if key in ("sioux-falls", "siouxfalls") and trips is None:
        return sioux_falls()
    p = Path(network)
    if p.is_dir():
        net = _find_in_dir(p, "net")
        if net is None:
            raise DataError(f"{p}: no *_net.tntp file in this folder")
        trips = trips or _find_in_dir(p, "trips")
        nodes = nodes or _find_in_dir(p, "node")
        if trips is None:
            raise DataError(f"{p}: no *_trips.tntp file in this folder; pass trips=")
        return TrafficNetwork.from_tntp(net, trips, nodes)
    if p.is_file():
        if trips is None:
            guess = p.with_name(p.name.replace("_net.tntp", "_trips.tntp"))
            if guess == p or not guess.is_file():
                raise DataError(f"{p}: cannot find its trip table; pass trips=")
            trips = guess
        if nodes is None:
            guess = p.with_name(p.name.replace("_net.tntp", "_node.tntp"))
            nodes = guess if guess != p and guess.is_file() else None
        return TrafficNetwork.from_tntp(p, trips, nodes)
    if key in tntp.KNOWN_NETWORKS:
        if cache_dir is None:
            raise DataError(f"network {network!r} is not bundled; pass cache_dir= (and "
                            "download=True if it is not there yet) or a path to its files")
        folder, prefix = tntp.KNOWN_NETWORKS[key]
        d = Path(cache_dir) / folder
        if not (d / f"{prefix}_net.tntp").is_file() or not (d / f"{prefix}_trips.tntp").is_file():
            if not download:
                raise DataError(f"{d}: {prefix}_net.tntp / {prefix}_trips.tntp not cached; pass "
                                f"download=True to fetch {tntp.tntp_url(key, 'net')}")
            tntp.download_tntp(key, cache_dir)
        node = d / f"{prefix}_node.tntp"
        return TrafficNetwork.from_tntp(d / f"{prefix}_net.tntp", d / f"{prefix}_trips.tntp",
                                        node if node.is_file() else None, name=folder)
    raise DataError(f"{network!r} is neither a path nor a known network "
                    f"(sioux-falls, {', '.join(sorted(tntp.KNOWN_NETWORKS))})")
