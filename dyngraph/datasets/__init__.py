"""Loaders for real graph data: event files, the bundled md5-verified datasets, Planetoid."""

from __future__ import annotations

from dyngraph.datasets.files import cache_dir, data_dirs, data_file, download, md5sum
from dyngraph.datasets.loaders import FORMATS, detect_format, load_events
from dyngraph.datasets.named import (
    SFHH,
    UCI,
    BitcoinAlpha,
    BitcoinOTC,
    CollegeMsg,
    Wikipedia,
    get_events,
    load_dataset,
)
from dyngraph.datasets.planetoid import CiteSeer, Cora, load_planetoid, read_planetoid
from dyngraph.datasets.registry import DATASETS, FILES, DatasetInfo, FileInfo, resolve_name

__all__ = [
    "load_events",
    "detect_format",
    "FORMATS",
    "CollegeMsg",
    "UCI",
    "Wikipedia",
    "BitcoinOTC",
    "BitcoinAlpha",
    "SFHH",
    "Cora",
    "CiteSeer",
    "load_planetoid",
    "read_planetoid",
    "get_events",
    "load_dataset",
    "data_file",
    "data_dirs",
    "cache_dir",
    "download",
    "md5sum",
    "DATASETS",
    "FILES",
    "DatasetInfo",
    "FileInfo",
    "resolve_name",
]
