"""What dyngraph knows about each data file: md5 of the bundled copy, canonical URL, and how
the canonical download becomes the bundled bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FileInfo", "DatasetInfo", "FILES", "DATASETS", "resolve_name"]

_SNAP = "https://snap.stanford.edu/data/"
_PLANETOID = "https://github.com/kimiyoung/planetoid/raw/master/data/"
_TNTP = "https://raw.githubusercontent.com/bstabler/TransportationNetworks/master/"


@dataclass(frozen=True)
class FileInfo:
    """One data file.

    Attributes:
        relpath: path below the data directory, e.g. ``"temporal/CollegeMsg.txt"``.
        md5: checksum of the file as dyngraph ships / stores it.
        url: canonical public source, or None when the file is derived (then it cannot be
            downloaded, only supplied by the user).
        gzip: the download is gzip-compressed.
        header: a first line dyngraph's copy adds to the canonical file (Bitcoin, SFHH).
        source: one-line provenance for ``dyngraph datasets``.
    """

    relpath: str
    md5: str
    url: str | None = None
    gzip: bool = False
    header: str | None = None
    source: str = ""


def _planetoid(name: str, md5s: dict[str, str]) -> dict[str, FileInfo]:
    return {
        f"planetoid/ind.{name}.{suf}": FileInfo(
            f"planetoid/ind.{name}.{suf}", md5, _PLANETOID + f"ind.{name}.{suf}",
            source="Planetoid split, Yang, Cohen & Salakhutdinov 2016 (MIT)")
        for suf, md5 in md5s.items()
    }


_FILE_LIST = [
    FileInfo("temporal/CollegeMsg.txt", "cac6751a872aa91d1d1fe24cede118dd",
             _SNAP + "CollegeMsg.txt.gz", gzip=True,
             source="SNAP CollegeMsg (Panzarasa et al. 2009)"),
    FileInfo("temporal/ml_wikipedia.txt", "8900a7edde56bbdf75513eeff6a2ca65", None,
             source="JODIE Wikipedia edits (Kumar et al. 2019), TGN/DyGLib ids, structure only"),
    FileInfo("temporal/soc-sign-bitcoinotc.csv", "b676be522d5e793cf7d29222c63b0b14",
             _SNAP + "soc-sign-bitcoinotc.csv.gz", gzip=True, header="from,to,feature,time",
             source="SNAP Bitcoin OTC trust network (Kumar et al. 2016)"),
    FileInfo("temporal/soc-sign-bitcoinalpha.csv", "63077333ef29064c7229480cb23d38d7",
             _SNAP + "soc-sign-bitcoinalpha.csv.gz", gzip=True, header="from,to,feature,time",
             source="SNAP Bitcoin Alpha trust network (Kumar et al. 2016)"),
    FileInfo("temporal/SFHH_conference.csv", "29ccb20ec2a23ec27a70c87741d7ad01",
             "http://www.sociopatterns.org/wp-content/uploads/2018/12/tij_SFHH.dat_.gz",
             gzip=True, header="time from to",
             source="SocioPatterns SFHH conference contacts (Genois & Barrat 2018)"),
    FileInfo("transport/SiouxFalls/SiouxFalls_net.tntp", "e8c6a06163749bdb157e5311b30bab11",
             _TNTP + "SiouxFalls/SiouxFalls_net.tntp",
             source="Transportation Networks for Research (academic use)"),
    FileInfo("transport/SiouxFalls/SiouxFalls_trips.tntp", "a11ad1105961eed913b2eb744db9bc48",
             _TNTP + "SiouxFalls/SiouxFalls_trips.tntp",
             source="Transportation Networks for Research (academic use)"),
    FileInfo("transport/SiouxFalls/SiouxFalls_flow.tntp", "824593a3f6a75a5a1c8100f1c6a20f94",
             _TNTP + "SiouxFalls/SiouxFalls_flow.tntp",
             source="Transportation Networks for Research (academic use)"),
    FileInfo("transport/SiouxFalls/SiouxFalls_node.tntp", "812ef7758f9ad710aac78c36648c2fd2",
             _TNTP + "SiouxFalls/SiouxFalls_node.tntp",
             source="Transportation Networks for Research (academic use)"),
    FileInfo("transport/Eastern-Massachusetts/EMA_net.tntp", "5d6131b5c784f4e08d8b0b24c488dabd",
             _TNTP + "Eastern-Massachusetts/EMA_net.tntp",
             source="Transportation Networks for Research (academic use); not bundled"),
    FileInfo("transport/Eastern-Massachusetts/EMA_trips.tntp",
             "267d274ff8586645981ec1ebb837839b",
             _TNTP + "Eastern-Massachusetts/EMA_trips.tntp",
             source="Transportation Networks for Research (academic use); not bundled"),
]

FILES: dict[str, FileInfo] = {f.relpath: f for f in _FILE_LIST}
FILES.update(_planetoid("cora", {
    "allx": "c9083193a57057dd1238321e140194d7", "ally": "125d70817fe1fdbfdcad991995e81579",
    "graph": "b37c419cec179f45834467630c278e4c", "test.index": "9b822cae1d01f41e8bf8782e20367c0e",
    "tx": "b29c36916768e1d2f55391c1aa9317ac", "ty": "48bf43f54fa5b86089a4bd0299795f10",
    "x": "190831eee19d8f330d89d94b40a65c5a", "y": "78344284e3ff7fd24eb9c307d51351eb",
}))
FILES.update(_planetoid("citeseer", {
    "allx": "28486b4b9c4ee076b4eee2febd89ba86", "ally": "f0df7e5f859245e32987bfd224d01657",
    "graph": "5f88483d5f5cc2b26b987bbbfb695005", "test.index": "70af39d4dff8aaa5c63f8dc526b16534",
    "tx": "c25ab826a7e95c0922ab625de705f7df", "ty": "356894a73b7a7eff43c3580f2fcf92a4",
    "x": "baeb0100b5a8af8d41f928113ce0a4e5", "y": "8b99f50aa950fbbf9a7a2b71ff9cac97",
}))


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: its files, loader format and the published size it must match."""

    name: str
    kind: str  # "events" | "planetoid" | "tntp"
    files: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    format: str | None = None
    sort: bool = False
    num_events: int | None = None
    num_nodes: int | None = None
    citation: str = ""
    extra: dict = field(default_factory=dict)


