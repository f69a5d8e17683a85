"""The fused training-step pieces of the memory models, each against its plain-PyTorch
equivalent and (custom gradients) by double-precision ``gradcheck``: the native GRU cell
(kernels/tgn_memory.cpp), the native memory bookkeeping (gather + message, persist, push),
the one-node weight folding / decoder / attention-embedding tail, the one-node BCE loss and
the lean fused Adam step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import dyngraph.nn.memory.embedding as emb_mod
import dyngraph.nn.memory.model as model_mod
from dyngraph.data import EventStream, TemporalNeighborIndex
from dyngraph.nn.memory import (
    GraphAttentionEmbedding,
    LinkDecoder,
    NeighborContext,
    TimeEncoder,
    build_memory_model,
)
from dyngraph.nn.memory.attention import _native_slot_attention_ok
from dyngraph.nn.memory.embedding import (
    _FoldAttentionWeights,
    _FoldPre,
    _FusedAttentionHidden,
    _StackedScores,
)
from dyngraph.nn.memory.updater import _GRUCell, _native_gru_ok, gru_cell
from dyngraph.train.streaming import _LinkBCE, _loss, make_optimizer

native_gru = pytest.mark.skipif(not _native_gru_ok(), reason="native kernels unavailable")
native_att = pytest.mark.skipif(not _native_slot_attention_ok(),
                                reason="native kernels unavailable")
native_mem = pytest.mark.skipif(not model_mod._native_memory_ok(),
                                reason="native kernels unavailable")


def _leaf(g, *shape, scale=1.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()


# ------------------------------------------------------------------ GRU cell
@native_gru
def test_gru_cell_gradcheck():
    g = torch.Generator().manual_seed(0)
    x, s = _leaf(g, 5, 7), _leaf(g, 5, 4)
    w_ih, w_hh, b_ih, b_hh = _leaf(g, 12, 7), _leaf(g, 12, 4), _leaf(g, 12), _leaf(g, 12)
    assert torch.autograd.gradcheck(_GRUCell.apply, (x, s, w_ih, w_hh, b_ih, b_hh))


@native_gru
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gru_cell_matches_torch_grucell(dtype):
    torch.manual_seed(1)
    cell = torch.nn.GRUCell(9, 6).to(dtype)
    x = (torch.randn(40, 9, dtype=dtype) * 3).requires_grad_()
    s = torch.randn(40, 6, dtype=dtype).requires_grad_()
    got, want = gru_cell(x, s, cell, native=True), cell(x, s)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(got, want, **tol)
    w = torch.randn_like(got)
    inputs = [x, s, *cell.parameters()]
    for a, b in zip(torch.autograd.grad((got * w).sum(), inputs),
                    torch.autograd.grad((want * w).sum(), inputs), strict=True):
        torch.testing.assert_close(a, b, **tol)
    # only the needed gradients: weights without input gradients (TGN's case) still match
    xd, sd = x.detach(), s.detach()
    g1 = torch.autograd.grad(gru_cell(xd, sd, cell, native=True).sum(), list(cell.parameters()))
    g2 = torch.autograd.grad(cell(xd, sd).sum(), list(cell.parameters()))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, **tol)


# ------------------------------------------------------------------ weight folding, decoder
def test_fold_attention_weights_gradcheck_and_values():
    g = torch.Generator().manual_seed(2)
    d_mem, hd, heads, ft, out = 4, 6, 2, 5, 7
    args = (_leaf(g, hd, d_mem), _leaf(g, hd), _leaf(g, 2 * hd, d_mem), _leaf(g, 2 * hd),
            _leaf(g, hd, ft), _leaf(g, hd, hd), _leaf(g, hd), _leaf(g, out, d_mem + hd),
            _leaf(g, out))
    assert torch.autograd.gradcheck(lambda *a: _FoldAttentionWeights.apply(*a, heads), args)
    wq, bq, wkv, bkv, we, wo, bo, w1, b1 = args
    node_w, node_b, w_key, w_val, w_ao = _FoldAttentionWeights.apply(*args, heads)
    m_s, m_a = w1[:, :d_mem], w1[:, d_mem:]
    torch.testing.assert_close(node_w, torch.cat([wq, m_s]))
    torch.testing.assert_close(node_b, torch.cat([bq, b1 + m_a @ bo]))
    torch.testing.assert_close(w_ao, m_a @ wo)
    d = hd // heads
    for h in range(heads):
        rows = slice(h * d, (h + 1) * d)
        torch.testing.assert_close(w_key[h], torch.cat([wkv[:hd][rows], we[rows],
                                                        bkv[:hd][rows, None]], 1))
        torch.testing.assert_close(w_val[h], torch.cat([wkv[hd:][rows], we[rows],
                                                        bkv[hd:][rows, None]], 1))


def test_fold_pre_gradcheck():
    g = torch.Generator().manual_seed(3)
    args = (_leaf(g, 5, 4), _leaf(g, 5), _leaf(g, 3, 5), _leaf(g, 3), _leaf(g, 2, 5), _leaf(g, 2))
    assert torch.autograd.gradcheck(_FoldPre.apply, args)


@pytest.mark.parametrize("with_pre", [False, True])
def test_stacked_scores_gradcheck_and_match_candidates(with_pre):
    torch.manual_seed(4)
    dec = LinkDecoder(5).double()
    pre = torch.nn.Linear(5, 5).double() if with_pre else None
    b, j = 4, 3
    z = torch.randn((j + 1) * b, 5, dtype=torch.float64, requires_grad=True)
    params = [z, *dec.parameters(), *(pre.parameters() if pre is not None else [])]
    got = dec.score_stacked(z, b, pre)
    want = dec.score_candidates(z[:b], z[b:].view(j, b, 5), pre)
    torch.testing.assert_close(got, want)
    w = torch.randn_like(got)
    for a, c in zip(torch.autograd.grad((got * w).sum(), params),
                    torch.autograd.grad((want * w).sum(), params), strict=True):
        torch.testing.assert_close(a, c)
    wp, bp = (None, None) if pre is None else (pre.weight, pre.bias)
    args = (z, b, wp, bp, dec.lin_src.weight, dec.lin_src.bias, dec.lin_dst.weight,
            dec.lin_dst.bias, dec.lin_out.weight, dec.lin_out.bias)
    assert torch.autograd.gradcheck(_StackedScores.apply, args)


# ------------------------------------------------------------------ fused embedding tail
def _emb_case(dtype, seed=5):
    torch.manual_seed(seed)
    dim, t_dim, f_dim, q, k, n = 6, 5, 2, 9, 4, 8
    enc = TimeEncoder(t_dim, learnable=False).to(dtype)
    emb = GraphAttentionEmbedding(dim, enc, f_dim, out_channels=6, heads=2, dropout=0.3).to(dtype)
    node_mem = torch.randn(n, dim, dtype=dtype, requires_grad=True)
    index = torch.randint(0, n, (q, k))
    qidx = torch.tensor([0, 3, 3, 5, 0, 1, 3, 7, 7])
    feat, dt = torch.randn(q, k, f_dim, dtype=dtype), torch.rand(q, k, dtype=dtype) * 1e5
    mask = torch.rand(q, k) > 0.3
    mask[2] = False
    return emb, node_mem, NeighborContext(node_mem, index, feat, dt, mask, query_index=qidx)


@native_att
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_attention_hidden_matches_unfused(dtype, monkeypatch):
    emb, node_mem, ctx = _emb_case(dtype)
    params = [node_mem, *(p for p in emb.parameters() if p.requires_grad)]
    res = []
    for fused in (True, False):
        if not fused:  # the op-by-op path (same kernel through slot_attention)
            monkeypatch.setattr(emb_mod, "_native_slot_attention_ok", lambda: False)
        torch.manual_seed(1)  # same dropout draw
        z = emb.hidden(node_mem[ctx.query_index], torch.zeros(9, dtype=dtype), ctx)
        name = type(z.grad_fn).__name__
        assert ("FusedAttentionHidden" in name) == fused
        w = torch.linspace(-1, 1, z.numel(), dtype=dtype).view_as(z)
        res.append((z, torch.autograd.grad((z * w).sum(), params, allow_unused=True)))
    torch.testing.assert_close(res[0][0], res[1][0])
    for a, b in zip(res[0][1], res[1][1], strict=True):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0
        else:
            torch.testing.assert_close(a, b)


@native_att
def test_fused_attention_hidden_gradcheck():
    emb, node_mem, ctx = _emb_case(torch.float64, seed=6)
    g = torch.Generator().manual_seed(7)
    heads, d = emb.heads, emb.head_dim
    hd, n_in, e = heads * d, node_mem.size(1), node_mem.size(1) + 2 + 5 + 1
    q = ctx.query_index.numel()
    uq = torch.unique(ctx.query_index)
    inv = torch.searchsorted(uq, ctx.query_index)
    drop = (torch.rand(q, 4, heads, generator=g) > 0.3).double() / 0.7
    w_t = emb.time_enc.weight.detach()
    rest = (uq, inv, ctx.index, ctx.feat, ctx.dt, w_t, torch.zeros_like(w_t), ctx.mask, drop,
            0.7)
    args = (node_mem, _leaf(g, hd + 6, n_in), _leaf(g, hd + 6), _leaf(g, heads, d, e),
            _leaf(g, heads, d, e), _leaf(g, 6, hd))
    assert torch.autograd.gradcheck(lambda *a: _FusedAttentionHidden.apply(*a, *rest), args)


# ------------------------------------------------------------------ native bookkeeping
def _stream(seed=0, n=30, e=300, f=3):
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)
    dst[::17] = src[::17]  # self-loops: the destination's message wins
    t = torch.floor(torch.sort(torch.rand(e, generator=g, dtype=torch.float64) * 1e6).values)
    return EventStream(src, dst, t, msg=torch.randn(e, f, generator=g), num_nodes=n)


def _run(stream, native: bool, monkeypatch, train: bool):
    if not native:
        monkeypatch.setattr(model_mod, "_native_memory_ok", lambda: False)
    torch.manual_seed(0)
    model = build_memory_model("tgn", stream.num_nodes, 3, memory_dim=8, time_dim=6,
                               embedding_dim=8, num_neighbors=4).double()
    model.set_graph(TemporalNeighborIndex(stream), stream.msg)
    model.train(train)
    opt = make_optimizer(model, 1e-2)
    g = torch.Generator().manual_seed(9)
    scores = []
    for b in stream.batches(40):
        neg = torch.randint(0, stream.num_nodes, (b.num_events, 1), generator=g)
        with torch.set_grad_enabled(train):
            pos, negs = model(b.src, b.dst, b.t, neg)
            if train:
                opt.zero_grad()
                _loss(pos, negs).backward()
                opt.step()
        assert model._native_memory() == native
        scores.append(torch.cat([pos.detach(), negs.detach().view(-1)]))
        model.observe(b.src, b.dst, b.t, b.msg.double())
    monkeypatch.undo()
    return torch.cat(scores), model


@native_mem
@pytest.mark.parametrize("train", [False, True])
def test_native_memory_bookkeeping_matches_python_path(train, monkeypatch):
    stream = _stream()
    got, m1 = _run(stream, True, monkeypatch, train)
    want, m2 = _run(stream, False, monkeypatch, train)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(m1.state_dict(), m2.state_dict())


# ------------------------------------------------------------------ loss, optimizer
def test_link_bce_gradcheck_and_value():
    g = torch.Generator().manual_seed(10)
    pos, neg = _leaf(g, 7, scale=5.0), _leaf(g, 7, 3, scale=5.0)
    assert torch.autograd.gradcheck(_LinkBCE.apply, (pos, neg))
    want = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
    torch.testing.assert_close(_loss(pos, neg), want)
    big = torch.tensor([80.0, -80.0])  # saturated logits stay finite
    torch.testing.assert_close(_loss(big, -big), torch.tensor(80.0))


def test_make_optimizer_is_bit_for_bit_fused_adam():
    torch.manual_seed(11)
    a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    b = copy.deepcopy(a)
    opt_a = make_optimizer(a, 1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    x = torch.randn(7, 5)
    for i in range(6):
        for mod, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            mod(x).square().sum().backward()
            opt.step()
        if i == 2:  # a checkpoint round trip in the middle
            opt_a.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    for p, r in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, r)
        assert torch.equal(opt_a.state[p]["exp_avg_sq"], opt_b.state[r]["exp_avg_sq"])
