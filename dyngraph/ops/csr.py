"""Compressed-row graph structure, rows = target nodes (PyG flow source -> target)."""

from __future__ import annotations

import torch
from torch import Tensor

from dyngraph.errors import DataError, ShapeError

__all__ = ["CSR"]

_INT32_MAX = 2**31 - 1


class CSR:
    """A graph in compressed sparse row form whose rows are the **target** nodes.

    For an edge ``j -> i`` (``edge_index[0] = j``, ``edge_index[1] = i``) the row is ``i`` and the
    column is ``j``, so ``ptr[i]:ptr[i+1]`` lists the incoming edges of ``i`` — exactly what
    message passing reduces over.

    Attributes:
        ptr: ``[num_nodes + 1]`` int64 row pointers.
        col: ``[E]`` int64 source node of each edge, in CSR order.
        perm: ``[E]`` int64, CSR position -> position of that edge in the original
            ``edge_index`` (edge values given in the original order are ``values[perm]``).
        num_nodes: number of target nodes (rows); for an ordinary graph the node count.
        num_src_nodes: number of source nodes (columns); equals ``num_nodes`` unless the graph
            was built bipartite with ``size=(num_src, num_dst)``.

    Derived tensors (in-degree, row of each edge, int32 copies for the sparse kernels, the
    transposed graph used by backward passes) are computed on first use and cached, so build a
    ``CSR`` once per graph and reuse it.
    """

    __slots__ = (
        "ptr",
        "col",
        "perm",
        "num_nodes",
        "num_src_nodes",
        "_row",
        "_inv_perm",
        "_deg",
        "_ptr32",
        "_col32",
        "_transpose",
        "_t_index",
        "_cache",
    )

    def __init__(
        self,
        ptr: Tensor,
        col: Tensor,
        perm: Tensor,
        num_nodes: int,
        num_src_nodes: int | None = None,
    ) -> None:
        """Wrap already-sorted CSR tensors (no sorting, light checks). Most callers want
        :meth:`from_edge_index`."""
        num_src_nodes = num_nodes if num_src_nodes is None else int(num_src_nodes)
        if ptr.dim() != 1 or ptr.numel() != num_nodes + 1:
            raise ShapeError(
                f"CSR: ptr must have num_nodes + 1 = {num_nodes + 1} entries, got "
                f"{tuple(ptr.shape)}"
            )
        if col.dim() != 1 or perm.shape != col.shape:
            raise ShapeError(
                f"CSR: col and perm must be 1-D of equal length, got {tuple(col.shape)} and "
                f"{tuple(perm.shape)}"
            )
        self.ptr = ptr.long()
        self.col = col.long()
        self.perm = perm.long()
        self.num_nodes = int(num_nodes)
        self.num_src_nodes = num_src_nodes
        self._row: Tensor | None = None
        self._inv_perm: Tensor | None = None
        self._deg: Tensor | None = None
        self._ptr32: Tensor | None = None
        self._col32: Tensor | None = None
        self._transpose: CSR | None = None
        self._t_index: Tensor | None = None
        self._cache: dict[object, Tensor] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edge_index(
        cls,
        edge_index: Tensor,
        num_nodes: int | None = None,
        *,
        size: tuple[int, int] | None = None,
    ) -> CSR:
        """Build from a PyG ``edge_index [2, E]`` (row 0 = source, row 1 = target).

        Args:
            edge_index: integer tensor ``[2, E]``; duplicate edges and self-loops are kept.
            num_nodes: node count (default: ``max id + 1``, 0 for an empty graph).
            size: ``(num_src_nodes, num_dst_nodes)`` for a bipartite graph, instead of
                ``num_nodes``.

        Edges with the same target keep their original relative order (stable sort), so
        ``perm`` is deterministic. Ids are validated once here (``DataError`` naming the first
        bad edge), which is what lets the aggregation kernels skip per-call checks.
        """
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)
            raise ShapeError(f"CSR.from_edge_index: edge_index must have shape [2, E], got {shape}")
        if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
            raise ShapeError(
                f"CSR.from_edge_index: edge_index must be an integer tensor, got {edge_index.dtype}"
            )
        if num_nodes is not None and size is not None:
            raise ShapeError("CSR.from_edge_index: pass num_nodes or size, not both")
        edge_index = edge_index.long()
        src, dst = edge_index[0], edge_index[1]
        num_edges = src.numel()
        if size is not None:
            num_src, num_dst = int(size[0]), int(size[1])
        elif num_nodes is not None:
            num_src = num_dst = int(num_nodes)
        else:
            num_src = num_dst = int(edge_index.max()) + 1 if num_edges else 0
        if num_src < 0 or num_dst < 0:
            raise ShapeError(
                f"CSR.from_edge_index: node counts must be >= 0, got {(num_src, num_dst)}"
            )
        if num_edges:
            for name, ids, bound in (("source", src, num_src), ("target", dst, num_dst)):
                bad = (ids < 0) | (ids >= bound)
                if bool(bad.any()):
                    e = int(bad.nonzero()[0])
                    raise DataError(
                        f"CSR.from_edge_index: edge {e} has {name} id {int(ids[e])}, outside "
                        f"[0, {bound}); fix edge_index or pass a larger num_nodes/size"
                    )
        perm = torch.argsort(dst, stable=True)
        counts = torch.bincount(dst, minlength=num_dst)
        ptr = torch.zeros(num_dst + 1, dtype=torch.long, device=dst.device)
        torch.cumsum(counts, 0, out=ptr[1:])
        csr = cls(ptr, src[perm], perm, num_dst, num_src)
        csr._deg = counts
        csr._row = dst[perm]
        return csr

    # ------------------------------------------------------------------ properties
    @property
    def num_edges(self) -> int:
        """Number of stored edges ``E`` (entries of ``col``)."""
        return self.col.numel()

    @property
    def shape(self) -> tuple[int, int]:
        """``(num_nodes, num_src_nodes)``: shape of the adjacency matrix ``A[target, source]``."""
        return (self.num_nodes, self.num_src_nodes)

    @property
    def device(self) -> torch.device:
        """Device of the index tensors."""
        return self.ptr.device

    @property
    def deg(self) -> Tensor:
        """In-degree of every target node ``[num_nodes]`` (int64)."""
        if self._deg is None:
            self._deg = self.ptr.diff()
        return self._deg

    @property
    def row(self) -> Tensor:
        """Target node of each edge in CSR order ``[E]``."""
        if self._row is None:
            self._row = torch.repeat_interleave(
                torch.arange(self.num_nodes, device=self.device),
                self.deg,
                output_size=self.num_edges,
            )
        return self._row

    @property
    def inv_perm(self) -> Tensor:
        """Original edge position -> CSR position (inverse of :attr:`perm`)."""
        if self._inv_perm is None:
            inv = torch.empty_like(self.perm)
            inv[self.perm] = torch.arange(self.num_edges, device=self.device)
            self._inv_perm = inv
        return self._inv_perm

    def index_tensors(self) -> tuple[Tensor, Tensor]:
        """``(ptr, col)`` as the sparse kernels like them: int32 when the graph fits (less index
        traffic per edge, measurably faster in spmm/sampled kernels), else int64."""
        if self._ptr32 is None:
            fits = max(self.num_edges, self.num_nodes, self.num_src_nodes) <= _INT32_MAX
            if fits:
                self._ptr32, self._col32 = self.ptr.int(), self.col.int()
            else:
                self._ptr32, self._col32 = self.ptr, self.col
        assert self._col32 is not None
        return self._ptr32, self._col32

    # ------------------------------------------------------------------ operations
    def permute(self, edge_values: Tensor) -> Tensor:
        """Reorder per-edge values ``[E, ...]`` from the original edge order into CSR order
        (differentiable)."""
        if not isinstance(edge_values, Tensor) or edge_values.dim() == 0:
            raise ShapeError("CSR.permute: edge_values must be a tensor of shape [E, ...]")
        if edge_values.size(0) != self.num_edges:
            raise ShapeError(
                f"CSR.permute: edge_values has {edge_values.size(0)} rows but the graph has "
                f"{self.num_edges} edges"
            )
        return edge_values.index_select(0, self.perm)

    def transpose(self) -> CSR:
        """The reversed graph (rows = source nodes) as a cached ``CSR``.

        Its ``perm`` still points into the original edge order; :meth:`transpose_index` maps its
        positions to this graph's CSR positions. ``csr.transpose().transpose() is csr``.
        """
        if self._transpose is None:
            order = torch.argsort(self.col, stable=True)
            counts = torch.bincount(self.col, minlength=self.num_src_nodes)
            ptr = torch.zeros(self.num_src_nodes + 1, dtype=torch.long, device=self.device)
            torch.cumsum(counts, 0, out=ptr[1:])
            t = CSR(ptr, self.row[order], self.perm[order], self.num_src_nodes, self.num_nodes)
            t._deg = counts
            t._row = self.col[order]
            t._transpose = self
            inv = torch.empty_like(order)
            inv[order] = torch.arange(order.numel(), device=self.device)
            t._t_index = inv
            self._transpose = t
            self._t_index = order
        return self._transpose

    def transpose_index(self) -> Tensor:
        """``[E]``: for each position of :meth:`transpose`, the matching position in this CSR."""
        self.transpose()
        assert self._t_index is not None
        return self._t_index

    def to(self, device: torch.device | str) -> CSR:
        """Copy to ``device`` (cached derived tensors are recomputed lazily)."""
        return CSR(
            self.ptr.to(device),
            self.col.to(device),
            self.perm.to(device),
            self.num_nodes,
            self.num_src_nodes,
        )

    def __repr__(self) -> str:
        bip = ""
        if self.num_src_nodes != self.num_nodes:
            bip = f", num_src_nodes={self.num_src_nodes}"
        return f"CSR(num_nodes={self.num_nodes}{bip}, num_edges={self.num_edges})"
