"""Memory updaters ``s_i <- mem(m_i, s_i)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dyngraph.nn.memory.state import ROLE_DST

__all__ = ["GRUUpdater", "RNNUpdater", "ResidualUpdater"]


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
        """``msg``: ``[n, C]``, ``s``: ``[n, D]`` -> ``[n, D]``."""
        return self.cell(msg, s)

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
