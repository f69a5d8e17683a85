"""Message aggregators: reduce a node's pending messages ``[n, M, C]`` to one ``[n, C]``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dyngraph.nn.memory.state import MessageBlock

__all__ = ["LastAggregator", "MeanAggregator", "MailboxAttentionAggregator"]


def _newest(block: MessageBlock, x: Tensor) -> Tensor:
    if x.size(1) == 1:  # one slot per node: it is the newest
        return x[:, 0]
    rows = torch.arange(x.size(0), device=x.device)
    return x[rows, block.newest]


class LastAggregator(nn.Module):
    r"""Keep only the most recent pending message: :math:`\bar m_i = m_i(t_{last})`."""

    def reset_parameters(self) -> None:
        """No parameters."""

    def forward(self, msg: Tensor, block: MessageBlock, s_self: Tensor) -> tuple[Tensor, Tensor]:
        """``msg``: ``[n, M, C]`` -> (``[n, C]`` aggregated message, ``[n]`` role of newest)."""
        return _newest(block, msg), _newest(block, block.role)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class MeanAggregator(nn.Module):
    r"""Average of the pending messages: :math:`\bar m_i = \frac1{|P_i|}\sum_{p\in P_i} m_p`.

    At most the store's ``size`` most recent pending messages are kept per node.
    """

    def reset_parameters(self) -> None:
        """No parameters."""

    def forward(self, msg: Tensor, block: MessageBlock, s_self: Tensor) -> tuple[Tensor, Tensor]:
        """``msg``: ``[n, M, C]`` -> (``[n, C]`` mean over the pending messages, ``[n]`` role of the
        newest).
        """
        w = block.pending.to(msg.dtype).unsqueeze(-1)
        agg = (msg * w).sum(1) / w.sum(1).clamp(min=1.0)
        return agg, _newest(block, block.role)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class MailboxAttentionAggregator(nn.Module):
    r"""APAN's mailbox attention (Wang et al. 2021, eq. 5-6).

    The node's state is the query and every mail in its mailbox (pending or already seen) is
    a key/value: :math:`\bar m_i = \mathrm{MHA}(W_q s_i, W_k M_i, W_v M_i)` followed by the
    output projection. ``M_i`` carries each mail's time encoding (APAN's positional encoding).

    Args:
        msg_dim: mail dimension ``C``; memory_dim: ``D``; heads: attention heads;
        dropout: attention dropout.
    """

    def __init__(self, msg_dim: int, memory_dim: int, heads: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = max(1, memory_dim // heads)
        hd = self.heads * self.head_dim
        self.lin_q = nn.Linear(memory_dim, hd)
        self.lin_k = nn.Linear(msg_dim, hd)
        self.lin_v = nn.Linear(msg_dim, hd)
        self.lin_out = nn.Linear(hd, memory_dim)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = memory_dim

    def reset_parameters(self) -> None:
        """Re-initialise the query, key, value and output projections."""
        for lin in (self.lin_q, self.lin_k, self.lin_v, self.lin_out):
            lin.reset_parameters()

    def forward(self, msg: Tensor, block: MessageBlock, s_self: Tensor) -> tuple[Tensor, Tensor]:
        r"""Attention of each node's memory over its mailbox (APAN, Wang et al. 2021).

        .. math::
            \alpha_{ij} = \mathrm{softmax}_j\Big(\frac{(W_q s_i)^\top W_k m_{ij}}{\sqrt d}\Big),
            \qquad \bar m_i = W_o \big\Vert_{h} \sum_j \alpha^h_{ij} W_v^h m_{ij}

        Args:
            msg: ``[n, M, C]`` messages (invalid slots are masked by ``block.valid``).
            block: the nodes' message block (validity, roles, newest slot).
            s_self: ``[n, D]`` memory of the receiving nodes (the queries).

        Returns:
            (``[n, C]`` aggregated message, ``[n]`` role of the newest message).
        """
        n, m, _ = msg.shape
        h, d = self.heads, self.head_dim
        q = self.lin_q(s_self).view(n, 1, h, d)
        k = self.lin_k(msg).view(n, m, h, d)
        v = self.lin_v(msg).view(n, m, h, d)
        score = (q * k).sum(-1) / math.sqrt(d)  # [n, m, h]
        score = score.masked_fill(~block.valid.unsqueeze(-1), float("-inf"))
        alpha = torch.softmax(score, dim=1).nan_to_num(0.0)
        alpha = self.dropout(alpha)
        out = (alpha.unsqueeze(-1) * v).sum(1).reshape(n, h * d)
        return self.lin_out(out), _newest(block, block.role)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(heads={self.heads}, out={self.out_channels})"
