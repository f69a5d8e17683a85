"""The fused TGN neighbour attention (kernels/tgn_attention.cpp): gradcheck in double precision,
values and gradients against the pure-PyTorch path (gather + cos + dense attention), the cosine
for large arguments, and the per-batch shortcuts of the memory model (bitmap distinct ids,
one-slot message store, shared decoder source projection, fused Adam) against plain
references."""

from __future__ import annotations

import pytest
import torch
from _memory_ref import assert_same_gradients, naive_tgn_attention

from dyngraph.nn.memory import GraphAttentionEmbedding, LinkDecoder, NeighborContext, TimeEncoder
from dyngraph.nn.memory.attention import _native_slot_attention_ok, slot_attention
from dyngraph.nn.memory.state import MessageStore
from dyngraph.ops.backend import use_backend

native = pytest.mark.skipif(not _native_slot_attention_ok(),
                            reason="native kernels unavailable")


def _inputs(dtype, *, q=7, k=4, h=2, d=5, f=3, t=6, n=9, seed=0, scale_dt=5.0, rows=False):
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()

    mask = torch.rand(q, k, generator=g) > 0.3
    mask[0] = False  # a query without neighbours
    mask[1] = True
    index = torch.randint(0, n, (q, k), generator=g)
    feat = torch.randn(q, k, f, generator=g, dtype=dtype)
    dt = torch.rand(q, k, generator=g, dtype=dtype) * scale_dt
    w = torch.pow(10.0, -torch.linspace(0, 9, t, dtype=torch.float64)).to(dtype)
    b = torch.randn(t, generator=g, dtype=dtype)
    u = 4 if rows else q
    qrow = torch.tensor([0, 3, 3, 1, 0, 2, 3])[:q] if rows else None
    drop = (torch.rand(q, k, h, generator=g) > 0.25).to(dtype) / 0.75
    return leaf(h, u, d + f + t + 1), leaf(n, d), (index, feat, dt, w, b, mask), drop, qrow


@native
@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("with_drop", [False, True])
@pytest.mark.parametrize("heads", [2, 3])  # two heads have their own fused loops
def test_slot_attention_gradcheck(rows, with_drop, heads):
    qv, mem, rest, drop, qrow = _inputs(torch.float64, rows=rows, h=heads)
    drop = drop if with_drop else None

    def f(a, b):
        return slot_attention(a, b, *rest, drop, 0.7, query_row=qrow, native=True)[0]

    assert torch.autograd.gradcheck(f, (qv, mem))


@native
@pytest.mark.parametrize(("dtype", "scale_dt"), [(torch.float64, 5.0), (torch.float32, 5.0),
                                                 (torch.float32, 1e6)])
def test_slot_attention_matches_pytorch_path(dtype, scale_dt):
    qv, mem, rest, drop, qrow = _inputs(dtype, seed=3, scale_dt=scale_dt, rows=True)
    got = slot_attention(qv, mem, *rest, drop, 0.7, query_row=qrow, native=True)
    want = slot_attention(qv, mem, *rest, drop, 0.7, query_row=qrow, native=False)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    w = torch.randn_like(got[0])
    g1 = torch.autograd.grad((got[0] * w).sum(), (qv, mem))
    g2 = torch.autograd.grad((want[0] * w).sum(), (qv, mem))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert torch.all(got[1][0] == 0) and torch.all(got[0][:, 0] == 0)  # no neighbour: zeros


@native
def test_slot_attention_cosine_large_and_non_finite_arguments():
    # one slot, zero queries: uniform attention over that slot returns its data [phi | 1]
    q, t = 3000, 50
    dt = torch.rand(q, 1, dtype=torch.float64) * 1e7
    dt[0, 0], dt[1, 0], dt[2, 0] = 3e20, float("inf"), float("nan")  # beyond the reduction
    dt = dt.float()
    w = torch.pow(10.0, -torch.linspace(0, 9, t, dtype=torch.float64)).float()
    b = torch.zeros(t)
    out, _ = slot_attention(torch.zeros(1, q, 4 + t + 1), torch.zeros(2, 4),
                            torch.zeros(q, 1, dtype=torch.long), torch.zeros(q, 1, 0), dt, w, b,
                            torch.ones(q, 1, dtype=torch.bool), native=True)
    phi = out[0, :, 4:4 + t]
    want = torch.cos(dt * w)  # torch's cos of the same float32 arguments
    torch.testing.assert_close(phi, want, atol=2e-6, rtol=0, equal_nan=True)
    assert torch.isnan(phi[1]).all() and torch.isnan(phi[2]).all()  # as torch.cos
    torch.testing.assert_close(out[0, 3:, -1], torch.ones(q - 3))


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_embedding_native_and_torch_paths_match_naive(backend):
    torch.manual_seed(5)
    dim, t_dim, f_dim, q, k, n = 4, 3, 2, 7, 3, 6
    enc = TimeEncoder(t_dim, learnable=False)
    emb = GraphAttentionEmbedding(dim, enc, f_dim, out_channels=6, heads=2, dropout=0.0)
    node_mem = torch.randn(n, dim, requires_grad=True)
    index = torch.randint(0, n, (q, k))
    qidx = torch.tensor([0, 3, 3, 5, 0, 1, 3])
    feat, dt = torch.randn(q, k, f_dim), torch.rand(q, k) * 1e5
    mask = torch.rand(q, k) > 0.3
    mask[2] = False
    ctx = NeighborContext(node_mem, index, feat, dt, mask, query_index=qidx)
    with use_backend(backend):
        got = emb(node_mem[qidx], torch.zeros(q), ctx)
    want = naive_tgn_attention(emb, enc, node_mem[qidx], node_mem, index, feat, dt, mask)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    params = [node_mem] + [p for p in emb.parameters() if p.requires_grad]
    assert_same_gradients(got, want, params)