_PLANETOID_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("collegemsg", "events", ("temporal/CollegeMsg.txt",), ("uci", "college-msg"),
                "snap", num_events=59_835, num_nodes=1_899,
                citation="Panzarasa, Opsahl & Carley, JASIST 2009; SNAP"),
    DatasetInfo("wikipedia", "events", ("temporal/ml_wikipedia.txt",),
                ("ml-wikipedia", "jodie-wikipedia"), "jodie-txt", num_events=157_474,
                num_nodes=9_227,
                citation="Kumar, Zhang & Leskovec, KDD 2019 (JODIE)"),
    DatasetInfo("bitcoin-otc", "events", ("temporal/soc-sign-bitcoinotc.csv",),
                ("bitcoinotc", "bc-otc", "otc"), "bitcoin", sort=True, num_events=35_592,
                num_nodes=5_881, citation="Kumar et al., ICDM 2016; SNAP"),
    DatasetInfo("bitcoin-alpha", "events", ("temporal/soc-sign-bitcoinalpha.csv",),
                ("bitcoinalpha", "bc-alpha", "alpha"), "bitcoin", sort=True,
                num_events=24_186, num_nodes=3_783, citation="Kumar et al., ICDM 2016; SNAP"),
    DatasetInfo("sfhh", "events", ("temporal/SFHH_conference.csv",), ("sfhh-conference",),
                "sociopatterns", num_events=70_261, num_nodes=403,
                citation="Genois & Barrat, EPJ Data Science 2018; SocioPatterns"),
    DatasetInfo("cora", "planetoid",
                tuple(f"planetoid/ind.cora.{s}" for s in _PLANETOID_SUFFIXES),
                num_nodes=2_708, citation="Yang, Cohen & Salakhutdinov, ICML 2016"),
    DatasetInfo("citeseer", "planetoid",
                tuple(f"planetoid/ind.citeseer.{s}" for s in _PLANETOID_SUFFIXES),
                num_nodes=3_327, citation="Yang, Cohen & Salakhutdinov, ICML 2016"),
    DatasetInfo("siouxfalls", "tntp",
                tuple(f"transport/SiouxFalls/SiouxFalls_{s}.tntp"
                      for s in ("net", "trips", "flow", "node")), ("sioux-falls",),
                num_nodes=24, citation="Transportation Networks for Research Core Team"),
    DatasetInfo("eastern-massachusetts", "tntp",
                ("transport/Eastern-Massachusetts/EMA_net.tntp",
                 "transport/Eastern-Massachusetts/EMA_trips.tntp"), ("ema",),
                num_nodes=74, citation="Transportation Networks for Research Core Team"),
]}

_ALIASES = {a: d.name for d in DATASETS.values() for a in (d.name, *d.aliases)}


def resolve_name(name: str) -> str | None:
    """Canonical dataset name for ``name`` (case, ``_`` and spaces ignored), else None."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(key) or _ALIASES.get(key.replace("-", ""))
