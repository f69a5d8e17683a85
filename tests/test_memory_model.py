"""Memory model: no future leakage, gradients reach the memory modules, one memory update per
batch, the dense message store against a brute-force reference, bad input."""

from __future__ import annotations

import pytest
import torch

from dyngraph.data import EventStream, TemporalNeighborIndex
from dyngraph.errors import DataError, ShapeError
from dyngraph.nn.memory import PRESETS, MessageStore, build_memory_model

N, E, F = 40, 400, 3

def _stream(seed=0, n=N, e=E, ties=False):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = torch.randint(0, n, (e,), generator=g)
    t = torch.sort(torch.rand(e, generator=g, dtype=torch.float64) * 1e4).values
    if ties:
        t = torch.floor(t / 200.0) * 200.0  # many identical timestamps
    return EventStream(src, dst, t, msg=torch.randn(e, F, generator=g), num_nodes=n)


def _scores(name, stream, seed=0, batch=50, dedup=False):
    torch.manual_seed(seed)
    model = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4)
    model.dedup_queries = dedup
    model.eval()
    model.set_graph(TemporalNeighborIndex(stream), stream.msg)
    g = torch.Generator().manual_seed(123)
    out = []
    with torch.no_grad():
        for b in stream.batches(batch):
            neg = torch.randint(0, N, (b.num_events, 2), generator=g)
            pos, negs = model(b.src, b.dst, b.t, neg)
            out.append(torch.cat([pos.unsqueeze(1), negs], 1))
            model.observe(b.src, b.dst, b.t, b.msg)
    return torch.cat(out)


@pytest.mark.parametrize(("name", "dedup"),
                         [(n, False) for n in sorted(PRESETS)] + [("tgn", True)])
def test_future_events_do_not_change_past_scores(name, dedup):
    s = _stream()
    cut = 233  # perturb everything from event `cut` on (its ids, features, later times)
    t_cut = float(s.t[cut])
    g = torch.Generator().manual_seed(9)
    src, dst, msg = s.src.clone(), s.dst.clone(), s.msg.clone()
    later = s.t >= t_cut
    src[later] = torch.randint(0, N, (int(later.sum()),), generator=g)
    dst[later] = torch.randint(0, N, (int(later.sum()),), generator=g)
    msg[later] = torch.randn(int(later.sum()), F, generator=g) * 5
    s2 = EventStream(src, dst, s.t, msg=msg, num_nodes=N)
    a, b = _scores(name, s, dedup=dedup), _scores(name, s2, dedup=dedup)
    # events strictly before t_cut are scored identically; the perturbed ones are not
    first = int((s.t >= t_cut).nonzero()[0])
    # (batch shapes differ where the cut falls, so allow float rounding, nothing more)
    torch.testing.assert_close(a[:first], b[:first], rtol=1e-5, atol=1e-6)
    assert (a[first:] - b[first:]).abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_event_is_scored_before_it_updates_memory(name):
    # A batch's own events (even the ones earlier in the batch) cannot reach its scores:
    # scoring the same batch twice before observing it gives identical results, and the
    # memory state only moves at observe().
    s = _stream(1)
    torch.manual_seed(0)
    model = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4).eval()
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    batches = list(s.batches(100))
    with torch.no_grad():
        for b in batches[:3]:
            model(b.src, b.dst, b.t, b.dst.flip(0))
            model.observe(b.src, b.dst, b.t, b.msg)
        b = batches[3]
        mem = model.state.memory.clone()
        p1, _ = model(b.src, b.dst, b.t, b.dst.flip(0))
        assert torch.equal(model.state.memory, mem)
        p2, _ = model(b.src, b.dst, b.t, b.dst.flip(0))
    torch.testing.assert_close(p1, p2, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_memory_modules_get_gradients_and_update_runs_once_per_batch(name):
    s = _stream(2)
    torch.manual_seed(0)
    model = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4)
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    calls = []
    model.updater.register_forward_hook(lambda *a: calls.append(1))
    batches = list(s.batches(100))
    for b in batches[:3]:
        pos, neg = model(b.src, b.dst, b.t, b.dst.flip(0))
        if b is batches[2]:  # by then APAN's mailboxes hold several mails
            (pos.sum() - neg.sum()).backward()
        model.observe(b.src, b.dst, b.t, b.msg)
    assert len(calls) == 2  # batch 1 had nothing pending; then one memory update per batch
    for mod in (model.updater, model.message, model.aggregator):
        for pname, p in mod.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_message_store_matches_bruteforce():
    g = torch.Generator().manual_seed(5)
    n, m = 7, 3
    store = MessageStore(n, size=m, feat_dim=2, memory_dim=1)
    ref: dict[int, list] = {i: [] for i in range(n)}
    pending = dict.fromkeys(range(n), 0)
    tick = 0
    for step in range(12):
        k = int(torch.randint(0, 9, (1,), generator=g))
        node = torch.randint(0, n, (k,), generator=g)
        other = torch.randint(0, n, (k,), generator=g)
        t = torch.arange(tick, tick + k, dtype=torch.float64)
        tick += k
        feat = torch.randn(k, 2, generator=g)
        store.push(node, other, t, torch.zeros(k, dtype=torch.long), feat,
                   torch.randn(k, 1), torch.randn(k, 1))
        for i in range(k):
            ref[int(node[i])].append((int(other[i]), float(t[i]), feat[i]))
            pending[int(node[i])] += 1
        ids = torch.arange(n)
        blk = store.read(ids)
        for v in range(n):
            want = ref[v][-m:]
            got = [(int(blk.other[v, j]), float(blk.t[v, j]), blk.feat[v, j])
                   for j in range(m) if blk.valid[v, j]]
            assert sorted((o, tt) for o, tt, _ in got) == sorted((o, tt) for o, tt, _ in want)
            assert int(blk.pending[v].sum()) == min(pending[v], m)
            if want:
                assert float(blk.t[v, blk.newest[v]]) == want[-1][1]
                pend_t = sorted(float(blk.t[v, j]) for j in range(m) if blk.pending[v, j])
                assert pend_t == [tt for _, tt, _ in want][len(want) - min(pending[v], m):]
        if step % 3 == 2:
            done = torch.tensor([0, 3, 5])
            store.consume(done)
            for v in done.tolist():
                pending[v] = 0


