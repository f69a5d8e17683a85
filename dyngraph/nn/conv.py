"""Static graph convolutions used by architecture search.

The main layer is :class:`GeneralAttentionConv`, the layer of the GraphNAS / Auto-GNN search
space: a linear projection, a pluggable *edge attention* function and a pluggable
neighbourhood *aggregation*. Attention functions live in a registry so users can add their own
(``@register_attention("name")`` on an :class:`EdgeAttention` subclass) and search over them.

(Named ``GeneralAttentionConv`` on purpose: PyG's ``AGNNConv`` is an unrelated layer.)
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import add_self_loops, degree, remove_self_loops, softmax

from dyngraph.errors import ConfigError, ShapeError

__all__ = [
    "EdgeAttention",
    "GeneralAttentionConv",
    "ATTENTIONS",
    "AGGREGATIONS",
    "register_attention",
    "sparse_dropout",
]

#: name -> EdgeAttention subclass; extended with :func:`register_attention`.
ATTENTIONS: dict[str, type[EdgeAttention]] = {}
#: search-space aggregation name -> PyG ``aggr`` string.
AGGREGATIONS: dict[str, str] = {"sum": "add", "mean": "mean", "max": "max"}


def register_attention(name: str) -> Callable[[type[EdgeAttention]], type[EdgeAttention]]:
    """Class decorator adding an :class:`EdgeAttention` subclass to :data:`ATTENTIONS`."""

    def deco(cls: type[EdgeAttention]) -> type[EdgeAttention]:
        if not (isinstance(cls, type) and issubclass(cls, EdgeAttention)):
            raise ConfigError(f"register_attention({name!r}) needs an EdgeAttention subclass")
        ATTENTIONS[name] = cls
        cls.name = name
        return cls

    return deco


class EdgeAttention(torch.nn.Module, abc.ABC):
    """Scores ``e_ij`` of an edge ``j -> i`` per head.

    Subclasses implement :meth:`score`. When ``normalize`` is true the scores are turned into
    coefficients by a softmax over the incoming edges of each target node ``i`` (self-loop
    included); otherwise the scores are the coefficients.
    """

    name: str = ""
    normalize: bool = True

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__()
        self.heads = heads
        self.channels = channels

    def reset_parameters(self) -> None:
        """Re-initialise every parameter with Glorot (Xavier uniform) initialisation."""
        for p in self.parameters():
            glorot(p)

    @abc.abstractmethod
    def score(self, x_i: Tensor, x_j: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
        """``x_i, x_j``: projected features ``[E, H, C]`` of targets / sources; ``edge_index``
        ``[2, E]`` (with self-loops) → scores ``[E, H]``."""

    def extra_repr(self) -> str:
        return f"heads={self.heads}, channels={self.channels}"


def _vec(heads: int, channels: int) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.empty(1, heads, channels))


@register_attention("const")
class ConstAttention(EdgeAttention):
    r"""``a_ij = 1`` (plain aggregation of the projected neighbours)."""

    normalize = False

    def score(self, x_i, x_j, edge_index, num_nodes):
        return x_j.new_ones(x_j.size(0), x_j.size(1))


@register_attention("gcn")
class GCNAttention(EdgeAttention):
    r"""``a_ij = 1 / sqrt(d_i d_j)`` with degrees counted on the graph with self-loops."""

    normalize = False

    def score(self, x_i, x_j, edge_index, num_nodes):
        deg = degree(edge_index[1], num_nodes, dtype=x_j.dtype)
        norm = deg.pow(-0.5)
        norm = norm.masked_fill(torch.isinf(norm), 0.0)
        w = norm[edge_index[0]] * norm[edge_index[1]]
        return w.unsqueeze(-1).expand(-1, x_j.size(1))


@register_attention("gat")
class GATAttention(EdgeAttention):
    r"""``e_ij = LeakyReLU(a_l^T W h_i + a_r^T W h_j)`` (Veličković et al.)."""

    def __init__(self, heads: int, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__(heads, channels)
        self.negative_slope = negative_slope
        self.att_l = _vec(heads, channels)
        self.att_r = _vec(heads, channels)
        self.reset_parameters()

    def score(self, x_i, x_j, edge_index, num_nodes):
        e = (x_i * self.att_l).sum(-1) + (x_j * self.att_r).sum(-1)
        return F.leaky_relu(e, self.negative_slope)


@register_attention("sym-gat")
class SymGATAttention(GATAttention):
    r"""``e_ij = e^gat_ij + e^gat_ji`` — symmetric GAT score."""

    def score(self, x_i, x_j, edge_index, num_nodes):
        e1 = (x_i * self.att_l).sum(-1) + (x_j * self.att_r).sum(-1)
        e2 = (x_j * self.att_l).sum(-1) + (x_i * self.att_r).sum(-1)
        return F.leaky_relu(e1, self.negative_slope) + F.leaky_relu(e2, self.negative_slope)


@register_attention("cos")
class CosAttention(EdgeAttention):
    r"""``e_ij = <a_l ⊙ W h_i, a_r ⊙ W h_j>`` (GraphNAS' "cos": an unnormalised weighted dot)."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.att_l = _vec(heads, channels)
        self.att_r = _vec(heads, channels)
        self.reset_parameters()

    def score(self, x_i, x_j, edge_index, num_nodes):
        return (x_i * self.att_l * x_j * self.att_r).sum(-1)


@register_attention("linear")
class LinearAttention(EdgeAttention):
    r"""``e_ij = tanh(a^T W h_j)`` (depends on the source only)."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.att = _vec(heads, channels)
        self.reset_parameters()

    def score(self, x_i, x_j, edge_index, num_nodes):
        return torch.tanh((x_j * self.att).sum(-1))


@register_attention("gene-linear")
class GeneralizedLinearAttention(EdgeAttention):
    r"""``e_ij = w_g^T tanh(a_l ⊙ W h_i + a_r ⊙ W h_j)``."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.att_l = _vec(heads, channels)
        self.att_r = _vec(heads, channels)
        self.att_g = torch.nn.Parameter(torch.empty(channels, 1))
        self.reset_parameters()

    def score(self, x_i, x_j, edge_index, num_nodes):
        return (torch.tanh(x_i * self.att_l + x_j * self.att_r) @ self.att_g).squeeze(-1)


def sparse_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout that also accepts a sparse COO tensor (drops stored values only)."""
    if not training or p == 0.0:
        return x
    if x.is_sparse:
        x = x.coalesce()
        vals = F.dropout(x.values(), p, True)
        return torch.sparse_coo_tensor(
            x.indices(), vals, x.shape, is_coalesced=True, check_invariants=False
        )
    return F.dropout(x, p, True)


class GeneralAttentionConv(MessagePassing):
    r"""Graph convolution with a searchable attention function and aggregation.

    .. math::
        \mathbf{h}'_i = \big\Vert_{k=1}^{H}\ \mathrm{AGG}_{j \in \mathcal{N}(i) \cup \{i\}}
            \ a^{k}_{ij}\, \mathbf{W}^{k} \mathbf{h}_j \;+\; \mathbf{b}

    where :math:`a^k_{ij}` is given by the attention function (``const``: 1, ``gcn``:
    :math:`1/\sqrt{d_i d_j}`, otherwise a softmax over :math:`j` of the score
    :math:`e^k_{ij}` of ``gat``, ``sym-gat``, ``cos``, ``linear``, ``gene-linear`` or any
    registered :class:`EdgeAttention`) and AGG is ``sum``, ``mean`` or ``max``
    (element-wise). Heads are concatenated (``concat=True``) or averaged.

    Args:
        in_channels: input feature size ``F_in``.
        out_channels: size ``C`` of each head's output.
        heads: number of attention heads ``H``.
        attention: key of :data:`ATTENTIONS`.
        aggregation: ``"sum"``, ``"mean"`` or ``"max"``.
        concat: concatenate heads (output ``H*C``) or average them (output ``C``).
        dropout: dropout probability on the attention coefficients (training only).
        bias: add a learnable bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        attention: str = "gat",
        aggregation: str = "sum",
        concat: bool = True,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        if attention not in ATTENTIONS:
            raise ConfigError(
                f"unknown attention {attention!r}; known: {sorted(ATTENTIONS)} "
                "(add one with @register_attention)"
            )
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {aggregation!r}; use one of {AGGREGATIONS}")
        if min(in_channels, out_channels, heads) < 1:
            raise ConfigError("in_channels, out_channels and heads must be positive")
        super().__init__(aggr=AGGREGATIONS[aggregation], node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.attention_name = attention
        self.aggregation = aggregation
        self.concat = concat
        self.dropout = dropout
        self.weight = torch.nn.Parameter(torch.empty(in_channels, heads * out_channels))
        self.attention = ATTENTIONS[attention](heads, out_channels)
        size = heads * out_channels if concat else out_channels
        self.bias = torch.nn.Parameter(torch.empty(size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the projection (Glorot), the attention parameters and the bias (zeros)."""
        glorot(self.weight)
        self.attention.reset_parameters()
        if self.bias is not None:
            zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``x``: ``[N, F_in]`` (dense or sparse COO), ``edge_index``: ``[2, E]`` (source,
        target) → ``[N, H*C]`` if ``concat`` else ``[N, C]``. Self-loops are (re)added."""
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ShapeError(
                f"x must be [N, {self.in_channels}], got {tuple(x.shape)}; check in_channels"
            )
        n = x.size(0)
        h = torch.sparse.mm(x, self.weight) if x.is_sparse else x @ self.weight
        h = h.view(n, self.heads, self.out_channels)
        edge_index, _ = remove_self_loops(edge_index)
        edge_index, _ = add_self_loops(edge_index, num_nodes=n)
        out = self.propagate(edge_index, x=h, num_nodes=n, edge_index_full=edge_index)
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(
        self, x_i: Tensor, x_j: Tensor, index: Tensor, num_nodes: int, edge_index_full: Tensor
    ) -> Tensor:
        """Attention-weighted message ``a^k_ij * W^k x_j`` of each edge ``j -> i`` and head ``k``.

        The coefficients are the attention scores ``e^k_ij``, softmax-normalised over the incoming
        edges of ``i`` when the attention has ``normalize=True``, then dropped out (training only).

        Args:
            x_i: ``[E, H, C]`` projected features of the edge targets.
            x_j: ``[E, H, C]`` projected features of the edge sources.
            index: ``[E]`` target node of each edge (softmax groups).
            num_nodes: number of nodes ``N``.
            edge_index_full: ``[2, E]`` edges including self-loops, passed to the attention.

        Returns:
            ``[E, H, C]`` messages.
        """
        a = self.attention.score(x_i, x_j, edge_index_full, num_nodes)
        if self.attention.normalize:
            a = softmax(a, index, num_nodes=num_nodes)
        a = F.dropout(a, p=self.dropout, training=self.training)
        return x_j * a.unsqueeze(-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}, attention={self.attention_name}, "
            f"aggregation={self.aggregation}, concat={self.concat})"
        )
