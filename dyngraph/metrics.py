"""Evaluation metrics for link prediction and classification, as pure functions.

Inputs may be torch tensors, numpy arrays or lists; results are Python floats. Ties in
scores are handled exactly as scikit-learn does (AP and AUC treat tied scores as one
threshold).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dyngraph.errors import DataError, ShapeError

__all__ = ["average_precision", "roc_auc", "mrr", "mean_average_precision", "f1_score"]


def _tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.ascontiguousarray(x))


def _vec(x, name: str, dtype=torch.float64) -> Tensor:
    t = _tensor(x).reshape(-1)
    if t.is_floating_point() and t.numel() and not torch.isfinite(t).all():
        raise DataError(f"{name} contains NaN or inf; scores must be finite.")
    return t.to(dtype)


def _scores_labels(scores, labels) -> tuple[Tensor, Tensor]:
    s = _vec(scores, "scores")
    y = _vec(labels, "labels")
    if s.numel() != y.numel():
        raise ShapeError(f"{s.numel()} scores but {y.numel()} labels.")
    if not ((y == 0) | (y == 1)).all():
        raise DataError("labels must be 0/1 (or bool).")
    return s, y


def _grouped_ap(s: Tensor, y: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """AP of every group (sklearn's step-wise definition, tied scores form one threshold).

    Returns (ap [G], positives [G]) over the sorted unique groups.
    """
    groups, gid = torch.unique(g, return_inverse=True)
    num_g = groups.numel()
    # sort by group, then by descending score
    order = torch.argsort(-s, stable=True)
    order = order[torch.argsort(gid[order], stable=True)]
    s, y, gid = s[order], y[order], gid[order]
    tp = torch.cumsum(y, 0)
    seen = torch.cumsum(torch.ones_like(y), 0)
    start = torch.searchsorted(gid, torch.arange(num_g), right=False)
    tp_before = torch.cat([torch.zeros(1, dtype=y.dtype), tp])[start][gid]
    seen_before = (start.to(y.dtype))[gid]
    tp_g, seen_g = tp - tp_before, seen - seen_before
    # the last element of each tie block (or group) is where a threshold is evaluated
    last = torch.ones_like(y, dtype=torch.bool)
    last[:-1] = (s[1:] != s[:-1]) | (gid[1:] != gid[:-1])
    tp_l, seen_l, gid_l = tp_g[last], seen_g[last], gid[last]
    prev = torch.cat([torch.zeros(1, dtype=y.dtype), tp_l[:-1]])
    first_in_group = torch.ones_like(gid_l, dtype=torch.bool)
    first_in_group[1:] = gid_l[1:] != gid_l[:-1]
    prev = torch.where(first_in_group, torch.zeros_like(prev), prev)
    pos = torch.zeros(num_g, dtype=y.dtype).index_add_(0, gid, y)
    contrib = (tp_l - prev) * (tp_l / seen_l)
    ap = torch.zeros(num_g, dtype=y.dtype).index_add_(0, gid_l, contrib)
    return ap / pos.clamp(min=1), pos


def average_precision(scores, labels) -> float:
    r"""Average precision :math:`\sum_n (R_n - R_{n-1}) P_n` over distinct score
    thresholds (``sklearn.metrics.average_precision_score``)."""
    s, y = _scores_labels(scores, labels)
    if y.sum() == 0:
        raise DataError("average_precision needs at least one positive label.")
    ap, _ = _grouped_ap(s, y, torch.zeros_like(y, dtype=torch.long))
    return float(ap[0])


def roc_auc(scores, labels) -> float:
    r"""Area under the ROC curve via the Mann-Whitney statistic with mid-ranks for ties
    (equal to ``sklearn.metrics.roc_auc_score``)."""
    s, y = _scores_labels(scores, labels)
    p = float(y.sum())
    n = y.numel() - p
    if p == 0 or n == 0:
        raise DataError("roc_auc needs both positive and negative labels.")
    sorted_s, order = torch.sort(s)
    _, inv, counts = torch.unique_consecutive(sorted_s, return_inverse=True,
                                              return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    mid = ends - (counts.to(torch.float64) - 1) / 2  # 1-based mid-rank of each tie block
    ranks = torch.empty_like(s)
    ranks[order] = mid[inv]
    return float(((ranks * y).sum() - p * (p + 1) / 2) / (p * n))


def mrr(pos_scores, neg_scores, reduce: bool = True) -> float | Tensor:
    r"""Mean reciprocal rank of each positive among its own negatives (TGB).

    ``rank = 1 + (#neg > pos + #neg >= pos) / 2``: ties count half, the average of the
    optimistic and pessimistic rank.

    Args:
        pos_scores: ``[B]``.
        neg_scores: ``[B, K]``.
        reduce: return the mean (float) or the per-positive reciprocal ranks ``[B]``.
    """
    pos = _tensor(pos_scores).to(torch.float64).reshape(-1)
    neg = _tensor(neg_scores).to(torch.float64)
    if neg.dim() == 1:
        neg = neg.unsqueeze(1)
    if neg.dim() != 2 or neg.size(0) != pos.numel():
        raise ShapeError(f"mrr: pos_scores [{pos.numel()}] needs neg_scores [B, K], "
                         f"got {list(neg.shape)}.")
    if not (torch.isfinite(pos).all() and torch.isfinite(neg).all()):
        raise DataError("mrr: scores contain NaN or inf.")
    optimistic = (neg > pos[:, None]).sum(1)
    pessimistic = (neg >= pos[:, None]).sum(1)
    rr = 1.0 / (0.5 * (optimistic + pessimistic).to(torch.float64) + 1.0)
    return float(rr.mean()) if reduce else rr


def mean_average_precision(scores, labels, groups) -> float:
    """MAP as in EvolveGCN's link prediction: average precision of each group (e.g. source
    node) over its candidate edges, averaged over groups with at least one positive."""
    s, y = _scores_labels(scores, labels)
    g = _tensor(groups).reshape(-1).long()
    if g.numel() != s.numel():
        raise ShapeError(f"{s.numel()} scores but {g.numel()} group ids.")
    ap, pos = _grouped_ap(s, y, g)
    has = pos > 0
    if not has.any():
        raise DataError("mean_average_precision needs at least one positive label.")
    return float(ap[has].mean())


def f1_score(pred, labels, average: str = "macro", num_classes: int | None = None) -> float:
    """F1 of predicted class ids against true ids (``sklearn.metrics.f1_score`` semantics,
    ``zero_division=0``).

    Args:
        pred, labels: integer class ids ``[n]`` (bool allowed for binary).
        average: ``"binary"`` (F1 of class 1), ``"macro"`` (unweighted mean over classes
            present in ``labels`` or ``pred``, or over ``num_classes`` when given),
            ``"micro"`` (global counts; equals accuracy for single-label data) or
            ``"weighted"`` (mean weighted by class support).
    """
    p = _tensor(pred).reshape(-1).long()
    y = _tensor(labels).reshape(-1).long()
    if p.numel() != y.numel():
        raise ShapeError(f"{p.numel()} predictions but {y.numel()} labels.")
    if p.numel() == 0:
        raise DataError("f1_score of zero samples is undefined.")
    if (p < 0).any() or (y < 0).any():
        raise DataError("class ids must be non-negative.")
    c = int(max(int(p.max()), int(y.max()))) + 1
    if num_classes is not None:
        c = max(c, num_classes)
    tp = torch.bincount(y[p == y], minlength=c).double()
    pred_count = torch.bincount(p, minlength=c).double()
    true_count = torch.bincount(y, minlength=c).double()
    denom = pred_count + true_count
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    if average == "binary":
        if c > 2:
            raise DataError("average='binary' needs labels in {0, 1}; use 'macro'.")
        return float(f1[1]) if c > 1 else 0.0
    if average == "micro":
        return float(tp.sum() / p.numel())
    present = denom > 0 if num_classes is None else torch.ones(c, dtype=torch.bool)
    if average == "macro":
        return float(f1[present].mean())
    if average == "weighted":
        w = true_count[present]
        return float((f1[present] * w).sum() / w.sum()) if w.sum() > 0 else 0.0
    raise DataError(f"unknown average={average!r}; use binary, macro, micro or weighted.")