def test_one_slot_store_keeps_each_nodes_latest_message():
    g = torch.Generator().manual_seed(0)
    n, f, d = 30, 2, 3
    store = MessageStore(n, 1, f, d)
    ref: dict[int, tuple] = {}  # node -> (other, t, role, feat, mem_a, mem_b)
    pending: set[int] = set()
    for step in range(15):
        e = int(torch.randint(1, 40, (1,), generator=g))
        node, other = torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)
        t = torch.sort(torch.rand(e, generator=g, dtype=torch.float64)).values + step
        role = torch.randint(0, 3, (e,), generator=g)
        feat, ma, mb = (torch.randn(e, c, generator=g) for c in (f, d, d))
        if step % 2:  # snapshots read from a memory table: mem_a = table[node], mem_b = ...[other]
            table = torch.randn(n, d, generator=g)
            ma, mb = table[node], table[other]
            store.push(node, other, t, role, feat, memory=table)
        else:
            store.push(node, other, t, role, feat, ma, mb)
        for i in range(e):  # chronological: later messages overwrite earlier ones
            ref[int(node[i])] = (other[i], t[i], role[i], feat[i], ma[i], mb[i])
            pending.add(int(node[i]))
        if step % 3 == 0:
            gone = torch.randint(0, n, (8,), generator=g)
            store.consume(gone)
            pending -= set(gone.tolist())
        ids = torch.arange(n)
        blk = store.read(ids)
        for v in range(n):
            assert bool(blk.valid[v, 0]) == (v in ref)
            assert bool(blk.pending[v, 0]) == (v in pending)
            if v in ref:
                for got, want in zip((blk.other, blk.t, blk.role, blk.feat, blk.mem_a,
                                      blk.mem_b), ref[v], strict=True):
                    torch.testing.assert_close(got[v, 0], want)
        assert torch.equal(store.num_pending > 0,
                           torch.tensor([v in pending for v in range(n)]))


def test_distinct_ids_equal_torch_unique():
    from dyngraph.nn.memory._ids import bitmap_unique

    a, b = torch.randint(0, 50, (40,)), torch.randint(0, 50, (6, 5))
    assert torch.equal(bitmap_unique(50, a, b)[0], torch.unique(torch.cat([a, b.reshape(-1)])))
    uq, inv = bitmap_unique(50, a, inverse_of=a)
    ref_uq, ref_inv = torch.unique(a, return_inverse=True)
    assert torch.equal(uq, ref_uq) and torch.equal(inv, ref_inv)


def test_decoder_candidates_equal_pairwise_scores():
    torch.manual_seed(0)
    dec = LinkDecoder(5)
    z_src, z_cand = torch.randn(4, 5), torch.randn(3, 4, 5)
    torch.testing.assert_close(dec.score_candidates(z_src, z_cand),
                               dec(z_src.unsqueeze(0), z_cand))
    pre = torch.nn.Linear(5, 5)  # folded into the decoder's first layer
    torch.testing.assert_close(dec.score_candidates(z_src, z_cand, pre),
                               dec(pre(z_src).unsqueeze(0), pre(z_cand)))


def test_make_optimizer_is_adam():
    from dyngraph.train.streaming import make_optimizer

    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_optimizer(a, 1e-2), torch.optim.Adam(b.parameters(), lr=1e-2)
    x = torch.randn(5, 3)
    for _ in range(3):
        for mod, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            mod(x).square().sum().backward()
            opt.step()
    for p, r in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, r)


@native
def test_slot_attention_parallel_chunks_match_serial():
    # large enough to take the multi-threaded path (per-chunk gradient buffers, then summed)
    qv, mem, rest, drop, _ = _inputs(torch.float64, q=400, k=10, d=16, f=0, t=20, n=30,
                                     seed=7)
    qrow = torch.randint(0, 400, (400,), generator=torch.Generator().manual_seed(1))
    results = []
    threads = torch.get_num_threads()
    try:
        for nt in (1, 2):
            torch.set_num_threads(nt)
            out = slot_attention(qv, mem, *rest, drop, 0.3, query_row=qrow, native=True)[0]
            results.append((out,) + torch.autograd.grad(out.square().sum(), (qv, mem)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)
