"""Symmetric GCN normalisation, computed once per snapshot and reused.

``GCNAdjacency`` holds :math:`\\hat A = D^{-1/2}(A + I)D^{-1/2}` for one graph in CSR form,
so a sequence model that visits the same snapshot many times (every epoch, every sliding
window) pays for the normalisation once. Propagation goes through the fused
``dyngraph.ops.gather_aggregate`` (or, as a reference, ``torch.sparse.mm`` on a CSR tensor);
both give ``out[i] = sum_j Ahat[i, j] x[j]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.ops import CSR, gather_aggregate

__all__ = ["GCNAdjacency", "DiagonalSplit", "gcn_norm", "gcn_split", "as_adjacency"]


def _checked(
    edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, dtype: torch.dtype | None
) -> tuple[Tensor, Tensor]:
    """Validate a graph and return ``(edge_index as int64, edge weights in dtype)``."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ShapeError(
            f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}; "
            "pass a LongTensor of (source, target) rows"
        )
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise DataError(
            f"edge_index has ids outside [0, {num_nodes}); pass num_nodes >= max id + 1"
        )
    dtype = dtype or (
        edge_weight.dtype
        if edge_weight is not None and edge_weight.is_floating_point()
        else torch.get_default_dtype()
    )
    if edge_weight is None:
        return edge_index, torch.ones(edge_index.size(1), device=edge_index.device, dtype=dtype)
    if edge_weight.shape != (edge_index.size(1),):
        raise ShapeError(
            f"edge_weight must have shape [{edge_index.size(1)}], got {tuple(edge_weight.shape)}"
        )
    if not torch.isfinite(edge_weight).all():
        raise DataError("edge_weight contains NaN/Inf; clean the weights before normalising")
    return edge_index, edge_weight.to(dtype)


