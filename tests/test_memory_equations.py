"""Each preset's update rule against its paper's equation, on a hand-computed 3-event stream.

Events (one per batch): e1 = (0 -> 1, t=1, f1), e2 = (1 -> 2, t=3, f2), e3 = (2 -> 0, t=6, f3).
Memory starts at 0. After scoring batch 2, nodes 0 and 1 have applied e1; after scoring batch 3,
nodes 1 and 2 have applied e2 (node 1 is in batch 3's computation as a neighbour).
The expected memories are written out with explicit matrix formulas, independent of the
torch cells used inside the model.
"""

from __future__ import annotations

import math

import torch
from _memory_ref import naive_tgn_attention

from dyngraph.data import EventStream, TemporalNeighborIndex
from dyngraph.nn.memory import (
    APAN,
    JODIE,
    TGN,
    DyRep,
    GraphAttentionEmbedding,
    NeighborContext,
    TimeEncoder,
)

torch.set_default_dtype(torch.float32)
D, T, F = 4, 3, 2
FEAT = torch.tensor([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]])
SRC, DST = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
TIME = torch.tensor([1.0, 3.0, 6.0], dtype=torch.float64)

def _stream():
    return EventStream(SRC, DST, TIME, msg=FEAT.clone(), num_nodes=3)


def _run(model, upto: int, negs=(2, 1, 1)):
    """Score + observe events 0..upto-1 one per batch, then score event ``upto`` (forward
    only), returning the model's memory update of that last forward."""
    s = _stream()
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    model.eval()
    with torch.no_grad():
        for i in range(upto):
            model(SRC[i:i + 1], DST[i:i + 1], TIME[i:i + 1], torch.tensor([[negs[i]]]))
            model.observe(SRC[i:i + 1], DST[i:i + 1], TIME[i:i + 1], FEAT[i:i + 1])
        model(SRC[upto:upto + 1], DST[upto:upto + 1], TIME[upto:upto + 1],
              torch.tensor([[negs[upto]]]))
        upd = model._ctx
        model.observe(SRC[upto:upto + 1], DST[upto:upto + 1], TIME[upto:upto + 1],
                      FEAT[upto:upto + 1])
    return {int(n): upd.memory[i] for i, n in enumerate(upd.n_id) if bool(upd.updated[i])}


def _phi(enc: TimeEncoder, dt: float) -> torch.Tensor:
    return torch.cos(dt * enc.weight.detach() + (enc.bias.detach() if enc.learnable else 0.0))


def _gru(cell, m, h):
    wi, wh = cell.weight_ih.detach(), cell.weight_hh.detach()
    bi, bh = cell.bias_ih.detach(), cell.bias_hh.detach()
    wir, wiz, win = wi.chunk(3)
    whr, whz, whn = wh.chunk(3)
    bir, biz, bin_ = bi.chunk(3)
    bhr, bhz, bhn = bh.chunk(3)
    r = torch.sigmoid(wir @ m + bir + whr @ h + bhr)
    z = torch.sigmoid(wiz @ m + biz + whz @ h + bhz)
    n = torch.tanh(win @ m + bin_ + r * (whn @ h + bhn))
    return (1 - z) * n + z * h


def _rnn(cell, m, h):
    return torch.tanh(cell.weight_ih.detach() @ m + cell.bias_ih.detach()
                      + cell.weight_hh.detach() @ h + cell.bias_hh.detach())


def test_tgn_gru_update_matches_paper():
    torch.manual_seed(0)
    model = TGN(3, F, memory_dim=D, time_dim=T, embedding_dim=D, num_neighbors=2, heads=1)
    cell, enc = model.updater.cell, model.time_enc
    zero = torch.zeros(D)
    # batch 2: e1 applied to both endpoints; m_i = s_i || s_j || phi(t - t_i^last) || e
    s0 = _gru(cell, torch.cat([zero, zero, _phi(enc, 1.0), FEAT[0]]), zero)
    s1 = _gru(cell, torch.cat([zero, zero, _phi(enc, 1.0), FEAT[0]]), zero)
    got = _run(TGN(3, F, memory_dim=D, time_dim=T, embedding_dim=D, num_neighbors=2,
                   heads=1), 0)
    assert got == {}  # nothing pending before the first event
    torch.manual_seed(0)
    model = TGN(3, F, memory_dim=D, time_dim=T, embedding_dim=D, num_neighbors=2, heads=1)
    got = _run(model, 1)
    torch.testing.assert_close(got[0], s0)
    torch.testing.assert_close(got[1], s1)
    # batch 3: e2 applied to 2 (dst role: self first) and 1 (a neighbour of 0 and 2)
    torch.manual_seed(0)
    model = TGN(3, F, memory_dim=D, time_dim=T, embedding_dim=D, num_neighbors=2, heads=1)
    got = _run(model, 2)
    s2_new = _gru(cell, torch.cat([zero, s1, _phi(enc, 3.0 - 0.0), FEAT[1]]), zero)
    s1_new = _gru(cell, torch.cat([s1, zero, _phi(enc, 3.0 - 1.0), FEAT[1]]), s1)
    torch.testing.assert_close(got[2], s2_new)
    torch.testing.assert_close(got[1], s1_new)
    assert 0 not in got  # node 0 has nothing pending at batch 3


