"""Planetoid Cora/CiteSeer from the bundled pickles equal PyG's own reader on the same files."""

import pytest
import torch
from torch_geometric.io import read_planetoid_data

import dyngraph.datasets as D
from dyngraph.datasets.files import data_file


@pytest.mark.parametrize("name, nodes, classes, feats, train",
                         [("cora", 2708, 7, 1433, 140), ("citeseer", 3327, 6, 3703, 120)])
def test_planetoid_equals_pyg(name, nodes, classes, feats, train):
    data = D.load_planetoid(name)
    ref = read_planetoid_data(str(data_file(f"planetoid/ind.{name}.x").parent), name)
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], ref[key]), key
    assert data.num_nodes == nodes and int(data.y.max()) + 1 == classes
    assert data.x.size(1) == feats
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()),
            int(data.test_mask.sum())) == (train, 500, 1000)
    assert not (data.train_mask & data.test_mask).any()
    assert data.is_undirected() and not data.has_self_loops()


def test_citeseer_isolated_test_nodes():
    data = D.CiteSeer()
    # 15 ids in the test range are missing from test.index: zero features, in no split
    lo = int(data.test_mask.nonzero().min())
    hole = torch.zeros(data.num_nodes, dtype=torch.bool)
    hole[lo:] = True
    hole &= ~data.test_mask
    assert int(hole.sum()) == 15
    assert (data.x[hole] == 0).all()
    assert not (data.train_mask | data.val_mask)[hole].any()
    assert D.Cora().name == "Cora" and data.name == "CiteSeer"
