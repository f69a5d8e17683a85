"""Reference formulas for the memory-model tests, written the textbook way (one query at a
time, explicit keys and values) so the library's fused paths have something independent to
be compared with."""

from __future__ import annotations

import math

import torch


def naive_tgn_attention(emb, enc, mem, node_mem, index, feat, dt, mask):
    """TGN's graph-attention embedding, query by query.

    ``mem``: ``[q, D]`` query memories; ``node_mem[index]``: ``[q, k, D]`` neighbour memories;
    ``feat``/``dt``: ``[q, k, F]`` / ``[q, k]`` edge features and time gaps; ``mask``:
    ``[q, k]`` valid neighbours. Returns ``[q, out_channels]``.
    """
    q, k = mask.shape
    h, d = emb.heads, emb.head_dim
    out = []
    for i in range(q):
        qi = emb.lin_q(mem[i]).view(h, d)
        kv = emb.lin_kv(node_mem[index[i]]).view(k, 2, h, d)
        e = emb.lin_edge(torch.cat([feat[i], enc(dt[i])], -1)).view(k, h, d)
        key, val = kv[:, 0] + e, kv[:, 1] + e
        sc = (key * qi).sum(-1) / math.sqrt(d)
        sc = sc.masked_fill(~mask[i].unsqueeze(-1), -math.inf)
        al = torch.softmax(sc, 0).nan_to_num(0.0)
        att = emb.lin_o((al.unsqueeze(-1) * val).sum(0).reshape(-1))
        out.append(emb.merge2(torch.relu(emb.merge1(torch.cat([mem[i], att])))))
    return torch.stack(out)


def assert_same_gradients(got, want, params, rtol=1e-4, atol=1e-5):
    """Gradients of a random projection of ``got`` and of ``want`` w.r.t. ``params`` agree (a
    parameter ``want`` does not use must get no or an all-zero gradient); returns ``got``'s."""
    w = torch.randn_like(got)
    g1 = torch.autograd.grad((got * w).sum(), params, allow_unused=True)
    g2 = torch.autograd.grad((want * w).sum(), params, allow_unused=True)
    for a, b in zip(g1, g2, strict=True):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0
        else:
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    return g1
