r"""EvolveGCN (Pareja et al., AAAI 2020): GCNs whose weight matrix evolves across snapshots.

A recurrent cell turns the GCN weight :math:`W_{t-1}^{(l)} \in \mathbb{R}^{F_{in}\times F_{out}}`
into :math:`W_t^{(l)}`; the snapshot is then convolved with the new weight,

.. math::
    H_t^{(l+1)} = \sigma\big(\hat A_t H_t^{(l)} W_t^{(l)}\big),\qquad
    \hat A_t = D_t^{-1/2}(A_t + I)D_t^{-1/2}.

* **EvolveGCN-O** — the weight is both input and state of the cell:
  :math:`W_t = \mathrm{GRU}(W_{t-1}, W_{t-1})` (as in the authors' code) or
  :math:`W_t = \mathrm{LSTM}(W_{t-1})` (as written in the paper).
* **EvolveGCN-H** — the cell input summarises the node embeddings:
  :math:`W_t = \mathrm{GRU}(\mathrm{summarize}(H_t, F_{out})^\top, W_{t-1})`.

The matrix GRU applies one vector GRU to every column with shared gate matrices
(:math:`W_\ast, U_\ast \in \mathbb{R}^{F_{in}\times F_{in}}`, :math:`B_\ast \in
\mathbb{R}^{F_{in}\times F_{out}}`), so weights need not be square. Nothing here depends on
the number of nodes, so node sets may change freely between snapshots. No state is kept
inside the modules: every ``forward`` takes the previous state and returns the new one, and
``forward_sequence`` threads it through a whole sequence.

Speed: with the native extension (``kernels/evolve.cpp``, CPU float32/float64) the
convolution :math:`\hat A X W` runs as one fused op each way on the diagonal + off-diagonal
split of :math:`\hat A` (:class:`~dyngraph.nn.gcn_norm.DiagonalSplit`: a snapshot touches
only a few hundred of its thousands of nodes), and each matrix-GRU step is one op each way.
Their backward passes are first-order (``DYNGRAPH_OPS_BACKEND=torch`` selects the plain torch
ops, e.g. for second derivatives); without the extension the torch ops are used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dyngraph.errors import BackendError, ConfigError, ShapeError
from dyngraph.nn.gcn_norm import DiagonalSplit, GCNAdjacency, as_adjacency, gcn_split

__all__ = [
    "MatGRUCell",
    "MatLSTMCell",
    "summarize",
    "EvolveGCNO",
    "EvolveGCNH",
    "EvolveGCN",
    "detach_state",
]

Graph = Tensor | GCNAdjacency | DiagonalSplit
_NATIVE_DTYPES = (torch.float32, torch.float64)


def _uniform_(t: Tensor, fan: int) -> None:
    bound = 1.0 / math.sqrt(max(fan, 1))
    nn.init.uniform_(t, -bound, bound)


def _mat_gru_reference(x: Tensor, h: Tensor, wx: Tensor, wh: Tensor, b: Tensor) -> Tensor:
    """The matrix GRU step in plain torch ops (also the reference the tests compare with)."""
    gx = torch.matmul(wx, x)  # [3, rows, cols]
    uh = torch.matmul(wh[:2], h)
    z = torch.sigmoid(gx[0] + uh[0] + b[0])
    r = torch.sigmoid(gx[1] + uh[1] + b[1])
    h_tilde = torch.tanh(gx[2] + wh[2] @ (r * h) + b[2])
    return (1 - z) * h + z * h_tilde


def _native_gru_ok(x: Tensor, h: Tensor, wx: Tensor) -> bool:
    """Whether the fused step of ``kernels/evolve.cpp`` applies (CPU float32/64; its backward
    is first-order only, like the fused convolution: ``DYNGRAPH_OPS_BACKEND=torch`` selects
    the plain torch ops when second derivatives are needed)."""
    if x.dtype not in _NATIVE_DTYPES or not x.dtype == h.dtype == wx.dtype:
        return False
    if x.device.type != "cpu":
        return False
    from dyngraph.ops import _native

    return _native.op_usable("evolve_mat_gru")


class _FusedMatGRU(torch.autograd.Function):
    # the whole step (the gate matmuls and activations) and its backward as one native op each;
    # x=None means x is h (EvolveGCN-O), which saves two of the gate matmuls each way
    @staticmethod
    def forward(ctx, x, h, wx, wh, b):
        tied = x is None
        out, saved = torch.ops.dyngraph.evolve_mat_gru(h if tied else x, h, wx, wh, b, tied)
        ctx.tied = tied
        ctx.save_for_backward(h if tied else x, h, wx, wh, saved)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, h, wx, wh, saved = ctx.saved_tensors
        dx, dh, dwx, dwh, db = torch.ops.dyngraph.evolve_mat_gru_backward(
            g, x, h, wx, wh, saved, ctx.tied
        )
        return None if ctx.tied else dx, dh, dwx, dwh, db


class MatGRUCell(nn.Module):
    r"""GRU over matrices, one shared vector GRU per column (EvolveGCN eq. 4–7).

    .. math::
        Z &= \mathrm{sigmoid}(W_Z X + U_Z H + B_Z) \\
        R &= \mathrm{sigmoid}(W_R X + U_R H + B_R) \\
        \tilde H &= \tanh(W_H X + U_H (R \circ H) + B_H) \\
        H' &= (1 - Z) \circ H + Z \circ \tilde H

    Args:
        rows: number of rows of the evolved matrix (the GCN's input channels).
        cols: number of columns (the GCN's output channels).

    Shapes: ``x`` [rows, cols], ``h`` [rows, cols] → [rows, cols].
    """

    def __init__(self, rows: int, cols: int) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        # gates stacked in the order update (Z), reset (R), candidate (H~)
        self.weight_x = nn.Parameter(torch.empty(3, rows, rows))
        self.weight_h = nn.Parameter(torch.empty(3, rows, rows))
        self.bias = nn.Parameter(torch.empty(3, rows, cols))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialise the gate matrices uniformly in :math:`\pm 1/\sqrt{rows}` and zero the
        biases.
        """
        _uniform_(self.weight_x, self.rows)
        _uniform_(self.weight_h, self.rows)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        r"""One step of the matrix GRU.

        .. math::
            Z = \sigma(W_Z X + U_Z H + B_Z),\quad R = \sigma(W_R X + U_R H + B_R),\quad
            \tilde H = \tanh(W_H X + U_H (R \odot H) + B_H),\quad
            H' = (1 - Z) \odot H + Z \odot \tilde H

        Args:
            x: input ``[rows, cols]``.
            h: previous hidden matrix ``[rows, cols]``.

        Returns:
            the new hidden matrix ``[rows, cols]``.

        Raises:
            ShapeError: ``x`` or ``h`` is not ``[rows, cols]``.
        """
        if x.shape != (self.rows, self.cols) or h.shape != (self.rows, self.cols):
            raise ShapeError(
                f"MatGRUCell({self.rows}, {self.cols}) needs x and h of shape "
                f"[{self.rows}, {self.cols}], got {tuple(x.shape)} and {tuple(h.shape)}"
            )
        if _native_gru_ok(x, h, self.weight_x):
            x_or_tied = None if x is h else x  # None: the same tensor (EvolveGCN-O)
            return _FusedMatGRU.apply(x_or_tied, h, self.weight_x, self.weight_h, self.bias)
        return _mat_gru_reference(x, h, self.weight_x, self.weight_h, self.bias)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.rows}, {self.cols})"


