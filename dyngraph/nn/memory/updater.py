"""Memory updaters ``s_i <- mem(m_i, s_i)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dyngraph.nn.memory.state import ROLE_DST

__all__ = ["GRUUpdater", "RNNUpdater", "ResidualUpdater", "gru_cell"]


def _native_gru_ok() -> bool:
    """Whether the fused GRU gates (``kernels/tgn_memory.cpp``) may be used
    (:func:`dyngraph.ops._native.op_usable`)."""
    from dyngraph.ops import _native

    return _native.op_usable("tgn_gru_gates")


class _GRUCell(torch.autograd.Function):
    # the two gate matmuls run in BLAS, everything element-wise after them in one native pass
    # (forward and backward), and the whole cell is one autograd node; gradients are computed
    # only for the inputs that need one (in TGN: the four parameters, not the message or the
    # memory, which are detached snapshots)
    @staticmethod
    def forward(ctx, x, s, w_ih, w_hh, b_ih, b_hh):
        gi = torch.addmm(b_ih, x, w_ih.t())
        gh = torch.addmm(b_hh, s, w_hh.t())
        out, saved = torch.ops.dyngraph.tgn_gru_gates(gi, gh, s)
        ctx.save_for_backward(x, s, w_ih, w_hh, saved)
        return out

    @staticmethod
    def backward(ctx, g):
        x, s, w_ih, w_hh, saved = ctx.saved_tensors
        g_gi, g_gh, g_s = torch.ops.dyngraph.tgn_gru_gates_backward(g.contiguous(), saved, s)
        need = ctx.needs_input_grad
        g_x = g_gi @ w_ih if need[0] else None
        g_s = g_s.addmm_(g_gh, w_hh) if need[1] else None
        g_wih = g_gi.t() @ x if need[2] else None
        g_whh = g_gh.t() @ s if need[3] else None
        g_bih = g_gi.sum(0) if need[4] else None
        g_bhh = g_gh.sum(0) if need[5] else None
        return g_x, g_s, g_wih, g_whh, g_bih, g_bhh


def gru_cell(x: Tensor, s: Tensor, cell: nn.GRUCell, native: bool | None = None) -> Tensor:
    r"""``cell(x, s)`` (a :class:`torch.nn.GRUCell` step, same equations and gate order) with the
    element-wise gate arithmetic fused forward and backward in ``kernels/tgn_memory.cpp`` when
    the native extension is available (``native=None``: pick; ``False``: torch's cell).

    Args:
        x: ``[n, C]`` inputs (messages); s: ``[n, D]`` hidden state (memory).

    Returns:
        ``[n, D]`` new hidden state.
    """
    if native is None:
        native = (cell.bias and x.dtype == s.dtype == cell.weight_ih.dtype and x.dim() == 2
                  and _native_gru_ok())
    if not native:
        return cell(x, s)
    if not _native_gru_ok():
        from dyngraph.ops import _native

        _native.load()  # raises BackendError with the reason
    return _GRUCell.apply(x, s, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)


class GRUUpdater(nn.Module):
    r"""TGN memory updater, a GRU cell (Cho et al. 2014):

    .. math::
        r = \sigma(W_{ir} m + b_{ir} + W_{hr} s + b_{hr}),\;
        z = \sigma(W_{iz} m + b_{iz} + W_{hz} s + b_{hz}),\\
        n = \tanh(W_{in} m + b_{in} + r \odot (W_{hn} s + b_{hn})),\;
        s' = (1 - z) \odot n + z \odot s.
    """

    def __init__(self, msg_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(msg_dim, memory_dim)

    def reset_parameters(self) -> None:
        """Re-initialise the GRU cell."""
        self.cell.reset_parameters()

    def forward(self, msg: Tensor, s: Tensor, role: Tensor | None = None) -> Tensor:
        """``msg``: ``[n, C]``, ``s``: ``[n, D]`` -> ``[n, D]`` (fused gates, see
        :func:`gru_cell`)."""
        return gru_cell(msg, s, self.cell)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.cell.input_size}, {self.cell.hidden_size})"


class RNNUpdater(nn.Module):
    r"""Vanilla RNN updater (JODIE eq. 1-2, DyRep eq. 3): :math:`s' = \tanh(W_i m + b_i + W_h s
    + b_h)`.

    Args:
        per_role: JODIE keeps two RNNs, one for the source side (users) and one for the
            destination side (items); a node's update uses the RNN of its role in its newest
            message. ``False`` shares one RNN (DyRep).
    """

    def __init__(self, msg_dim: int, memory_dim: int, per_role: bool = False) -> None:
        super().__init__()
        self.per_role = per_role
        self.cell = nn.RNNCell(msg_dim, memory_dim, nonlinearity="tanh")
        self.cell_dst = nn.RNNCell(msg_dim, memory_dim, nonlinearity="tanh") if per_role else None

    def reset_parameters(self) -> None:
        """Re-initialise the RNN cell(s)."""
        self.cell.reset_parameters()
        if self.cell_dst is not None:
            self.cell_dst.reset_parameters()

    def forward(self, msg: Tensor, s: Tensor, role: Tensor | None = None) -> Tensor:
        """``msg``: ``[n, C]``, ``s``: ``[n, D]``, ``role``: ``[n]`` (destinations use their own
        cell when there is one) -> ``[n, D]``.
        """
        out = self.cell(msg, s)
        if self.cell_dst is None or role is None:
            return out
        is_dst = role == ROLE_DST
        if not bool(is_dst.any()):
            return out
        return torch.where(is_dst.unsqueeze(-1), self.cell_dst(msg, s), out)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.cell.input_size}, {self.cell.hidden_size}, "
                f"per_role={self.per_role})")


class ResidualUpdater(nn.Module):
    r"""APAN's state update after mailbox attention:
    :math:`s' = \mathrm{LayerNorm}(s + \mathrm{MLP}(\bar m \| s))`."""

    def __init__(self, msg_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(msg_dim + memory_dim, memory_dim), nn.ReLU(),
                                 nn.Linear(memory_dim, memory_dim))
        self.norm = nn.LayerNorm(memory_dim)

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and the layer norm."""
        self.mlp[0].reset_parameters()
        self.mlp[2].reset_parameters()
        self.norm.reset_parameters()

    def forward(self, msg: Tensor, s: Tensor, role: Tensor | None = None) -> Tensor:
        r"""``msg``: ``[n, C]``, ``s``: ``[n, D]`` -> ``[n, D]``: :math:`\mathrm{LN}(s +
        \mathrm{MLP}([m \Vert s]))`; ``role`` is unused.
        """
        return self.norm(s + self.mlp(torch.cat([msg, s], dim=-1)))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.norm.normalized_shape[0]})"
