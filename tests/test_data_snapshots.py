"""to_snapshots: window k covers [t0 + k w, t0 + (k+1) w); dedup, multiplicity, means."""

import pytest
import torch

from dyngraph.data import EventStream
from dyngraph.datasets import SFHH, BitcoinOTC
from dyngraph.errors import ConfigError


def test_window_boundaries_synthetic():
    s = EventStream([0, 0, 1, 0, 2, 2], [1, 1, 2, 1, 0, 0], [10.0, 11.0, 12.0, 13.0, 14.0, 21.0],
                    msg=[[1.0], [3.0], [5.0], [7.0], [9.0], [2.0]],
                    label=[1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    seq = s.to_snapshots(window=3.0)  # [10,13) [13,16) [16,19) [19,22)
    assert len(seq) == 4 and seq.num_nodes == 3
    assert [(sn.t_start, sn.t_end) for sn in seq] == [(10, 13), (13, 16), (16, 19), (19, 22)]
    s0 = seq[0]
    assert s0.edge_index.tolist() == [[0, 1], [1, 2]]
    assert s0.edge_weight.tolist() == [2.0, 1.0]
    assert s0.edge_attr.view(-1).tolist() == [2.0, 5.0]  # mean of 1 and 3
    assert s0.edge_label.tolist() == [0.5, 1.0]
    assert s0.node_mask.tolist() == [True, True, True]
    assert seq[1].edge_index.tolist() == [[0, 2], [1, 0]]  # t=13 starts window 1
    assert seq[2].num_edges == 0 and not seq[2].node_mask.any()  # empty windows kept
    assert seq[3].node_mask.tolist() == [True, False, True]
    data = seq[0].to_pyg()
    assert data.num_nodes == 3 and torch.equal(data.edge_weight, s0.edge_weight)


@pytest.mark.parametrize("mode", ["window", "num"])
def test_every_event_in_its_window_real_data(mode):
    s = SFHH()
    if mode == "window":
        seq = s.to_snapshots(window=4 * 3600.0)
    else:
        seq = s.to_snapshots(num_snapshots=17)
    if mode == "num":
        assert len(seq) == 17
    w, t0 = seq.window, float(s.t[0])
    k = ((s.t - t0) / w).floor().long().clamp(max=len(seq) - 1)
    assert float(s.t[-1]) < seq[-1].t_end or mode == "num"
    total = 0
    for i, sn in enumerate(seq):
        assert sn.t_start == pytest.approx(t0 + i * w) and sn.t_end == pytest.approx(
            t0 + (i + 1) * w)
        ev = s[k == i]
        pairs = torch.unique(ev.src * s.num_nodes + ev.dst)
        got = sn.edge_index[0] * s.num_nodes + sn.edge_index[1]
        assert torch.equal(got, pairs)  # deduplicated and sorted
        total += int(sn.edge_weight.sum())
        active = torch.zeros(s.num_nodes, dtype=torch.bool)
        active[ev.src] = True
        active[ev.dst] = True
        assert torch.equal(sn.node_mask, active)
    assert total == s.num_events


def test_labels_are_mean_ratings():
    s = BitcoinOTC()
    seq = s.to_snapshots(num_snapshots=20)
    sn = seq[10]
    i = 0
    u, v = sn.edge_index[:, i].tolist()
    sel = (s.src == u) & (s.dst == v) & (s.t >= sn.t_start) & (s.t < sn.t_end)
    assert sn.edge_label[i] == pytest.approx(float(s.label[sel].mean()))
    assert sn.edge_weight[i] == int(sel.sum())


def test_arguments():
    s = EventStream([0], [1], [0.0])
    with pytest.raises(ConfigError):
        s.to_snapshots()
    with pytest.raises(ConfigError):
        s.to_snapshots(window=1.0, num_snapshots=2)
    with pytest.raises(ConfigError):
        s.to_snapshots(window=-1.0)
    assert len(s.to_snapshots(num_snapshots=3)) == 3
