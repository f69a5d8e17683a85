"""Metrics against scikit-learn (AP, AUC, F1) and brute-force ranks (MRR, MAP)."""

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dyngraph import metrics as M
from dyngraph.errors import DataError, ShapeError


@st.composite
def scored_labels(draw):
    n = draw(st.integers(2, 80))
    ties = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, n).astype(float) if ties else rng.normal(size=n)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1  # both classes present
    return s, y, rng


@settings(max_examples=150, deadline=None)
@given(scored_labels())
def test_ap_auc_match_sklearn(case):
    s, y, _ = case
    assert M.average_precision(s, y) == pytest.approx(skm.average_precision_score(y, s),
                                                      abs=1e-12)
    assert M.roc_auc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    # torch input, float labels, bool labels give the same
    assert M.roc_auc(torch.tensor(s), torch.tensor(y, dtype=torch.bool)) == pytest.approx(
        skm.roc_auc_score(y, s), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored_labels(), st.integers(1, 6))
def test_map_is_mean_of_per_group_sklearn_ap(case, num_groups):
    s, y, rng = case
    g = rng.integers(0, num_groups, len(s))
    ref = [skm.average_precision_score(y[g == k], s[g == k]) for k in np.unique(g)
           if y[g == k].sum() > 0]
    assert M.mean_average_precision(s, y, g) == pytest.approx(np.mean(ref), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 20), st.integers(0, 2**31 - 1), st.booleans())
def test_mrr_against_brute_force_rank(b, k, seed, ties):
    rng = np.random.default_rng(seed)
    def draw(*shape):
        return rng.integers(0, 3, shape).astype(float) if ties else rng.normal(size=shape)

    pos, neg = draw(b), draw(b, k)
    rr = []
    for i in range(b):
        better = sum(1 for x in neg[i] if x > pos[i])
        equal = sum(1 for x in neg[i] if x == pos[i])
        rank = 1 + better + equal / 2  # ties: mean of optimistic and pessimistic rank
        rr.append(1 / rank)
    assert M.mrr(pos, neg) == pytest.approx(np.mean(rr), abs=1e-12)
    assert np.allclose(M.mrr(pos, neg, reduce=False).numpy(), rr)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_f1_matches_sklearn(n, c, seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, c, n), rng.integers(0, c, n)
    for avg in ("macro", "micro", "weighted"):
        ref = skm.f1_score(y, p, average=avg, zero_division=0)
        assert M.f1_score(p, y, average=avg) == pytest.approx(ref, abs=1e-12), avg
    yb, pb = y % 2, p % 2
    assert M.f1_score(pb, yb, average="binary") == pytest.approx(
        skm.f1_score(yb, pb, zero_division=0), abs=1e-12)


def test_f1_num_classes_includes_absent_classes():
    y, p = np.array([0, 1, 1]), np.array([0, 1, 0])
    ref = skm.f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0)
    assert M.f1_score(p, y, average="macro", num_classes=3) == pytest.approx(ref)


def test_errors():
    with pytest.raises(DataError):
        M.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(DataError):
        M.average_precision([0.1, 0.2], [0, 0])
    with pytest.raises(DataError):
        M.average_precision([0.1, float("nan")], [0, 1])
    with pytest.raises(ShapeError):
        M.roc_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ShapeError):
        M.mrr([0.1, 0.2], [[0.1, 0.2, 0.3]])
    with pytest.raises(DataError):
        M.f1_score([0, 2], [0, 1], average="binary")
    with pytest.raises(DataError):
        M.f1_score([0, 1], [0, 1], average="samples")
