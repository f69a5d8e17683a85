import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.utils import to_undirected

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn.conv import (
    ATTENTIONS,
    EdgeAttention,
    GeneralAttentionConv,
    register_attention,
)


def _graph(n=7, e=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(ei, dim=1)
    x = torch.randn(n, 5, generator=g)
    return x, ei


def _dense_scores(conv, h, adj):
    """Independent dense computation of a_ij (rows: target i, cols: source j) per head."""
    name = conv.attention_name
    att = conv.attention
    n, heads, _ = h.shape
    hi = h.unsqueeze(1)  # [N,1,H,C] target i
    hj = h.unsqueeze(0)  # [1,N,H,C] source j
    if name == "const":
        return adj.unsqueeze(-1).expand(n, n, heads).float()
    if name == "gcn":
        deg = adj.sum(1)  # in-degree with self loop
        w = adj / torch.sqrt(deg[:, None] * deg[None, :])
        return w.unsqueeze(-1).expand(n, n, heads)
    if name == "gat":
        e = (hi * att.att_l).sum(-1) + (hj * att.att_r).sum(-1)
        e = F.leaky_relu(e, 0.2)
    elif name == "sym-gat":
        e = F.leaky_relu((hi * att.att_l).sum(-1) + (hj * att.att_r).sum(-1), 0.2)
        e = e + e.transpose(0, 1)
    elif name == "cos":
        e = (hi * att.att_l * hj * att.att_r).sum(-1)
    elif name == "linear":
        e = torch.tanh((hj * att.att).sum(-1)).expand(n, n, heads)
    elif name == "gene-linear":
        e = torch.tanh(hi * att.att_l + hj * att.att_r) @ att.att_g
        e = e.squeeze(-1)
    mask = adj.bool().unsqueeze(-1)
    e = e.masked_fill(~mask, float("-inf"))
    return torch.softmax(e, dim=1) * mask


def _dense_reference(conv, x, ei):
    n = x.size(0)
    adj = torch.zeros(n, n)
    adj[ei[1], ei[0]] = 1.0
    adj.fill_diagonal_(1.0)
    h = (x @ conv.weight).view(n, conv.heads, conv.out_channels)
    a = _dense_scores(conv, h, adj)  # [N(i), N(j), H]
    msg = a.unsqueeze(-1) * h.unsqueeze(0)  # [i, j, H, C]
    if conv.aggregation == "sum":
        out = msg.sum(1)
    elif conv.aggregation == "mean":
        out = msg.sum(1) / adj.sum(1).view(n, 1, 1)
    else:
        msg = msg.masked_fill(~adj.bool().view(n, n, 1, 1), float("-inf"))
        out = msg.max(1).values
    out = out.reshape(n, -1) if conv.concat else out.mean(1)
    return out + conv.bias


@pytest.mark.parametrize("attention", ["const", "gcn", "gat", "sym-gat", "cos", "linear",
                                       "gene-linear"])
@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
@pytest.mark.parametrize("concat", [True, False])
def test_attention_against_dense(attention, aggregation, concat):
    torch.manual_seed(1)
    x, ei = _graph()
    conv = GeneralAttentionConv(5, 3, heads=2, attention=attention, aggregation=aggregation,
                                concat=concat)
    with torch.no_grad():
        conv.bias.normal_()
    conv.eval()
    out = conv(x, ei)
    ref = _dense_reference(conv, x, ei)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # sparse input (the Planetoid fast path) gives the same result
    torch.testing.assert_close(conv(x.to_sparse(), ei), out, atol=1e-5, rtol=1e-5)


def test_gat_matches_pyg_gatconv():
    torch.manual_seed(0)
    x, ei = _graph(9, 30)
    ours = GeneralAttentionConv(5, 4, heads=3, attention="gat", aggregation="sum")
    ref = GATConv(5, 4, heads=3, concat=True)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.weight.t())
        ref.att_src.copy_(ours.attention.att_r)
        ref.att_dst.copy_(ours.attention.att_l)
        ours.bias.normal_()
        ref.bias.copy_(ours.bias)
    torch.testing.assert_close(ours(x, ei), ref(x, ei), atol=1e-5, rtol=1e-5)


def test_gcn_matches_pyg_gcnconv():
    torch.manual_seed(0)
    x, ei = _graph(9, 30)
    ei = to_undirected(ei)
    ours = GeneralAttentionConv(5, 4, heads=1, attention="gcn", aggregation="sum")
    ref = GCNConv(5, 4)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.weight.t())
        ours.bias.normal_()
        ref.bias.copy_(ours.bias)
    torch.testing.assert_close(ours(x, ei), ref(x, ei), atol=1e-5, rtol=1e-5)


def test_gradients_flow_to_all_parameters():
    x, ei = _graph()
    for name in ATTENTIONS:
        conv = GeneralAttentionConv(5, 3, heads=2, attention=name)
        conv(x, ei).pow(2).sum().backward()
        for pname, p in conv.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (name, pname)


def test_errors_and_registry():
    x, ei = _graph()
    with pytest.raises(ConfigError):
        GeneralAttentionConv(5, 3, attention="nope")
    with pytest.raises(ConfigError):
        GeneralAttentionConv(5, 3, aggregation="median")
    with pytest.raises(ShapeError):
        GeneralAttentionConv(4, 3)(x, ei)

    @register_attention("test-dot")
    class DotAttention(EdgeAttention):
        def score(self, x_i, x_j, edge_index, num_nodes):
            return (x_i * x_j).sum(-1)

    try:
        conv = GeneralAttentionConv(5, 3, heads=2, attention="test-dot")
        out = conv(x, ei)
        assert out.shape == (7, 6)
        assert "test-dot" in repr(conv)
    finally:
        del ATTENTIONS["test-dot"]