class MatLSTMCell(nn.Module):
    r"""LSTM over matrices, one shared vector LSTM per column.

    .. math::
        I, F, O &= \mathrm{sigmoid}(W_\ast X + U_\ast H + B_\ast) \\
        G &= \tanh(W_G X + U_G H + B_G) \\
        C' &= F \circ C + I \circ G,\qquad H' = O \circ \tanh(C')

    Shapes: ``x``, ``h``, ``c`` [rows, cols] → ``(h', c')``.
    """

    def __init__(self, rows: int, cols: int) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        # gates stacked in the order input, forget, output, candidate
        self.weight_x = nn.Parameter(torch.empty(4, rows, rows))
        self.weight_h = nn.Parameter(torch.empty(4, rows, rows))
        self.bias = nn.Parameter(torch.empty(4, rows, cols))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialise the gate matrices uniformly in :math:`\pm 1/\sqrt{rows}`, zero the biases
        and open the forget gate (bias 1).
        """
        _uniform_(self.weight_x, self.rows)
        _uniform_(self.weight_h, self.rows)
        nn.init.zeros_(self.bias)
        with torch.no_grad():
            self.bias[1].fill_(1.0)  # forget gate open at start: W_t starts close to W_{t-1}

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        r"""One step of the matrix LSTM.

        .. math::
            I, F, O = \sigma(W_{\{i,f,o\}} X + U_{\{i,f,o\}} H + B_{\{i,f,o\}}),\quad
            C' = F \odot C + I \odot \tanh(W_c X + U_c H + B_c),\quad H' = O \odot \tanh(C')

        Args:
            x: input ``[rows, cols]``.
            state: ``(h, c)``, each ``[rows, cols]``.

        Returns:
            ``(h', c')``, each ``[rows, cols]``.

        Raises:
            ShapeError: an input is not ``[rows, cols]``.
        """
        h, c = state
        for name, t in (("x", x), ("h", h), ("c", c)):
            if t.shape != (self.rows, self.cols):
                raise ShapeError(
                    f"MatLSTMCell({self.rows}, {self.cols}) needs {name} of shape "
                    f"[{self.rows}, {self.cols}], got {tuple(t.shape)}"
                )
        g = torch.matmul(self.weight_x, x) + torch.matmul(self.weight_h, h) + self.bias
        i, f, o = torch.sigmoid(g[0]), torch.sigmoid(g[1]), torch.sigmoid(g[2])
        c_new = f * c + i * torch.tanh(g[3])
        return o * torch.tanh(c_new), c_new

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.rows}, {self.cols})"


def summarize(x: Tensor, p: Tensor, k: int, node_mask: Tensor | None = None) -> Tensor:
    r"""EvolveGCN-H's ``summarize``: the ``k`` best-scoring node rows, scaled by tanh of score.

    .. math::
        y_t = X_t p / \lVert p \rVert,\quad i_t = \mathrm{top}_k(y_t),\quad
        Z_t = [X_t \circ \tanh(y_t)]_{i_t}

    Only nodes with ``node_mask`` True compete (all nodes when ``None``). When fewer than ``k``
    nodes are available the last selected row is repeated (as in the authors' code); with no
    node at all the summary is zero.

    Shapes: ``x`` [N, F], ``p`` [F] → ``Z`` [k, F] (rows ordered by decreasing score).
    """
    if x.dim() != 2 or p.shape != (x.size(1),):
        raise ShapeError(
            f"summarize needs x [N, F] and p [F]; got {tuple(x.shape)} and {tuple(p.shape)}"
        )
    if node_mask is not None and node_mask.shape != (x.size(0),):
        raise ShapeError(f"node_mask must have shape [{x.size(0)}], got {tuple(node_mask.shape)}")
    norm = p.norm()
    # the choice of rows is not differentiable: score every node without a graph, then
    # recompute the k chosen scores with one (the gradient of p and x only flows through
    # those k rows, so this is the same gradient without an [N]-long backward)
    with torch.no_grad():
        scores = (x @ p) / norm
        if node_mask is not None:
            candidates = node_mask.nonzero().view(-1)
            if candidates.numel() == 0:
                return x.new_zeros(k, x.size(1))
            idx = candidates[scores[candidates].topk(min(k, candidates.numel())).indices]
        elif x.size(0) == 0:
            return x.new_zeros(k, x.size(1))
        else:
            idx = scores.topk(min(k, x.size(0))).indices
        if idx.numel() < k:
            idx = torch.cat([idx, idx[-1:].expand(k - idx.numel())])
    rows = x[idx]
    return rows * torch.tanh((rows @ p) / norm).unsqueeze(-1)


def _native_conv_ok(graph: GCNAdjacency | DiagonalSplit, x: Tensor, w: Tensor) -> bool:
    """Whether the fused convolution of ``kernels/evolve.cpp`` applies: CPU float32/64, and
    the adjacency is data (no gradient to the edge weights)."""
    if x.dtype not in _NATIVE_DTYPES or w.dtype != x.dtype or x.device.type != "cpu":
        return False
    if x.dim() != 2 or w.dim() != 2 or x.size(1) != w.size(0):
        return False
    if isinstance(graph, DiagonalSplit):
        if graph.diag.requires_grad or graph.val.requires_grad:
            return False
    else:
        weights = graph.weight if graph.csr is not None else graph.matrix
        if weights is None or weights.requires_grad:
            return False
    from dyngraph.ops import _native

    return _native.op_usable("evolve_gcn_conv")


def _prepare_graph(
    graph: Graph, edge_weight: Tensor | None, x: Tensor, add_self_loops: bool = True
) -> GCNAdjacency | DiagonalSplit:
    """The normalised adjacency of one call: a given ``GCNAdjacency``/``DiagonalSplit`` as is,
    a raw ``edge_index`` normalised straight into the split form when the fused kernel will use
    it (no CSR over ``N + E`` entries), else into a ``GCNAdjacency``."""
    n = x.size(0)
    if isinstance(graph, GCNAdjacency):
        return as_adjacency(graph, edge_weight, n)
    if isinstance(graph, DiagonalSplit):
        if graph.diag.numel() != n:
            raise ShapeError(f"adjacency is for {graph.diag.numel()} nodes but x has {n} rows")
        return graph
    if (
        x.dtype in _NATIVE_DTYPES
        and x.device.type == "cpu"
        and (edge_weight is None or not edge_weight.requires_grad)
    ):
        from dyngraph.ops import _native

        if _native.op_usable("evolve_gcn_conv"):
            return gcn_split(graph, edge_weight, n, add_self_loops, dtype=x.dtype)
    return GCNAdjacency.from_edge_index(graph, edge_weight, n, add_self_loops, dtype=x.dtype)


def _split_propagate(split: DiagonalSplit, y: Tensor) -> Tensor:
    """``Ahat @ y`` from the split form in torch ops (the fallback of the fused kernel)."""
    out = split.diag.to(y.dtype).unsqueeze(-1) * y
    rows = split.rows.repeat_interleave(split.ptr.diff())
    return out.index_add(0, rows, split.val.to(y.dtype).unsqueeze(-1) * y[split.col])


class _FusedConv(torch.autograd.Function):
    # out = Ahat X W in one pass (Ahat = diagonal + a few off-diagonal rows, DiagonalSplit);
    # one autograd node whose backward reads X and G once (no [N, F] temporary)
    @staticmethod
    def forward(ctx, x, w, diag, slot, rows, ptr, col, val):
        out, z = torch.ops.dyngraph.evolve_gcn_conv(x, w, diag, slot, rows, ptr, col, val)
        ctx.save_for_backward(x, w, diag, slot, rows, ptr, col, val, z)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, w, diag, slot, rows, ptr, col, val, z = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        gx, gw = torch.ops.dyngraph.evolve_gcn_conv_backward(
            g, x, w, diag, slot, rows, ptr, col, val, z, need_x, need_w
        )
        return (gx if need_x else None, gw if need_w else None) + (None,) * 6


def _convolve(
    adj: GCNAdjacency | DiagonalSplit, x: Tensor, w: Tensor, native: bool | None = None
) -> Tensor:
    r""":math:`\hat A X W`.

    With the native extension (``native=None``: when available), one fused pass of
    ``kernels/evolve.cpp``. Otherwise associated the cheaper way: when ``x`` needs no gradient
    (raw node features, the first layer), :math:`(\hat A X) W` keeps the sparse product out of
    the backward pass (only :math:`W` needs a gradient, and :math:`\partial W = (\hat A
    X)^\top G`); otherwise the product runs on the narrower side.
    """
    if native is None:
        native = _native_conv_ok(adj, x, w)
    elif native:
        from dyngraph.ops import _native

        _native.load()  # BackendError (saying why) when the extension cannot be built
        if not hasattr(torch.ops.dyngraph, "evolve_gcn_conv"):
            raise BackendError(
                "the loaded native extension has no evolve_gcn_conv (built from older "
                "sources); remove its cache directory to rebuild"
            )
    split = isinstance(adj, DiagonalSplit)
    if native:
        parts = adj if split else adj.split(x.dtype)
        return _FusedConv.apply(
            x, w, *(t.to(x.dtype) if t.is_floating_point() else t for t in parts)
        )
    propagate = (lambda y: _split_propagate(adj, y)) if split else adj.propagate
    if (torch.is_grad_enabled() and not x.requires_grad) or x.size(1) < w.size(1):
        return propagate(x) @ w
    return propagate(x @ w)


class _EvolveGCNBase(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, add_self_loops: bool) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ConfigError(
                f"channels must be positive, got in={in_channels}, out={out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.add_self_loops = add_self_loops
        # W_0: the weight before the first snapshot, learnt like any GCN weight
        self.initial_weight = nn.Parameter(torch.empty(in_channels, out_channels))

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ShapeError(
                f"{self.__class__.__name__} expects x of shape [N, {self.in_channels}], "
                f"got {tuple(x.shape)}"
            )

    def _adjacency(
        self, x: Tensor, graph: Graph, edge_weight: Tensor | None
    ) -> GCNAdjacency | DiagonalSplit:
        return _prepare_graph(graph, edge_weight, x, self.add_self_loops)

    def forward_sequence(
        self,
        xs: Sequence[Tensor],
        graphs: Sequence[Graph],
        state=None,
        edge_weights: Sequence[Tensor | None] | None = None,
        node_masks: Sequence[Tensor | None] | None = None,
    ) -> tuple[list[Tensor], object]:
        """Run over a sequence of snapshots; returns the per-snapshot outputs and final state."""
        if len(xs) != len(graphs):
            raise ShapeError(f"got {len(xs)} feature matrices for {len(graphs)} graphs")
        outs = []
        for t, (x, g) in enumerate(zip(xs, graphs)):
            ew = edge_weights[t] if edge_weights is not None else None
            kwargs = {}
            if node_masks is not None:
                kwargs["node_mask"] = node_masks[t]
            out, state = self(x, g, ew, state=state, **kwargs)
            outs.append(out)
        return outs, state


class EvolveGCNO(_EvolveGCNBase):
    r"""EvolveGCN-O layer: the GCN weight is evolved by a recurrent cell fed with itself.

    .. math::
        W_t = \mathrm{GRU}(W_{t-1}, W_{t-1}) \ \text{(cell="gru", official code)}\quad
        \text{or}\quad (W_t, C_t) = \mathrm{LSTM}(W_{t-1}, (W_{t-1}, C_{t-1}))
        \ \text{(cell="lstm", paper)};\qquad
        H_t' = \hat A_t H_t W_t

    Args:
        in_channels: node feature size :math:`F_{in}`.
        out_channels: output size :math:`F_{out}` (need not equal ``in_channels``).
        cell: ``"gru"`` or ``"lstm"``.
        add_self_loops: add :math:`I` before normalising (GCN renormalisation trick).

    ``forward(x [N, F_in], edge_index [2, E] | GCNAdjacency, edge_weight [E] | None,
    state=None) -> (out [N, F_out], state)``; ``state`` is :math:`W_t` (GRU) or
    ``(W_t, C_t)`` (LSTM) and ``None`` means "start from the learnt :math:`W_0`". Pass the
    returned state to the next snapshot's call; detach it yourself for truncated BPTT.
    """

    def __init__(
        self, in_channels: int, out_channels: int, cell: str = "gru", add_self_loops: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, add_self_loops)
        if cell not in ("gru", "lstm"):
            raise ConfigError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell_type = cell
        self.cell = (MatGRUCell if cell == "gru" else MatLSTMCell)(in_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the initial weight :math:`W_0` ``[in, out]`` (uniform) and the recurrent
        cell.
        """
        _uniform_(self.initial_weight, self.out_channels)
        self.cell.reset_parameters()

    def initial_state(self):
        """The state before the first snapshot: :math:`W_0` for the GRU cell, ``(W_0, 0)`` for the
        LSTM.
        """
        if self.cell_type == "gru":
            return self.initial_weight
        return self.initial_weight, torch.zeros_like(self.initial_weight)

    def evolve(self, state=None):
        """One weight-evolution step; returns ``(W_t, new_state)``."""
        if state is None:
            state = self.initial_state()
        if self.cell_type == "gru":
            w = self.cell(state, state)
            return w, w
        h, c = self.cell(state[0], state)
        return h, (h, c)

    def forward(
        self,
        x: Tensor,
        edge_index: Graph,
        edge_weight: Tensor | None = None,
        state=None,
        node_mask: Tensor | None = None,
    ) -> tuple[Tensor, object]:
        r"""Evolve the weight and convolve one snapshot (Pareja et al. 2020, EvolveGCN-O).

        .. math::
            W_t = \mathrm{RNN}(W_{t-1}),\qquad H_t = \hat A_t X_t W_t

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: ``[2, E]`` edges, or a precomputed :class:`dyngraph.nn.GCNAdjacency`
                (or its :class:`~dyngraph.nn.gcn_norm.DiagonalSplit`).
            edge_weight: ``[E]`` edge weights (ignored with a ``GCNAdjacency``).
            state: the weight state returned for the previous snapshot (``None``: initial).
            node_mask: unused (EvolveGCN-O evolves the weight from itself only); accepted so
                both variants share one call signature.

        Returns:
            ``(out, state)``: ``out`` ``[N, out_channels]`` and the new state (``W_t``
            ``[in, out]``, or ``(W_t, C_t)`` with the LSTM cell).
        """
        self._check_x(x)
        adj = self._adjacency(x, edge_index, edge_weight)
        w, state = self.evolve(state)
        return _convolve(adj, x, w), state

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"cell={self.cell_type})"
        )


class EvolveGCNH(_EvolveGCNBase):
    r"""EvolveGCN-H layer: a matrix GRU whose input summarises the current node embeddings.

    .. math::
        Z_t = \mathrm{summarize}(H_t, F_{out})^\top \in \mathbb{R}^{F_{in}\times F_{out}},\quad
        W_t = \mathrm{GRU}(Z_t, W_{t-1}),\quad H_t' = \hat A_t H_t W_t

    ``summarize`` scores nodes with a learnt vector :math:`p` and keeps the top
    :math:`F_{out}` rows scaled by :math:`\tanh` of their scores; ``node_mask`` restricts the
    choice to the nodes present in the snapshot, so the node count may change every step.

    Args:
        in_channels, out_channels, add_self_loops: as in :class:`EvolveGCNO`.

    ``forward(x [N, F_in], edge_index | GCNAdjacency, edge_weight=None, state=None,
    node_mask [N] bool | None) -> (out [N, F_out], W_t)``.
    """

    def __init__(self, in_channels: int, out_channels: int, add_self_loops: bool = True) -> None:
        super().__init__(in_channels, out_channels, add_self_loops)
        self.cell = MatGRUCell(in_channels, out_channels)
        self.scorer = nn.Parameter(torch.empty(in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise :math:`W_0` ``[in, out]``, the summary scorer ``p`` ``[in]`` and the GRU
        cell.
        """
        _uniform_(self.initial_weight, self.out_channels)
        _uniform_(self.scorer, self.in_channels)
        self.cell.reset_parameters()

    def initial_state(self) -> Tensor:
        """The weight before the first snapshot, :math:`W_0` ``[in_channels, out_channels]``."""
        return self.initial_weight

    def forward(
        self,
        x: Tensor,
        edge_index: Graph,
        edge_weight: Tensor | None = None,
        state: Tensor | None = None,
        node_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Evolve the weight from a summary of the node features and convolve one snapshot
        (Pareja et al. 2020, EvolveGCN-H).

        .. math::
            Z_t = \mathrm{summarize}(X_t, p, k),\qquad W_t = \mathrm{GRU}(Z_t, W_{t-1}),\qquad
            H_t = \hat A_t X_t W_t

        where the summary takes the ``k = out_channels`` nodes with the highest score
        :math:`X_t p / \lVert p\rVert`, each row scaled by :math:`\tanh` of its score.

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: ``[2, E]`` edges, or a precomputed :class:`dyngraph.nn.GCNAdjacency`
                (or its :class:`~dyngraph.nn.gcn_norm.DiagonalSplit`).
            edge_weight: ``[E]`` edge weights (ignored with a ``GCNAdjacency``).
            state: ``W_{t-1}`` ``[in_channels, out_channels]`` (``None``: initial).
            node_mask: ``[N]`` bool, nodes eligible for the top-k summary.

        Returns:
            ``(out, W_t)``: ``out`` ``[N, out_channels]`` and the evolved weight.
        """
        self._check_x(x)
        adj = self._adjacency(x, edge_index, edge_weight)
        prev = self.initial_state() if state is None else state
        z = summarize(x, self.scorer, self.out_channels, node_mask).t()
        w = self.cell(z, prev)
        return _convolve(adj, x, w), w

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


class EvolveGCN(nn.Module):
    r"""A stack of EvolveGCN layers with an activation after each: the paper's 2-layer model.

    Args:
        in_channels: input node feature size.
        hidden_channels: size of every layer's output (``out_channels`` overrides the last).
        num_layers: number of evolving GCN layers.
        variant: ``"o"`` (:class:`EvolveGCNO`) or ``"h"`` (:class:`EvolveGCNH`).
        cell: ``"gru"`` or ``"lstm"`` (EvolveGCN-O only).
        act: activation module; default ``RReLU`` as in the authors' code.
        out_channels: size of the last layer (default ``hidden_channels``).

    ``forward(x, edge_index | GCNAdjacency, edge_weight=None, state=None, node_mask=None)
    -> (out [N, out], state)`` with ``state`` a list holding one layer state per layer.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int = 2,
        variant: str = "o",
        cell: str = "gru",
        act: nn.Module | None = None,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
        variant = variant.lower()
        if variant not in ("o", "h"):
            raise ConfigError(f"variant must be 'o' or 'h', got {variant!r}")
        if variant == "h" and cell != "gru":
            raise ConfigError("EvolveGCN-H uses a GRU; cell='lstm' is only for variant 'o'")
        self.variant, self.cell_type = variant, cell
        out_channels = hidden_channels if out_channels is None else out_channels
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers = []
        for i in range(num_layers):
            if variant == "o":
                layers.append(EvolveGCNO(dims[i], dims[i + 1], cell=cell))
            else:
                layers.append(EvolveGCNH(dims[i], dims[i + 1]))
        self.layers = nn.ModuleList(layers)
        self.act = nn.RReLU() if act is None else act
        self.in_channels, self.out_channels = in_channels, out_channels

    def reset_parameters(self) -> None:
        """Re-initialise every layer's initial weight and recurrent cell."""
        for layer in self.layers:
            layer.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Graph,
        edge_weight: Tensor | None = None,
        state: list | None = None,
        node_mask: Tensor | None = None,
    ) -> tuple[Tensor, list]:
        """One snapshot through the stacked layers, each followed by the activation.

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: ``[2, E]`` edges of the snapshot, or a precomputed
                :class:`dyngraph.nn.GCNAdjacency` (reused across calls: no re-normalisation).
            edge_weight: ``[E]`` edge weights (ignored when ``edge_index`` is a ``GCNAdjacency``).
            state: per-layer recurrent states from the previous snapshot (``None``: initial).
            node_mask: ``[N]`` bool, nodes that exist in this snapshot (EvolveGCN-H's top-k
                summary only considers these).

        Returns:
            ``(out, state)``: ``out`` ``[N, out_channels]`` and the list of per-layer states to
            pass with the next snapshot.

        Raises:
            ShapeError: ``state`` does not have one entry per layer.
        """
        adj = _prepare_graph(edge_index, edge_weight, x)
        if state is None:
            state = [None] * len(self.layers)
        if len(state) != len(self.layers):
            raise ShapeError(f"state has {len(state)} entries for {len(self.layers)} layers")
        new_state = []
        for layer, s in zip(self.layers, state):
            x, s = layer(x, adj, state=s, node_mask=node_mask)
            x = self.act(x)
            new_state.append(s)
        return x, new_state

    forward_sequence = _EvolveGCNBase.forward_sequence

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_layers={len(self.layers)}, variant={self.variant}, cell={self.cell_type})"
        )


def detach_state(state):
    """Cut the graph behind a (possibly nested) state: the step of truncated BPTT."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)
