"""Negative destination samplers for temporal link prediction (DyGLib's three protocols).

Poursafaei et al., "Towards Better Evaluation for Dynamic Link Prediction" (NeurIPS 2022),
as implemented in DyGLib's ``NegativeEdgeSampler``:

* ``random`` -- a uniformly random destination for each positive event's source.
* ``historical`` -- half of the negatives are edges seen before the batch but not in it
  (hard negatives: the model must know the edge is not repeated *now*); the rest random
  pairs that do not collide with the batch's edges.
* ``inductive`` -- half are edges seen before the batch but *not* during training
  (``t > last_observed_time``) and not in the batch; the rest random as above.

``sample(batch, K)`` returns destinations ``[B, K]``. DyGLib scores the historical and
inductive negatives as whole edges ``(neg_src, neg_dst)``; ``sample_edges`` returns both
for exact protocol replication (for ``random`` the source is the batch's own).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dyngraph.data.events import EventStream
from dyngraph.errors import ConfigError, DataError

__all__ = [
    "RandomNegativeSampler",
    "HistoricalNegativeSampler",
    "InductiveNegativeSampler",
    "make_negative_sampler",
]


def _pool(dst_pool: Tensor | int) -> Tensor:
    if isinstance(dst_pool, int):
        if dst_pool <= 0:
            raise ConfigError(f"dst_pool={dst_pool}: need at least one candidate node.")
        return torch.arange(dst_pool)
    pool = torch.unique(torch.as_tensor(dst_pool, dtype=torch.long).view(-1))
    if pool.numel() == 0:
        raise ConfigError("dst_pool is empty: need at least one candidate destination.")
    return pool


class RandomNegativeSampler:
    """Uniform destinations from ``dst_pool`` (a LongTensor of node ids, or ``N`` for
    ``0..N-1``), reproducible through ``seed`` / :meth:`reset`."""

    kind = "random"

    def __init__(self, dst_pool: Tensor | int, seed: int = 0) -> None:
        self.dst_pool = _pool(dst_pool)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        """Restart the random stream (call before each evaluation pass for identical
        negatives across epochs/models)."""
        if seed is not None:
            self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def _random_dst(self, n: int) -> Tensor:
        idx = torch.randint(self.dst_pool.numel(), (n,), generator=self.generator)
        return self.dst_pool[idx]

    def sample_edges(self, batch: EventStream, num_negatives: int = 1) -> tuple[Tensor, Tensor]:
        """``(neg_src [B, K], neg_dst [B, K])``; here ``neg_src`` is the batch's source."""
        b = batch.num_events
        dst = self._random_dst(b * num_negatives).view(b, num_negatives)
        return batch.src.cpu().view(-1, 1).expand(b, num_negatives).clone(), dst

    def sample(self, batch: EventStream, num_negatives: int = 1) -> Tensor:
        """Negative destinations ``[B, num_negatives]`` for the events of ``batch``."""
        return self.sample_edges(batch, num_negatives)[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool={self.dst_pool.numel()}, seed={self.seed})"


class _EdgeHistory:
    """Unique edges of a stream ordered by first occurrence time, for prefix queries
    "edges first seen before time T" without per-batch Python set algebra."""

    def __init__(self, stream: EventStream) -> None:
        self.n = stream.num_nodes
        key = stream.src.cpu() * self.n + stream.dst.cpu()
        uniq, inv = torch.unique(key, return_inverse=True)
        first = torch.full((uniq.numel(),), stream.num_events, dtype=torch.long)
        first.scatter_reduce_(0, inv, torch.arange(stream.num_events), reduce="amin")
        order = torch.argsort(first)  # first-seen order; stream is time-sorted
        self.keys = uniq[order]
        self.first_t = stream.t.cpu()[first[order]]

    def count_before(self, t: float, right: bool = False) -> int:
        return int(torch.searchsorted(self.first_t, torch.tensor([t], dtype=torch.float64),
                                      right=right))


