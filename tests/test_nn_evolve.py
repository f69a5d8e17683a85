"""EvolveGCN layers against independent re-computations of the paper's equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn.evolve import (
    EvolveGCN,
    EvolveGCNH,
    EvolveGCNO,
    MatGRUCell,
    MatLSTMCell,
    detach_state,
    summarize,
)
from dyngraph.nn.gcn_norm import GCNAdjacency, gcn_norm


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gru_column_by_column(cell: MatGRUCell, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Paper eq. (4)-(7) for one vector GRU, applied to each column separately."""
    wx = cell.weight_x.detach().double().numpy()
    wh = cell.weight_h.detach().double().numpy()
    b = cell.bias.detach().double().numpy()
    out = np.zeros_like(h)
    for j in range(h.shape[1]):
        xj, hj = x[:, j], h[:, j]
        z = _sig(wx[0] @ xj + wh[0] @ hj + b[0][:, j])
        r = _sig(wx[1] @ xj + wh[1] @ hj + b[1][:, j])
        cand = np.tanh(wx[2] @ xj + wh[2] @ (r * hj) + b[2][:, j])
        out[:, j] = (1 - z) * hj + z * cand
    return out


def _dense_ahat(edge_index: torch.Tensor, n: int) -> np.ndarray:
    a = np.zeros((n, n))
    for s, d in edge_index.t().tolist():
        a[d, s] += 1.0  # row = target: out[i] sums over edges j -> i
    a += np.eye(n)
    dinv = 1.0 / np.sqrt(a.sum(1))
    return dinv[:, None] * a * dinv[None, :]


def _summarize_ref(x: np.ndarray, p: np.ndarray, k: int, mask: np.ndarray | None) -> np.ndarray:
    y = x @ p / np.linalg.norm(p)
    cand = np.arange(len(y)) if mask is None else np.flatnonzero(mask)
    order = cand[np.argsort(-y[cand], kind="stable")][:k]
    order = np.concatenate([order, np.repeat(order[-1:], k - len(order))])
    return x[order] * np.tanh(y[order])[:, None]


def _undirected(edges, n_offset=0):
    e = torch.tensor(edges).t() + n_offset
    return torch.cat([e, e.flip(0)], dim=1)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    ei = _undirected([(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3), (5, 6)])
    x = torch.randn(7, 5, dtype=torch.float64)
    return x, ei


def test_mat_gru_matches_column_by_column_reference():
    torch.manual_seed(1)
    cell = MatGRUCell(4, 3).double()
    with torch.no_grad():
        cell.bias.normal_()  # non-zero, column-specific biases
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    ref = _gru_column_by_column(cell, x.numpy(), h.numpy())
    np.testing.assert_allclose(cell(x, h).detach().numpy(), ref, rtol=1e-12, atol=1e-12)


def test_mat_lstm_matches_torch_lstmcell_per_column():
    torch.manual_seed(2)
    rows, cols = 4, 3
    cell = MatLSTMCell(rows, cols).double()
    with torch.no_grad():
        cell.bias.normal_()
    x, h, c = (torch.randn(rows, cols, dtype=torch.float64) for _ in range(3))
    h_new, c_new = cell(x, (h, c))
    order = [0, 1, 3, 2]  # torch.nn.LSTMCell stacks gates as (i, f, g, o); ours (i, f, o, g)
    for j in range(cols):
        ref = torch.nn.LSTMCell(rows, rows).double()
        with torch.no_grad():
            ref.weight_ih.copy_(cell.weight_x[order].reshape(4 * rows, rows))
            ref.weight_hh.copy_(cell.weight_h[order].reshape(4 * rows, rows))
            ref.bias_ih.copy_(cell.bias[order][:, :, j].reshape(-1))
            ref.bias_hh.zero_()
        hj, cj = ref(x[:, j][None], (h[:, j][None], c[:, j][None]))
        torch.testing.assert_close(h_new[:, j], hj[0])
        torch.testing.assert_close(c_new[:, j], cj[0])