def test_jodie_rnn_update_and_projection_match_paper():
    torch.manual_seed(1)
    model = JODIE(3, F, memory_dim=D, time_dim=T, time_scale=2.0)
    got = _run(model, 2)
    up, enc = model.updater, model.time_enc
    zero = torch.zeros(D)
    m = torch.cat([zero, zero, _phi(enc, 1.0), FEAT[0]])
    s1 = _rnn(up.cell_dst, m, zero)  # node 1 was e1's destination: the item RNN
    s2 = _rnn(up.cell_dst, torch.cat([zero, s1, _phi(enc, 3.0), FEAT[1]]), zero)
    s1b = _rnn(up.cell, torch.cat([s1, zero, _phi(enc, 2.0), FEAT[1]]), s1)  # user RNN
    assert not torch.allclose(up.cell.weight_ih, up.cell_dst.weight_ih)
    torch.testing.assert_close(got[2], s2)
    torch.testing.assert_close(got[1], s1b)  # node 1 is batch 3's negative
    # no neighbours in JODIE: node 0 was outside batch 2, so e1 waited until batch 3 (user RNN)
    torch.testing.assert_close(got[0], _rnn(up.cell, m, zero))
    # projection z = (1 + w dt / tau) * s
    s = torch.randn(5, D)
    dt = torch.tensor([0.0, 1.0, 2.0, 4.0, 10.0], dtype=torch.float64)
    w = model.embedding.weight.detach()
    want = s * (1 + (dt.float() / 2.0).unsqueeze(1) * w)
    torch.testing.assert_close(model.embedding(s, dt), want)


def test_dyrep_update_uses_structural_attention_of_counterpart():
    torch.manual_seed(2)
    model = DyRep(3, F, memory_dim=D, time_dim=T, num_neighbors=2)
    got = _run(model, 2, negs=(2, 0, 1))  # node 0 is batch 2's negative, so it applies e1
    enc, cell, sa = model.time_enc, model.updater.cell, model.counterpart
    zero = torch.zeros(D)
    # batch 2: node 0 applies e1; its counterpart 1 had no neighbour before t=1 -> h_struct = 0
    s0 = _rnn(cell, torch.cat([zero, _phi(enc, 1.0), FEAT[0]]), zero)
    torch.testing.assert_close(model.state.memory[0], s0)
    # batch 3: node 2 applies e2 (counterpart u = 1); u's neighbours before t=3: {0}, and
    # h_struct = max_i sigmoid(q_ui (W_h s_i + b_h)) with q = softmax over one neighbour = 1
    h_struct = torch.sigmoid(sa.lin_h.weight.detach() @ s0 + sa.lin_h.bias.detach())
    s2 = _rnn(cell, torch.cat([h_struct, _phi(enc, 3.0), FEAT[1]]), zero)
    torch.testing.assert_close(got[2], s2)


def test_apan_mail_reaches_neighbours_and_mailbox_attention():
    torch.manual_seed(3)
    model = APAN(3, F, memory_dim=D, time_dim=T, num_neighbors=2, mailbox_size=3, heads=1)
    got2 = _run(model, 1, negs=(2, 0, 1))
    s0, s1 = got2[0].clone(), got2[1].clone()
    torch.manual_seed(3)
    model = APAN(3, F, memory_dim=D, time_dim=T, num_neighbors=2, mailbox_size=3, heads=1)
    got = _run(model, 2, negs=(2, 0, 1))
    enc, ag, up = model.time_enc, model.aggregator, model.updater
    zero = torch.zeros(D)
    # node 0 is a neighbour of e2's source (1): it received e2's mail mu = s1 || s2 || ...
    # its mailbox now holds e1's mail (already applied) and e2's mail (pending)
    mails = torch.stack([torch.cat([zero, zero, _phi(enc, 1.0 - 1.0), FEAT[0]]),
                         torch.cat([s1, zero, _phi(enc, 3.0 - 1.0), FEAT[1]])])
    q = ag.lin_q.weight.detach() @ s0 + ag.lin_q.bias.detach()
    k = mails @ ag.lin_k.weight.detach().T + ag.lin_k.bias.detach()
    v = mails @ ag.lin_v.weight.detach().T + ag.lin_v.bias.detach()
    a = torch.softmax(k @ q / math.sqrt(q.numel()), 0)
    agg = ag.lin_out.weight.detach() @ (a @ v) + ag.lin_out.bias.detach()
    h = up.mlp[2](torch.relu(up.mlp[0](torch.cat([agg, s0])))).detach()
    want = torch.nn.functional.layer_norm(s0 + h, (D,), up.norm.weight.detach(),
                                          up.norm.bias.detach())
    torch.testing.assert_close(got[0], want)


def test_graph_attention_factorised_equals_naive():
    torch.manual_seed(4)
    enc = TimeEncoder(T, learnable=True)
    emb = GraphAttentionEmbedding(D, enc, F, out_channels=6, heads=2, dropout=0.0)
    q, k, n = 5, 3, 7
    node_mem = torch.randn(n, D)
    index = torch.randint(0, n, (q, k))
    feat, dt = torch.randn(q, k, F), torch.rand(q, k) * 10
    mask = torch.rand(q, k) > 0.3
    mask[0] = False  # a node without neighbours
    mem = torch.randn(q, D)
    out = emb(mem, torch.zeros(q), NeighborContext(node_mem, index, feat, dt, mask))
    want = naive_tgn_attention(emb, enc, mem, node_mem, index, feat, dt, mask)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_time_encoder_schedule():
    enc = TimeEncoder(10, learnable=False)
    want = 10.0 ** -torch.linspace(0, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(enc.weight.double(), want, rtol=1e-6, atol=0)
    assert not enc.weight.requires_grad
    torch.testing.assert_close(enc(torch.zeros(2)), torch.ones(2, 10))
