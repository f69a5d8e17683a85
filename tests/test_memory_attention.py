"""The dense neighbour attention of the TGN embedding: hand-written backward against autograd
and gradcheck, and the fast embedding paths (per-node query projections, folded output
projection, frozen time encoding) against the textbook per-query formula, values and
gradients."""

from __future__ import annotations

import math

import pytest
import torch
from _memory_ref import assert_same_gradients, naive_tgn_attention

from dyngraph.nn.memory import GraphAttentionEmbedding, NeighborContext, TimeEncoder
from dyngraph.nn.memory.attention import dense_attention


def _inputs(dtype, q=6, k=4, h=2, eg=3, ed=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=dtype).requires_grad_()  # noqa: E731
    mask = torch.rand(q, k, generator=g) > 0.3
    mask[0] = False  # no neighbour at all
    mask[1] = True
    return mk(q, h, eg), mk(q, h, ed), mk(q, k, eg), mk(q, k, ed), mask


def _reference(q_g, q_d, y_g, y_d, mask, drop, scale):
    y, qc = torch.cat([y_g, y_d], -1), torch.cat([q_g, q_d], -1)
    score = torch.einsum("qke,qhe->qkh", y, qc) * scale
    score = score.masked_fill(~mask.unsqueeze(-1), -math.inf)
    alpha = torch.softmax(score, 1).nan_to_num(0.0)
    ad = alpha if drop is None else alpha * drop
    out = torch.einsum("qkh,qke->qhe", ad, y)
    return out[..., : y_g.size(-1)], out[..., y_g.size(-1):], alpha


@pytest.mark.parametrize("with_drop", [False, True])
def test_dense_attention_gradcheck(with_drop):
    q_g, q_d, y_g, y_d, mask = _inputs(torch.float64)
    drop = None
    if with_drop:
        drop = (torch.rand(6, 4, 2, generator=torch.Generator().manual_seed(1)) > 0.25)
        drop = drop.double() / 0.75

    def f(a, b, c, d):
        return dense_attention(a, b, c, d, mask, drop, 0.7)[:2]

    assert torch.autograd.gradcheck(f, (q_g, q_d, y_g, y_d))


def test_dense_attention_matches_autograd_reference():
    q_g, q_d, y_g, y_d, mask = _inputs(torch.float32, q=9, k=5, eg=7, ed=4, seed=3)
    drop = (torch.rand(9, 5, 2, generator=torch.Generator().manual_seed(2)) > 0.1) / 0.9
    got = dense_attention(q_g, q_d, y_g, y_d, mask, drop, 0.5)
    want = _reference(q_g, q_d, y_g, y_d, mask, drop, 0.5)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    w = [torch.randn_like(got[0]), torch.randn_like(got[1])]
    g1 = torch.autograd.grad(sum((x * c).sum() for x, c in zip(got[:2], w, strict=True)),
                             (q_g, q_d, y_g, y_d))
    g2 = torch.autograd.grad(sum((x * c).sum() for x, c in zip(want[:2], w, strict=True)),
                             (q_g, q_d, y_g, y_d))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.all(got[2][0] == 0)  # masked row: zero weights, zero output
    torch.testing.assert_close(got[0][0], torch.zeros_like(got[0][0]))


@pytest.mark.parametrize("learnable", [False, True])
def test_embedding_fast_paths_match_naive_values_and_gradients(learnable):
    torch.manual_seed(5)
    dim, t_dim, f_dim, q, k, n = 4, 3, 2, 7, 3, 6
    enc = TimeEncoder(t_dim, learnable=learnable)
    if learnable:
        with torch.no_grad():
            enc.bias.normal_()
    emb = GraphAttentionEmbedding(dim, enc, f_dim, out_channels=6, heads=2, dropout=0.0)
    node_mem = torch.randn(n, dim, requires_grad=True)
    index = torch.randint(0, n, (q, k))
    qidx = torch.tensor([0, 3, 3, 5, 0, 1, 3])  # repeated query nodes
    feat, dt = torch.randn(q, k, f_dim), torch.rand(q, k) * 10
    mask = torch.rand(q, k) > 0.3
    mask[2] = False
    ctx = NeighborContext(node_mem, index, feat, dt, mask, query_index=qidx)
    got = emb(node_mem[qidx], torch.zeros(q), ctx)
    want = naive_tgn_attention(emb, enc, node_mem[qidx], node_mem, index, feat, dt, mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    params = [node_mem] + [p for p in emb.parameters() if p.requires_grad]
    g1 = assert_same_gradients(got, want, params)
    if learnable:  # the time encoding is trained through the attention
        i = next(i for i, p in enumerate(params) if p is enc.weight)
        assert g1[i].abs().sum() > 0


def test_embedding_event_features_by_id_equal_explicit_features():
    torch.manual_seed(6)
    enc = TimeEncoder(3)
    emb = GraphAttentionEmbedding(4, enc, 2, out_channels=6, heads=2, dropout=0.0).eval()
    node_mem, ev_feat = torch.randn(5, 4), torch.randn(8, 2)
    index, eid = torch.randint(0, 5, (4, 3)), torch.randint(-1, 8, (4, 3))
    mask, dt = eid >= 0, torch.rand(4, 3)
    explicit = NeighborContext(node_mem, index, ev_feat[eid.clamp(min=0)], dt, mask)
    by_id = NeighborContext(node_mem, index, None, dt, mask, eid=eid, event_feat=ev_feat)
    mem = torch.randn(4, 4)
    torch.testing.assert_close(emb(mem, dt[:, 0], by_id), emb(mem, dt[:, 0], explicit))