class HistoricalNegativeSampler(RandomNegativeSampler):
    """DyGLib ``historical`` negatives.

    Args:
        history: events whose edges count as history (usually ``split.full``; an edge is
            historical for a batch if it occurred strictly before the batch's first event).
        dst_pool: destinations for the random half (default ``history.dst_pool()``).
        seed: random seed.
    """

    kind = "historical"

    def __init__(self, history: EventStream, dst_pool: Tensor | int | None = None,
                 seed: int = 0) -> None:
        super().__init__(history.dst_pool() if dst_pool is None else dst_pool, seed)
        self.src_pool = (torch.arange(history.item_offset) if history.item_offset is not None
                         else torch.unique(history.src.cpu()))
        self.history = _EdgeHistory(history)

    def _candidate_range(self, batch: EventStream) -> tuple[int, int]:
        return 0, self.history.count_before(float(batch.t[0]))

    def _random_edges(self, n: int, batch_keys: Tensor) -> tuple[Tensor, Tensor]:
        """Random (src, dst) pairs that are not edges of the current batch."""
        src = torch.empty(0, dtype=torch.long)
        dst = torch.empty(0, dtype=torch.long)
        nn = self.history.n
        for _ in range(100):
            need = n - src.numel()
            if need <= 0:
                break
            s = self.src_pool[torch.randint(self.src_pool.numel(), (need,),
                                            generator=self.generator)]
            d = self._random_dst(need)
            ok = ~torch.isin(s * nn + d, batch_keys)
            src, dst = torch.cat([src, s[ok]]), torch.cat([dst, d[ok]])
        if src.numel() < n:
            raise DataError("could not draw random negative edges that avoid the batch's "
                            "edges: the batch covers almost every possible pair; use a "
                            "smaller batch or the random sampler.")
        return src, dst

    def sample_edges(self, batch: EventStream, num_negatives: int = 1) -> tuple[Tensor, Tensor]:
        """Negative ``(src, dst)`` pairs for the events of ``batch``.

        Half of the ``B * num_negatives`` pairs are drawn without replacement from the edges seen
        before the batch's first event (excluding the batch's own edges); the rest, and any
        shortfall, are random pairs that are not edges of the batch (DyGLib's protocol).

        Args:
            batch: the events to score, ``B`` of them.
            num_negatives: negatives per event.

        Returns:
            ``(src, dst)``, each ``[B, num_negatives]`` (long).

        Raises:
            DataError: no random pair avoiding the batch's edges could be drawn.
        """
        b = batch.num_events
        size = b * num_negatives
        if b == 0:
            empty = torch.empty(0, num_negatives, dtype=torch.long)
            return empty, empty.clone()
        nn = self.history.n
        batch_keys = torch.unique(batch.src.cpu() * nn + batch.dst.cpu())
        lo, hi = self._candidate_range(batch)
        cand = self.history.keys[lo:hi]
        in_batch = torch.isin(cand, batch_keys)
        num_hard = min(size // 2, cand.numel() - int(in_batch.sum()))
        if num_hard > 0:
            # a permutation of the candidate range, then drop batch edges: sampling without
            # replacement from (history minus batch), as DyGLib's np.random.choice does
            perm = torch.randperm(cand.numel(), generator=self.generator)
            perm = perm[~in_batch[perm]][:num_hard]
            hard = cand[perm]
            hs, hd = hard // nn, hard % nn
        else:
            hs = hd = torch.empty(0, dtype=torch.long)
        rs, rd = self._random_edges(size - hs.numel(), batch_keys)
        src = torch.cat([hs, rs]).view(b, num_negatives)
        dst = torch.cat([hd, rd]).view(b, num_negatives)
        return src, dst


class InductiveNegativeSampler(HistoricalNegativeSampler):
    """DyGLib ``inductive`` negatives: edges seen before the batch but after
    ``last_observed_time`` (the end of training), so never observed while training.

    Args:
        history: events whose edges count as history (usually ``split.full``).
        last_observed_time: end of the training period (``split.train_end_time``).
        dst_pool: destinations for the random half (default ``history.dst_pool()``).
        seed: random seed.
    """

    kind = "inductive"

    def __init__(self, history: EventStream, last_observed_time: float,
                 dst_pool: Tensor | int | None = None, seed: int = 0) -> None:
        super().__init__(history, dst_pool, seed)
        self.last_observed_time = float(last_observed_time)
        self._lo = self.history.count_before(self.last_observed_time, right=True)

    def _candidate_range(self, batch: EventStream) -> tuple[int, int]:
        hi = self.history.count_before(float(batch.t[0]))
        return min(self._lo, hi), hi


def make_negative_sampler(kind: str, split, seed: int = 0) -> RandomNegativeSampler:
    """Build the DyGLib sampler ``kind`` ("random" | "historical" | "inductive") for a
    :class:`~dyngraph.data.TemporalSplit`; candidates come from the full stream."""
    pool = split.full.dst_pool()
    if kind == "random":
        return RandomNegativeSampler(pool, seed=seed)
    if kind == "historical":
        return HistoricalNegativeSampler(split.full, pool, seed=seed)
    if kind == "inductive":
        return InductiveNegativeSampler(split.full, split.train_end_time, pool, seed=seed)
    raise ConfigError(f"unknown negative sampler {kind!r}; choose random, historical or "
                      "inductive.")