def gcn_norm(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    num_nodes: int,
    add_self_loops: bool = True,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Return ``(edge_index, weight)`` of :math:`D^{-1/2}(A + I)D^{-1/2}` (flow source→target).

    ``edge_index`` [2, E] holds ``(source, target)``; duplicate edges add up. The degree is the
    weighted in-degree of each target (with the self loop), as in ``torch_geometric``'s
    ``gcn_norm``; on undirected graphs this equals the out-degree the EvolveGCN code uses.
    Isolated nodes keep their self loop with weight 1.
    """
    edge_index, edge_weight = _checked(edge_index, edge_weight, num_nodes, dtype)
    device = edge_index.device
    if add_self_loops:
        loop = torch.arange(num_nodes, device=device)
        edge_index = torch.cat([edge_index, torch.stack([loop, loop])], dim=1)
        edge_weight = torch.cat([edge_weight, edge_weight.new_ones(num_nodes)])
    deg = edge_weight.new_zeros(num_nodes).index_add_(0, edge_index[1], edge_weight)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt = torch.where(torch.isfinite(inv_sqrt), inv_sqrt, torch.zeros_like(inv_sqrt))
    weight = inv_sqrt[edge_index[0]] * edge_weight * inv_sqrt[edge_index[1]]
    return edge_index, weight


class DiagonalSplit(NamedTuple):
    r""":math:`\hat A = \mathrm{diag}(d) + O`, with :math:`O` (the off-diagonal entries) kept only
    on the ``T`` rows that have any (on a sparse snapshot, a few hundred of thousands).

    ``diag`` [N]; ``slot`` [N] int64, the position of node ``i`` in ``rows`` or -1;
    ``rows`` [T] int64 ascending; ``ptr`` [T + 1], ``col`` [nnz] int64 and ``val`` [nnz]: the
    off-diagonal entries of row ``rows[t]`` are ``col[ptr[t]:ptr[t+1]]`` with weights ``val``.
    """

    diag: Tensor
    slot: Tensor
    rows: Tensor
    ptr: Tensor
    col: Tensor
    val: Tensor


def gcn_split(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    num_nodes: int,
    add_self_loops: bool = True,
    dtype: torch.dtype | None = None,
) -> DiagonalSplit:
    """:func:`gcn_norm` directly in :class:`DiagonalSplit` form, without materialising the
    ``N`` self loops or a CSR over ``N + E`` entries: ``O(N + E log E)`` with small constants,
    for graphs normalised on every call. Same arguments and values as :func:`gcn_norm`."""
    edge_index, w = _checked(edge_index, edge_weight, num_nodes, dtype)
    src, dst = edge_index[0], edge_index[1]
    # same summation order as gcn_norm (the edges, then the self loop)
    deg = w.new_zeros(num_nodes).index_add_(0, dst, w)
    if add_self_loops:
        deg += 1
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt = torch.where(torch.isfinite(inv_sqrt), inv_sqrt, torch.zeros_like(inv_sqrt))
    wn = inv_sqrt[src] * w * inv_sqrt[dst]
    diag = inv_sqrt * inv_sqrt if add_self_loops else w.new_zeros(num_nodes)
    on_diag = src == dst
    diag.index_add_(0, dst[on_diag], wn[on_diag])
    off = ~on_diag
    r, c, v = dst[off], src[off], wn[off]
    order = torch.sort(r, stable=True).indices  # rows ascending, edges of a row in input order
    r, c, v = r[order], c[order], v[order]
    return _split_from_sorted(num_nodes, diag, r, c, v)


def _split_from_sorted(n: int, diag: Tensor, r: Tensor, c: Tensor, v: Tensor) -> DiagonalSplit:
    rows, counts = torch.unique_consecutive(r, return_counts=True)
    ptr = torch.zeros(rows.numel() + 1, dtype=torch.long, device=r.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    slot = torch.full((n,), -1, dtype=torch.long, device=r.device)
    slot[rows] = torch.arange(rows.numel(), device=r.device)
    return DiagonalSplit(diag, slot, rows, ptr, c.contiguous(), v.contiguous())


@dataclass
class GCNAdjacency:
    """The normalised adjacency of one snapshot, ready for repeated propagation.

    Build with :meth:`from_edge_index`. ``backend="ops"`` keeps a ``dyngraph.ops.CSR`` (rows
    = targets) plus the normalised edge weights and propagates with the fused
    ``gather_aggregate``; ``backend="torch"`` keeps a ``torch`` sparse CSR matrix and uses
    ``torch.sparse.mm`` (a reference path). Both compute ``out[i] = sum_{j->i} Ahat[i, j] x[j]``;
    the default (``None``) is ``ops``.
    """

    num_nodes: int
    matrix: Tensor | None = None
    csr: object | None = None
    weight: Tensor | None = None
    _splits: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_edge_index(
        cls,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        num_nodes: int | None = None,
        add_self_loops: bool = True,
        dtype: torch.dtype | None = None,
        backend: str | None = None,
    ) -> GCNAdjacency:
        r"""Normalise a graph once: :math:`\hat A = \tilde D^{-1/2}(A + I)\tilde D^{-1/2}`.

        Args:
            edge_index: ``[2, E]`` edges ``source -> target``.
            edge_weight: ``[E]`` weights (default 1).
            num_nodes: ``N`` (default: largest id + 1).
            add_self_loops: add :math:`I` before normalising (GCN's renormalisation trick).
            dtype: dtype of the normalised weights (default: ``edge_weight``'s, else float32).
            backend: ``"ops"`` (default; a :class:`dyngraph.ops.CSR` used by
                :func:`dyngraph.ops.gather_aggregate`) or ``"torch"`` (a torch sparse CSR matrix).

        Returns:
            the normalised ``[N, N]`` adjacency, reusable across forward calls.

        Raises:
            ConfigError: unknown ``backend``.
        """
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        ei, w = gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops, dtype)
        if backend not in (None, "ops", "torch"):
            raise ConfigError(f"backend must be 'ops' or 'torch', got {backend!r}")
        if backend != "torch":
            return cls(num_nodes, csr=CSR.from_edge_index(ei, num_nodes=num_nodes), weight=w)
        coo = torch.sparse_coo_tensor(
            ei.flip(0), w, (num_nodes, num_nodes), check_invariants=False
        ).coalesce()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            csr = coo.to_sparse_csr()
        return cls(num_nodes, matrix=csr)

    def propagate(self, x: Tensor) -> Tensor:
        """``Ahat @ x`` for ``x`` [N, F]; differentiable w.r.t. ``x``."""
        if x.size(0) != self.num_nodes:
            raise ShapeError(
                f"x has {x.size(0)} rows but the snapshot has {self.num_nodes} nodes; "
                "give one feature row per node id of the snapshot"
            )
        if self.csr is not None:
            if self.weight.dtype != x.dtype:
                self.weight = self.weight.to(x.dtype)
            return gather_aggregate(x, self.csr, self.weight, "sum")
        if self.matrix.dtype != x.dtype:
            self.matrix = self.matrix.to(x.dtype)
        return torch.sparse.mm(self.matrix, x)

    def split(self, dtype: torch.dtype | None = None) -> DiagonalSplit:
        r"""The diagonal / off-diagonal decomposition of :math:`\hat A` (cached per dtype), used
        by EvolveGCN's fused convolution; see :class:`DiagonalSplit`."""
        dtype = dtype or (self.weight.dtype if self.matrix is None else self.matrix.dtype)
        if dtype not in self._splits:
            self._splits[dtype] = self._make_split(dtype)
        return self._splits[dtype]

    def _make_split(self, dtype: torch.dtype) -> DiagonalSplit:
        n = self.num_nodes
        if self.csr is not None:
            # edges in CSR order (rows = targets ascending); weight is in edge_index order
            row, col, w = self.csr.row, self.csr.col, self.weight.detach()[self.csr.perm]
        else:
            crow = self.matrix.crow_indices()
            col, w = self.matrix.col_indices(), self.matrix.values().detach()
            row = torch.repeat_interleave(torch.arange(n, device=col.device), crow.diff())
        w = w.to(dtype)
        on_diag = row == col
        diag = w.new_zeros(n).index_add_(0, row[on_diag], w[on_diag])
        off = ~on_diag
        return _split_from_sorted(n, diag, row[off], col[off], w[off])


def as_adjacency(
    graph: Tensor | GCNAdjacency,
    edge_weight: Tensor | None,
    num_nodes: int,
    dtype: torch.dtype | None = None,
) -> GCNAdjacency:
    """Accept either a raw ``edge_index`` or an already normalised :class:`GCNAdjacency`."""
    if isinstance(graph, GCNAdjacency):
        if graph.num_nodes != num_nodes:
            raise ShapeError(f"adjacency is for {graph.num_nodes} nodes but x has {num_nodes} rows")
        return graph
    return GCNAdjacency.from_edge_index(graph, edge_weight, num_nodes, dtype=dtype)
