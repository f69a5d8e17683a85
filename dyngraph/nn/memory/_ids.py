"""Distinct node ids by a bitmap over the id range (a few times cheaper per batch than the sort
behind ``torch.unique`` when the ids index a table of known size)."""

from __future__ import annotations

import torch
from torch import Tensor


def bitmap_unique(n: int, *ids: Tensor, inverse_of: Tensor | None = None
                  ) -> tuple[Tensor, Tensor | None]:
    """Sorted distinct values of ``ids`` (all in ``[0, n)``) and, for ``inverse_of`` (ids among
    them), each one's position in that sorted list (else ``None``)."""
    mark = torch.zeros(n, dtype=torch.bool, device=ids[0].device)
    for x in ids:
        mark.index_fill_(0, x.reshape(-1), True)
    uq = mark.nonzero().view(-1)
    inv = None
    if inverse_of is not None:
        inv = (torch.cumsum(mark, 0) - 1).index_select(0, inverse_of)
    return uq, inv
