"""Time encodings phi(dt) used by the memory models.

TGN (Rossi et al. 2020, eq. 2 / TGAT Xu et al. 2020) encodes a time difference as
``phi(dt) = cos(dt * w + b)``. We initialise ``w_i = 10^(-9 i / (d - 1))`` and ``b = 0``
(the fixed schedule of TGN's released code and GraphMixer): frequencies cover time scales from
seconds to ~30 years, so raw unix-second differences need no normalisation. ``learnable=False``
freezes the schedule (GraphMixer), ``learnable=True`` trains it (TGN).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TimeEncoder"]


class TimeEncoder(nn.Module):
    r"""Cosine time encoding :math:`\phi(\Delta t) = \cos(\Delta t\, w + b)`.

    Args:
        dim: Output dimension ``d``.
        learnable: Whether ``w`` and ``b`` are trained (TGN) or fixed (GraphMixer).
    """

    def __init__(self, dim: int, learnable: bool = True) -> None:
        super().__init__()
        if dim < 1:
            from dyngraph.errors import ConfigError

            raise ConfigError(f"TimeEncoder dim must be >= 1, got {dim}")
        self.dim = dim
        self.learnable = learnable
        self.weight = nn.Parameter(torch.empty(dim), requires_grad=learnable)
        self.bias = nn.Parameter(torch.empty(dim), requires_grad=learnable)
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        """Width of the encoding, ``dim``."""
        return self.dim

    def reset_parameters(self) -> None:
        r"""Frequencies :math:`\omega_i = 10^{-9 i/(d-1)}` (TGAT/GraphMixer initialisation) and zero
        phases.
        """
        with torch.no_grad():
            exps = torch.linspace(0.0, 9.0, self.dim, dtype=torch.float64)
            self.weight.copy_(torch.pow(10.0, -exps).to(self.weight.dtype))
            self.bias.zero_()

    def forward(self, dt: Tensor) -> Tensor:
        """Encode time differences.

        Args:
            dt: time differences of any shape ``[*]`` (float32 or float64; differences of
                float64 timestamps should be taken *before* casting so they keep precision).

        Returns:
            ``[*, dim]`` float32 encoding.
        """
        dt = dt.to(self.weight.dtype).unsqueeze(-1)
        if not self.learnable:
            return torch.cos(dt * self.weight)  # the fixed schedule has b = 0
        return torch.cos(dt * self.weight + self.bias)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, learnable={self.learnable})"

