"""Message functions ``msg(s_a, s_b, phi(dt), e)`` applied to dense ``[n, M]`` message blocks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["IdentityMessage", "MLPMessage"]


class IdentityMessage(nn.Module):
    r"""TGN's identity message: :math:`m = s_a \,\|\, s_b \,\|\, \phi(\Delta t) \,\|\, e`.

    For an endpoint ``i`` of event ``(i, j, t, e)``: ``s_a = s_i(t^-)``, ``s_b = s_j(t^-)``
    and :math:`\Delta t = t - t_i^{last}` (TGN eq. 1).

    Args:
        memory_dim: ``D``; time_dim: ``T``; feat_dim: ``F``.
        include_self: drop ``s_a`` when ``False`` (DyRep feeds the node's own memory through
            the recurrent state, not through the message).
    """

    def __init__(self, memory_dim: int, time_dim: int, feat_dim: int = 0,
                 include_self: bool = True) -> None:
        super().__init__()
        self.memory_dim, self.time_dim, self.feat_dim = memory_dim, time_dim, feat_dim
        self.include_self = include_self
        self.out_channels = (2 if include_self else 1) * memory_dim + time_dim + feat_dim

    def reset_parameters(self) -> None:
        """No parameters."""

    def forward(self, s_a: Tensor, s_b: Tensor, t_enc: Tensor, feat: Tensor) -> Tensor:
        """``s_a, s_b``: ``[n, M, D]``; ``t_enc``: ``[n, M, T]``; ``feat``: ``[n, M, F]``
        -> ``[n, M, out_channels]``."""
        parts = [s_a, s_b, t_enc, feat] if self.include_self else [s_b, t_enc, feat]
        return torch.cat(parts, dim=-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(out_channels={self.out_channels})"


class MLPMessage(nn.Module):
    r"""TGN's MLP message: :math:`m = \mathrm{MLP}(s_a \| s_b \| \phi(\Delta t) \| e)`."""

    def __init__(self, memory_dim: int, time_dim: int, feat_dim: int = 0,
                 out_channels: int | None = None) -> None:
        super().__init__()
        in_ch = 2 * memory_dim + time_dim + feat_dim
        self.out_channels = out_channels or in_ch
        self.mlp = nn.Sequential(nn.Linear(in_ch, in_ch // 2), nn.ReLU(),
                                 nn.Linear(in_ch // 2, self.out_channels))

    def reset_parameters(self) -> None:
        """Re-initialise the two linear layers of the MLP."""
        for lin in (self.mlp[0], self.mlp[2]):
            lin.reset_parameters()

    def forward(self, s_a: Tensor, s_b: Tensor, t_enc: Tensor, feat: Tensor) -> Tensor:
        r"""Message :math:`\mathrm{MLP}([s_a \Vert s_b \Vert \phi(\Delta t) \Vert e])`.

        Args:
            s_a: ``[n, D]`` memory of the receiving node.
            s_b: ``[n, D]`` memory of the other node.
            t_enc: ``[n, T]`` time encoding of the time since the receiver's last update.
            feat: ``[n, F]`` event features.

        Returns:
            ``[n, out_channels]`` messages.
        """
        return self.mlp(torch.cat([s_a, s_b, t_enc, feat], dim=-1))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(out_channels={self.out_channels})"
