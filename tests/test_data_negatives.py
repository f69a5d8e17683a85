"""Negative samplers against a brute-force reading of DyGLib's protocol on real CollegeMsg."""

import pytest
import torch

from dyngraph.data import (
    EventStream,
    HistoricalNegativeSampler,
    InductiveNegativeSampler,
    RandomNegativeSampler,
    make_negative_sampler,
)
from dyngraph.datasets import CollegeMsg
from dyngraph.errors import ConfigError


@pytest.fixture(scope="module")
def split():
    return CollegeMsg().split(seed=0)


def _edges(s: EventStream) -> set:
    return set(zip(s.src.tolist(), s.dst.tolist()))


def test_random_sampler_pool_and_reproducible(split):
    pool = split.full.dst_pool()
    smp = make_negative_sampler("random", split, seed=5)
    batch = split.test[:300]
    a = smp.sample(batch, num_negatives=4)
    assert a.shape == (300, 4)
    assert torch.isin(a, pool).all()
    smp.reset()
    assert torch.equal(a, smp.sample(batch, 4))
    smp.reset(6)
    assert not torch.equal(a, smp.sample(batch, 4))
    src, dst = smp.sample_edges(batch, 2)
    assert torch.equal(src, batch.src.view(-1, 1).expand(-1, 2))


def test_random_sampler_is_uniform():
    smp = RandomNegativeSampler(torch.tensor([3, 7, 11, 20]), seed=0)
    batch = EventStream(torch.zeros(10_000, dtype=torch.long), torch.ones(10_000,
                        dtype=torch.long), torch.zeros(10_000), num_nodes=21)
    counts = torch.bincount(smp.sample(batch).view(-1), minlength=21)[[3, 7, 11, 20]]
    expected = 10_000 / 4
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.3  # chi-square, 3 dof, p = 0.001


@pytest.mark.parametrize("kind", ["historical", "inductive"])
def test_hard_negatives_follow_protocol(split, kind):
    full = split.full
    smp = make_negative_sampler(kind, split, seed=0)
    train_end = split.train_end_time
    seen_in_train = _edges(full[full.t <= train_end])
    checked_hard = 0
    for i, batch in enumerate(split.test.batches(200)):
        if i % 7:  # a spread of batches keeps the brute force cheap
            continue
        t0 = float(batch.t[0])
        history = _edges(full[full.t < t0])
        current = _edges(batch)
        allowed = history - current
        if kind == "inductive":
            allowed -= seen_in_train
        src, dst = smp.sample_edges(batch, num_negatives=2)
        pairs = list(zip(src.view(-1).tolist(), dst.view(-1).tolist()))
        size = len(pairs)
        n_hard = min(size // 2, len(allowed))
        hard, rand = pairs[:n_hard], pairs[n_hard:]
        assert set(hard) <= allowed
        assert len(set(hard)) == len(hard)  # drawn without replacement
        assert not set(rand) & current  # random part avoids the batch's edges
        checked_hard += n_hard
    assert checked_hard > 0
    smp.reset(0)
    a = smp.sample(split.test[:200], 2)
    smp.reset(0)
    assert torch.equal(a, smp.sample(split.test[:200], 2))


def test_samplers_direct_construction(split):
    h = HistoricalNegativeSampler(split.full, seed=1)
    i = InductiveNegativeSampler(split.full, split.train_end_time, seed=1)
    for smp in (h, i):
        out = smp.sample(split.val[:50], 3)
        assert out.shape == (50, 3) and out.dtype == torch.long
    with pytest.raises(ConfigError):
        make_negative_sampler("hard", split)
    with pytest.raises(ConfigError):
        RandomNegativeSampler(torch.tensor([], dtype=torch.long))
