"""Chronological split with held-out new nodes (TGN/DyGLib protocol) on real CollegeMsg."""

import numpy as np
import pytest
import torch

from dyngraph.data import EventStream
from dyngraph.datasets import CollegeMsg
from dyngraph.errors import ConfigError


@pytest.fixture(scope="module")
def uci():
    return CollegeMsg()


def test_thresholds_are_time_quantiles(uci):
    sp = uci.split()
    qv, qt = np.quantile(uci.t.numpy(), [0.70, 0.85])
    assert sp.val_time == pytest.approx(qv) and sp.test_time == pytest.approx(qt)
    assert (sp.val.t > qv).all() and (sp.val.t <= qt).all()
    assert (sp.test.t > qt).all() and (sp.train.t <= qv).all()
    # val/test are exactly the events after the thresholds
    assert sp.val.num_events == int(((uci.t > qv) & (uci.t <= qt)).sum())
    assert sp.test.num_events == int((uci.t > qt).sum())


def test_new_nodes_are_unseen_in_train(uci):
    sp = uci.split(seed=3)
    n = uci.num_nodes
    in_train = torch.zeros(n, dtype=torch.bool)
    in_train[sp.train.src] = True
    in_train[sp.train.dst] = True
    assert torch.equal(sp.new_node_mask, uci.active_nodes() & ~in_train)
    # at least the held-out 10% of nodes are new, and every one of them occurs after val_time
    assert int(sp.new_node_mask.sum()) >= int(0.1 * n)
    later = torch.zeros(n, dtype=torch.bool)
    later[uci.src[uci.t > sp.val_time]] = True
    later[uci.dst[uci.t > sp.val_time]] = True
    # a new node absent after val_time lost all its training events to held-out partners
    for v in (sp.new_node_mask & ~later).nonzero().view(-1).tolist():
        ev = (uci.src == v) | (uci.dst == v)
        other = torch.where(uci.src[ev] == v, uci.dst[ev], uci.src[ev])
        assert (sp.new_node_mask[other] & later[other]).all()
    # train keeps every pre-threshold event except those touching a held-out node
    early = uci[uci.t <= sp.val_time]
    held_touch = sp.new_node_mask[early.src] | sp.new_node_mask[early.dst]
    assert sp.train.num_events == int((~held_touch).sum())
    # inductive masks: events touching a new node
    assert torch.equal(sp.test_inductive, sp.new_node_mask[sp.test.src]
                       | sp.new_node_mask[sp.test.dst])
    assert 0 < int(sp.test_inductive.sum()) < sp.test.num_events


def test_seeded_and_reproducible(uci):
    a, b, c = uci.split(seed=1), uci.split(seed=1), uci.split(seed=2)
    assert torch.equal(a.new_node_mask, b.new_node_mask)
    assert torch.equal(a.train.t, b.train.t)
    assert not torch.equal(a.new_node_mask, c.new_node_mask)


def test_no_new_nodes_option():
    s = EventStream([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], [1, 2, 0] * 3 + [1], torch.arange(10.0))
    sp = s.split(new_node_ratio=0.0)
    assert sp.new_node_mask.sum() == 0 and sp.train.num_events == 7


def test_bad_ratios():
    s = EventStream([0, 1], [1, 0], [0.0, 1.0])
    with pytest.raises(ConfigError):
        s.split(val_ratio=0.6, test_ratio=0.5)
    with pytest.raises(ConfigError):
        s.split(new_node_ratio=1.0)
