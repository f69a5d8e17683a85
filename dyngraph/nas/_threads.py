"""Scoped torch intra-op thread count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``None``: unchanged), then restore.

    Tiny models (controller policies, trials on small graphs) are slower with several
    threads, dramatically so on an oversubscribed machine, so callers limit them here.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
