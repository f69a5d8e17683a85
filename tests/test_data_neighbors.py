"""TemporalNeighborIndex against a brute-force scan of real CollegeMsg events."""

import numpy as np
import pytest
import torch

from dyngraph.data import EventStream, TemporalNeighborIndex
from dyngraph.data.neighbors import _native_ok
from dyngraph.datasets import CollegeMsg
from dyngraph.errors import DataError, ShapeError


@pytest.fixture(scope="module")
def uci():
    return CollegeMsg()


# the time query has a native kernel (kernels/temporal_neighbors.cpp) and a PyTorch path
@pytest.fixture(params=["native", "torch"])
def path(request):
    if request.param == "native" and not _native_ok():
        pytest.skip("native extension unavailable")
    return request.param


def _index(stream, path, **kw):
    index = TemporalNeighborIndex(stream, **kw)
    index._native = path == "native"
    return index


def _brute(src, dst, t, node, time_, k, undirected, before_eid=None):
    """Full scan: every incident event before the cut, newest first, first k."""
    visible = np.arange(len(t)) < before_eid if before_eid is not None else t < time_
    out = [(int(dst[e]), int(e), float(t[e])) for e in np.flatnonzero(visible & (src == node))]
    if undirected:
        out += [(int(src[e]), int(e), float(t[e]))
                for e in np.flatnonzero(visible & (dst == node))]
    out.sort(key=lambda r: -r[1])
    return out[:k]


def _check(block, refs, k):
    assert block.nbr.shape == (len(refs), k)
    for i, ref in enumerate(refs):
        m = block.mask[i]
        assert int(m.sum()) == len(ref)
        got = list(zip(block.nbr[i][m].tolist(), block.eid[i][m].tolist(),
                       block.t[i][m].tolist()))
        # entries of one event (self-loop) may come in either order; compare as multisets
        # per event id, and require event ids in non-increasing order
        assert sorted(got) == sorted(ref)
        eids = block.eid[i][m].tolist()
        assert eids == sorted(eids, reverse=True)
        assert (block.eid[i][~m] == -1).all() and (block.nbr[i][~m] == 0).all()


@pytest.mark.parametrize("undirected", [True, False])
def test_matches_brute_force_on_collegemsg(uci, undirected, path):
    src, dst, t = uci.src.numpy(), uci.dst.numpy(), uci.t.numpy()
    index = _index(uci, path, undirected=undirected)
    rng = np.random.default_rng(0)
    ev = rng.integers(0, uci.num_events, 150)
    # query the endpoints of real events at their own time (the model's pattern), plus
    # random nodes at random times, and times exactly equal to event times (strictness)
    nodes = np.concatenate([src[ev], dst[ev], rng.integers(0, uci.num_nodes, 50)])
    times = np.concatenate([t[ev], t[ev], rng.uniform(t[0] - 10, t[-1] + 10, 50)])
    k = 7
    block = index.query(torch.from_numpy(nodes), torch.from_numpy(times), k)
    refs = [_brute(src, dst, t, n, tt, k, undirected) for n, tt in zip(nodes, times)]
    _check(block, refs, k)
    assert block.mask.any(1).float().mean() > 0.5  # the sample is not trivially empty


def test_query_before_event_matches_brute_force(uci):
    src, dst, t = uci.src.numpy(), uci.dst.numpy(), uci.t.numpy()
    index = TemporalNeighborIndex(uci)
    rng = np.random.default_rng(1)
    ev = rng.integers(0, uci.num_events, 100)
    block = index.query_before_event(torch.from_numpy(src[ev]), torch.from_numpy(ev), 5)
    refs = [_brute(src, dst, t, n, None, 5, True, before_eid=e) for n, e in zip(src[ev], ev)]
    _check(block, refs, 5)


def test_strictly_before_and_ties(path):
    s = EventStream([0, 0, 0, 1], [1, 2, 3, 0], [1.0, 2.0, 2.0, 3.0])
    idx = _index(s, path)
    b = idx.query(torch.tensor([0, 0, 0]), torch.tensor([2.0, 2.5, 10.0]), 3)
    assert b.nbr[0].tolist() == [1, 0, 0] and b.mask[0].tolist() == [True, False, False]
    assert b.nbr[1].tolist() == [3, 2, 1]  # tie at t=2 broken by event order, newest first
    assert b.eid[2].tolist() == [3, 2, 1] and b.t[2].tolist() == [3.0, 2.0, 2.0]
    assert idx.degree(torch.tensor([0, 1, 3])).tolist() == [4, 2, 1]
    assert idx.degree(torch.tensor([0]), torch.tensor([2.0])).tolist() == [1]
    # scalar time broadcasts; a time before everything gives an all-padding block
    e = idx.query(torch.tensor([0, 1]), 0.0, 2)
    assert not e.mask.any() and (e.eid == -1).all()


def test_directed_index_only_sees_out_neighbours(path):
    s = EventStream([0, 1], [1, 2], [1.0, 2.0])
    idx = _index(s, path, undirected=False)
    b = idx.query(torch.tensor([1, 2]), torch.tensor([9.0, 9.0]), 2)
    assert b.nbr[0].tolist() == [2, 0] and not b.mask[1].any()


def test_empty_stream_and_shape_errors(path):
    s = EventStream(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long),
                    torch.empty(0), num_nodes=3)
    b = _index(s, path).query(torch.tensor([0, 2]), torch.tensor([1.0, 1.0]), 4)
    assert b.nbr.shape == (2, 4) and not b.mask.any()
    idx = _index(EventStream([0], [1], [0.0]), path)
    with pytest.raises(ShapeError):
        idx.query(torch.tensor([0, 1]), torch.tensor([1.0, 2.0, 3.0]), 2)
    with pytest.raises(DataError, match="query nodes"):
        idx.query(torch.tensor([0, 5]), torch.tensor([1.0, 2.0]), 2)
    with pytest.raises(ShapeError):
        idx.query(torch.tensor([0]), torch.tensor([1.0]), -1)


def test_native_and_torch_paths_agree_exactly(uci):
    if not _native_ok():
        pytest.skip("native extension unavailable")
    nat, ref = _index(uci, "native"), _index(uci, "torch")
    g = torch.Generator().manual_seed(0)
    nodes = torch.randint(0, uci.num_nodes, (500,), generator=g)
    t = uci.t[torch.randint(0, uci.num_events, (500,), generator=g)]
    t = torch.cat([t[:250], t[250:] + torch.randn(250, generator=g, dtype=torch.float64) * 1e4])
    for k in (0, 1, 10):
        for a, b in zip(nat.query(nodes, t, k), ref.query(nodes, t, k)):
            assert a.dtype == b.dtype and torch.equal(a, b)