@pytest.mark.parametrize("use_mask", [False, True])
def test_summarize_topk_tanh_reference(use_mask):
    torch.manual_seed(3)
    x = torch.randn(9, 4, dtype=torch.float64)
    p = torch.randn(4, dtype=torch.float64)
    mask = torch.tensor([1, 0, 1, 1, 0, 1, 0, 0, 1], dtype=torch.bool) if use_mask else None
    k = 3
    got = summarize(x, p, k, mask)
    ref = _summarize_ref(x.numpy(), p.numpy(), k, None if mask is None else mask.numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def test_summarize_pads_when_fewer_nodes_than_k():
    x = torch.randn(5, 3, dtype=torch.float64)
    p = torch.randn(3, dtype=torch.float64)
    mask = torch.tensor([0, 1, 0, 1, 0], dtype=torch.bool)
    got = summarize(x, p, 4, mask)
    ref = _summarize_ref(x.numpy(), p.numpy(), 4, mask.numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    assert torch.equal(got[2], got[1]) and torch.equal(got[3], got[1])
    assert torch.count_nonzero(summarize(x, p, 2, torch.zeros(5, dtype=torch.bool))) == 0


def test_gcn_norm_matches_pyg(tiny):
    from torch_geometric.nn.conv.gcn_conv import gcn_norm as pyg_gcn_norm

    _, ei = tiny
    w = torch.rand(ei.size(1))
    ours = torch.sparse_coo_tensor(*gcn_norm(ei, w, 7), (7, 7), check_invariants=False).to_dense()
    ref = torch.sparse_coo_tensor(*pyg_gcn_norm(ei, w, 7, add_self_loops=True), (7, 7))
    torch.testing.assert_close(ours, ref.to_dense())


def test_evolvegcn_o_gru_two_steps_reference(tiny):
    x, ei = tiny
    torch.manual_seed(4)
    layer = EvolveGCNO(5, 3, cell="gru").double()
    with torch.no_grad():
        layer.cell.bias.normal_(0, 0.3)
    ahat = _dense_ahat(ei, 7)
    w = layer.initial_weight.detach().numpy()
    state = None
    for step in range(2):
        out, state = layer(x, ei, state=state)
        w = _gru_column_by_column(layer.cell, w, w)  # GRU input is its own state
        np.testing.assert_allclose(
            out.detach().numpy(), ahat @ x.numpy() @ w, rtol=1e-10, err_msg=f"step {step}"
        )
        np.testing.assert_allclose(state.detach().numpy(), w, rtol=1e-12)


def test_evolvegcn_o_lstm_reference(tiny):
    x, ei = tiny
    torch.manual_seed(5)
    layer = EvolveGCNO(5, 2, cell="lstm").double()
    out, (h, c) = layer(x, ei)
    w0 = layer.initial_weight
    h_ref, c_ref = layer.cell(w0, (w0, torch.zeros_like(w0)))
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
    ref = _dense_ahat(ei, 7) @ x.numpy() @ h_ref.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10)


def test_evolvegcn_h_reference_with_mask(tiny):
    x, ei = tiny
    torch.manual_seed(6)
    layer = EvolveGCNH(5, 3).double()
    mask = torch.tensor([1, 1, 1, 1, 1, 0, 0], dtype=torch.bool)
    out, w_t = layer(x, ei, node_mask=mask)
    z = _summarize_ref(x.numpy(), layer.scorer.detach().numpy(), 3, mask.numpy()).T
    w_ref = _gru_column_by_column(layer.cell, z, layer.initial_weight.detach().numpy())
    np.testing.assert_allclose(w_t.detach().numpy(), w_ref, rtol=1e-12)
    ref = _dense_ahat(ei, 7) @ x.numpy() @ w_ref
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10)


def test_state_is_explicit_and_nonsquare(tiny):
    x, ei = tiny
    for layer in (EvolveGCNO(5, 2).double(), EvolveGCNH(5, 2).double()):
        a, s1 = layer(x, ei)
        b, s2 = layer(x, ei)  # no hidden state: same call, same answer
        torch.testing.assert_close(a, b)
        assert a.shape == (7, 2) and s1.shape == (5, 2)
        c, _ = layer(x, ei, state=s1)  # the evolved state changes the next output
        assert not torch.allclose(a, c)


def test_sequence_matches_stepwise_and_adjacency_cache(tiny):
    x, ei = tiny
    torch.manual_seed(7)
    model = EvolveGCN(5, 4, num_layers=2, variant="h", act=torch.nn.ReLU()).double()
    graphs = [ei, ei[:, :6], GCNAdjacency.from_edge_index(ei[:, 4:], num_nodes=7)]
    xs = [x, x * 0.5, x + 1]
    outs, state = model.forward_sequence(xs, graphs)
    s = None
    for xt, g, o in zip(xs, graphs, outs):
        ot, s = model(xt, g, state=s)
        torch.testing.assert_close(o, ot)
    assert len(state) == 2 and state[1].shape == (4, 4)


