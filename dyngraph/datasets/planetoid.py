"""Planetoid citation graphs (Cora, CiteSeer) with the standard split of Yang et al. 2016."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from dyngraph.datasets.files import data_file
from dyngraph.errors import DataError

__all__ = ["Cora", "CiteSeer", "load_planetoid", "read_planetoid"]

_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _dense(obj) -> np.ndarray:
    return np.asarray(obj.todense() if hasattr(obj, "todense") else obj, dtype=np.float32)


def read_planetoid(files: dict[str, Path], name: str):
    """Build a ``torch_geometric.data.Data`` from the eight ``ind.<name>.*`` files.

    The graph is symmetric in the source files; self-loops and duplicate edges are removed
    and edges sorted by (target, source), as PyG does. CiteSeer has 15 test-range node ids
    that are absent from ``test.index`` (isolated nodes without features): they get
    all-zero features, label 0 and no split mask, again as in PyG, so the graph keeps
    3,327 nodes.
    """
    from torch_geometric.data import Data

    obj = {}
    for part in _PARTS[:-1]:
        with open(files[part], "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's pickled csr class path is deprecated
            try:
                obj[part] = pickle.load(f, encoding="latin1")
            except Exception as e:  # pickle raises many types on corrupt input
                raise DataError(f"{files[part]}: not a Planetoid pickle ({e}).") from e
    test_index = np.loadtxt(files["test.index"], dtype=np.int64).reshape(-1)
    x, tx, allx = (_dense(obj[k]) for k in ("x", "tx", "allx"))
    y, ty, ally = (_dense(obj[k]) for k in ("y", "ty", "ally"))
    sorted_test = np.sort(test_index)
    lo = int(sorted_test[0])
    if name == "citeseer":
        span = int(sorted_test[-1]) - lo + 1
        tx_full = np.zeros((span, tx.shape[1]), np.float32)
        ty_full = np.zeros((span, ty.shape[1]), np.float32)
        tx_full[sorted_test - lo] = tx
        ty_full[sorted_test - lo] = ty
        tx, ty = tx_full, ty_full
    feats = np.concatenate([allx, tx])
    labels = np.concatenate([ally, ty]).argmax(1)
    # the test rows of tx follow test.index order; put each at its node id
    feats[test_index] = feats[sorted_test]
    labels[test_index] = labels[sorted_test]
    n = feats.shape[0]

    graph = obj["graph"]
    rows = np.fromiter((k for k, v in graph.items() for _ in v), dtype=np.int64)
    cols = np.fromiter((c for v in graph.values() for c in v), dtype=np.int64)
    keep = rows != cols
    key = np.unique(cols[keep] * n + rows[keep])  # sorted by (target, source), deduplicated
    edge_index = torch.from_numpy(np.stack([key % n, key // n]))

    def mask(idx) -> torch.Tensor:
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.as_tensor(idx, dtype=torch.long)] = True
        return m

    data = Data(x=torch.from_numpy(feats), edge_index=edge_index,
                y=torch.from_numpy(labels.astype(np.int64)))
    data.train_mask = mask(np.arange(y.shape[0]))
    data.val_mask = mask(np.arange(y.shape[0], y.shape[0] + 500))
    data.test_mask = mask(test_index)
    data.name = {"cora": "Cora", "citeseer": "CiteSeer"}[name]
    return data


def load_planetoid(name: str):
    """``"cora"`` or ``"citeseer"`` from the bundled (md5-verified) files."""
    key = name.lower()
    if key not in ("cora", "citeseer"):
        raise DataError(f"unknown Planetoid dataset {name!r}; bundled: cora, citeseer.")
    files = {p: data_file(f"planetoid/ind.{key}.{p}") for p in _PARTS}
    return read_planetoid(files, key)


def Cora():
    """Cora: 2,708 papers, 1,433 binary word features, 7 classes, 140/500/1000 split."""
    return load_planetoid("cora")


def CiteSeer():
    """CiteSeer: 3,327 papers, 3,703 features, 6 classes, 120/500/1000 split."""
    return load_planetoid("citeseer")