def test_bad_input():
    s = _stream(3)
    model = build_memory_model("tgn", N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4)
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    e = torch.zeros(0, dtype=torch.long)
    pos, neg = model(e, e, torch.zeros(0, dtype=torch.float64), torch.zeros(0, 3).long())
    assert pos.shape == (0,) and neg.shape == (0, 3)
    model.observe(e, e, torch.zeros(0, dtype=torch.float64), torch.zeros(0, F))
    with pytest.raises(ShapeError):
        model(torch.tensor([0, 1]), torch.tensor([1]), torch.zeros(2))
    with pytest.raises(DataError):
        model(torch.tensor([0]), torch.tensor([1]), torch.tensor([float("nan")]))
    with pytest.raises(DataError):
        model(torch.tensor([-1]), torch.tensor([1]), torch.tensor([1.0]))
    with pytest.raises(ShapeError):
        model.observe(torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0]), torch.ones(1, 5))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_identical_timestamps_and_unseen_nodes(name):
    # many events share a timestamp: neighbours strictly before t exclude all of them
    s = _stream(4, ties=True)
    scores = _scores(name, s)
    assert torch.isfinite(scores).all()
    # inference on a stream whose ids go beyond the model's num_nodes: memory grows,
    # new nodes start at zero memory, scores stay finite
    big = EventStream(torch.tensor([0, N + 5, 3]), torch.tensor([N + 2, 1, N + 5]),
                      torch.tensor([1e5, 1e5 + 1, 1e5 + 2], dtype=torch.float64),
                      msg=torch.randn(3, F), num_nodes=N + 6)
    torch.manual_seed(0)
    model = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4).eval()
    model.set_graph(TemporalNeighborIndex(big), big.msg)
    with torch.no_grad():
        for b in big.batches(1):
            pos, neg = model(b.src, b.dst, b.t, torch.tensor([[N + 4]]))
            assert torch.isfinite(pos).all() and torch.isfinite(neg).all()
            model.observe(b.src, b.dst, b.t, b.msg)
    assert model.num_nodes == N + 6
    assert model.state.memory[N + 4].abs().sum() == 0  # never involved in an observed event
    # checkpoint of a grown model loads into a fresh (smaller) one
    fresh = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                               num_neighbors=4)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.state.memory, model.state.memory)


@pytest.mark.parametrize("name", ["tgn", "jodie"])
def test_when_pending_messages_are_applied_does_not_change_memory(name):
    # Messages carry the memories of the event's two sides at event time (TGN's s_i(t^-),
    # s_j(t^-)), so applying a node's pending messages early (as a neighbour / negative) or late
    # (at its next event, or a final flush) gives the same memory.
    s = _stream(6)
    torch.manual_seed(0)
    a = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                           num_neighbors=4).eval()
    b = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                           num_neighbors=4).eval()
    b.load_state_dict(a.state_dict())
    idx = TemporalNeighborIndex(s)
    a.set_graph(idx, s.msg)
    b.set_graph(idx, s.msg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for bt in s.batches(40):
            a(bt.src, bt.dst, bt.t, torch.randint(0, N, (bt.num_events, 3), generator=g))
            a.observe(bt.src, bt.dst, bt.t, bt.msg)
            b.observe(bt.src, bt.dst, bt.t, bt.msg)  # never scored: updates only endpoints
    a.flush()
    b.flush()
    assert int(a.store.num_pending.sum()) == int(b.store.num_pending.sum()) == 0
    torch.testing.assert_close(a.state.memory, b.state.memory, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.state.last_update, b.state.last_update, rtol=0, atol=0)
