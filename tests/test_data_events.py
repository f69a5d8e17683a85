"""EventStream: validation names the first bad row; slicing, batching, views."""

import pytest
import torch

from dyngraph.data import EventStream
from dyngraph.errors import DataError


def _stream(**kw):
    src = torch.tensor([0, 1, 2, 0, 3])
    dst = torch.tensor([1, 2, 3, 2, 0])
    t = torch.tensor([0.0, 1.0, 1.0, 5.0, 7.5])
    return EventStream(src, dst, t, **kw)


def test_basic_properties():
    s = _stream(msg=torch.arange(10.0).view(5, 2), label=torch.tensor([1, 0, 1, 1, 0]))
    assert s.num_events == len(s) == 5
    assert s.num_nodes == 4 and s.msg_dim == 2
    assert s.t.dtype == torch.float64 and s.src.dtype == torch.long
    assert s.msg.dtype == torch.float32
    assert torch.equal(s.edge_index, torch.stack([s.src, s.dst]))
    assert s.time_span == (0.0, 7.5)
    assert _stream().msg_dim == 0


@pytest.mark.parametrize(
    "kw, row, words",
    [
        (dict(t=[0.0, 2.0, 1.0]), 2, "backwards"),
        (dict(src=[0, -1, 2]), 1, "outside"),
        (dict(dst=[1, 2, 9], num_nodes=5), 2, "outside"),
        (dict(t=[0.0, float("nan"), 1.0]), 1, "finite"),
        (dict(msg=[[0.0], [float("nan")], [1.0]]), 1, "not finite"),
        (dict(msg=[[0.0], [float("inf")], [1.0]]), 1, "not finite"),
        (dict(src=[0, 1.5, 2]), 1, "non-integer"),
    ],
)
def test_validation_names_first_bad_row(kw, row, words):
    base = dict(src=[0, 1, 2], dst=[1, 2, 3], t=[0.0, 1.0, 2.0])
    base.update(kw)
    with pytest.raises(DataError) as e:
        EventStream(**base)
    msg = str(e.value)
    assert f"row {row}" in msg and words in msg


def test_length_mismatch():
    with pytest.raises(DataError, match="rows"):
        EventStream([0, 1], [1, 2, 3], [0.0, 1.0])
    with pytest.raises(DataError, match="label"):
        EventStream([0, 1], [1, 2], [0.0, 1.0], label=[1])


def test_sort_is_stable():
    s = EventStream([0, 1, 2, 3], [4, 4, 4, 4], [2.0, 1.0, 2.0, 1.0], msg=[[0.], [1.], [2.], [3.]],
                    sort=True)
    assert s.t.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert s.src.tolist() == [1, 3, 0, 2]  # ties keep input order
    assert s.msg.view(-1).tolist() == [1.0, 3.0, 0.0, 2.0]


def test_indexing_keeps_num_nodes_and_order():
    s = _stream(label=torch.arange(5))
    sub = s[1:3]
    assert sub.num_nodes == 4 and sub.label.tolist() == [1, 2]
    m = torch.tensor([True, False, False, True, True])
    assert s[m].src.tolist() == [0, 0, 3]
    assert s[torch.tensor([0, 4])].dst.tolist() == [1, 0]
    with pytest.raises(DataError, match="increasing"):
        s[torch.tensor([4, 0])]
    with pytest.raises(DataError, match="mask"):
        s[torch.tensor([True, False])]


def test_batches_cover_stream_in_order():
    s = _stream()
    bs = list(s.batches(2))
    assert [len(b) for b in bs] == [2, 2, 1]
    assert torch.equal(torch.cat([b.t for b in bs]), s.t)
    with pytest.raises(DataError):
        list(s.batches(0))


def test_bipartite_and_dst_pool():
    s = EventStream([0, 1, 1], [3, 2, 4], [0.0, 1.0, 2.0], num_nodes=5, item_offset=2)
    assert s.is_bipartite
    assert s.dst_pool().tolist() == [2, 3, 4]
    assert _stream().dst_pool().tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match="bipartite"):
        EventStream([0, 3], [3, 2], [0.0, 1.0], item_offset=2)


def test_active_nodes():
    s = EventStream([0, 2], [2, 5], [0.0, 1.0], num_nodes=8)
    assert s.active_nodes().nonzero().view(-1).tolist() == [0, 2, 5]