def test_gradcheck_stack_and_tbptt_cut(tiny):
    x, ei = tiny
    torch.manual_seed(8)
    model = EvolveGCN(5, 3, num_layers=2, variant="o", cell="lstm", act=torch.nn.Tanh()).double()
    x = x.clone().requires_grad_(True)

    def f(inp):
        out, st = model(inp, ei)
        out2, _ = model(inp, ei, state=st)
        return out2

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)
    _, st = model(x, ei)
    out, _ = model(x, ei, state=detach_state(st))
    out.sum().backward()
    # after the cut, W_0 influences nothing but the first layer's... nothing at all
    assert model.layers[0].initial_weight.grad is None


def test_changing_node_sets_different_sizes():
    torch.manual_seed(9)
    model = EvolveGCN(3, 4, num_layers=2, variant="h")
    state = None
    for n in (6, 11, 4):
        ei = torch.randint(0, n, (2, 2 * n))
        out, state = model(torch.randn(n, 3), ei, state=state, node_mask=torch.ones(n, dtype=bool))
        assert out.shape == (n, 4)


def _community_snapshot(n: int, gen: torch.Generator):
    """Two communities; links only inside; features = noisy community indicator."""
    comm = torch.randint(0, 2, (n,), generator=gen)
    src = torch.randint(0, n, (6 * n,), generator=gen)
    dst = torch.randint(0, n, (6 * n,), generator=gen)
    keep = (comm[src] == comm[dst]) & (src != dst)
    ei = torch.stack([src[keep], dst[keep]])
    ei = torch.cat([ei, ei.flip(0)], 1)
    x = torch.nn.functional.one_hot(comm, 2).float() + 0.3 * torch.randn(n, 2, generator=gen)
    x = torch.cat([x, torch.ones(n, 1)], 1)
    return x, ei, comm


@pytest.mark.parametrize("variant", ["o", "h"])
def test_trains_on_snapshots_with_disjoint_node_sets(variant):
    """No node embeddings: a model trained on one set of nodes scores unseen nodes."""
    torch.manual_seed(10)
    gen = torch.Generator().manual_seed(10)
    model = EvolveGCN(3, 8, num_layers=2, variant=variant, act=torch.nn.Tanh())
    scale = torch.nn.Parameter(torch.tensor([5.0, 0.0]))
    opt = torch.optim.Adam([*model.parameters(), scale], lr=0.02)

    def logit(h, i, j):
        return scale[0] * torch.nn.functional.cosine_similarity(h[i], h[j], dim=-1) + scale[1]

    sizes = [30, 45, 25, 40]  # every snapshot is a fresh node set of a different size
    for _ in range(15):
        state, loss = None, 0.0
        for n in sizes:
            x, ei, comm = _community_snapshot(n, gen)
            h, state = model(x, ei, state=state)
            i, j = torch.randint(0, n, (2, 200), generator=gen)
            y = (comm[i] == comm[j]).float()
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(logit(h, i, j), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, ei, comm = _community_snapshot(37, gen)
    with torch.no_grad():
        h, _ = model(x, ei, state=state)
        i, j = torch.triu_indices(37, 37, 1)
        s = logit(h, i, j)
    y = comm[i] == comm[j]
    auc = (s[y][:, None] > s[~y][None, :]).float().mean().item()
    assert auc > 0.9, auc


def test_errors():
    with pytest.raises(ConfigError):
        EvolveGCNO(3, 2, cell="rnn")
    with pytest.raises(ConfigError):
        EvolveGCN(3, 2, variant="h", cell="lstm")
    layer = EvolveGCNO(3, 2)
    with pytest.raises(ShapeError):
        layer(torch.randn(4, 5), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ShapeError):
        MatGRUCell(3, 2)(torch.randn(3, 3), torch.randn(3, 2))
    assert "cell=gru" in repr(layer) and "variant=h" in repr(EvolveGCN(3, 2, variant="h"))


def test_adjacency_backends_agree(tiny):
    x, ei = tiny
    w = torch.rand(ei.size(1), dtype=torch.float64)
    a = GCNAdjacency.from_edge_index(ei, w, 7, backend="torch").propagate(x)
    b = GCNAdjacency.from_edge_index(ei, w, 7, backend="ops").propagate(x)
    torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError):
        GCNAdjacency.from_edge_index(ei, w, 7, backend="cuda")
    with pytest.raises(ShapeError):
        GCNAdjacency.from_edge_index(ei, w, 7).propagate(torch.randn(6, 5))
