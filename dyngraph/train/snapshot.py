"""Snapshot tasks of EvolveGCN (Pareja et al., AAAI 2020): link prediction at t+1 and edge
classification, on a :class:`~dyngraph.data.SnapshotSequence`.

Protocol (paper + authors' code, IBM/EvolveGCN ``link_pred_tasker.py``, ``edge_cls_tasker.py``,
``taskers_utils.py``, ``splitter.py``, ``logger.py``):

* graphs are made undirected; snapshot ``t``'s adjacency is weighted by event counts, gets
  self loops and is normalised :math:`D^{-1/2}(A+I)D^{-1/2}`; node features are the one-hot
  number of distinct neighbours of the node in the snapshot (0 for absent nodes);
* a sample is a time step ``t``: the model reads snapshots ``t-H .. t`` (``H`` = ``history``,
  10, so 11 snapshots) starting from its learnt initial weights (``mode="window"``);
  ``mode="stream"`` instead runs once through the whole sequence carrying the evolved weights
  and truncates back-propagation every ``history`` steps (truncated BPTT);
* chronological split over time steps: train up to ``train_frac`` (0.71 for UCI, 0.70 for
  Bitcoin), validation 10 % more, test the rest;
* link prediction trains on the true edges of ``t+1`` plus ``neg_train`` sampled non-edges
  per edge (the authors' "smart" sampler: sources of true edges, destinations drawn from the
  concatenated node sets of the history snapshots) with class-weighted cross-entropy, and is
  validated and tested on **every** ordered node pair of step ``t+1`` (hence tiny MAP): MAP =
  average precision per step, averaged over steps; MRR = mean over source nodes of the mean
  ``1/rank`` of their true edges among all ``N`` candidates, averaged over steps. Scores are
  computed in row blocks and AP is accumulated from per-block histograms, so the ``N x N``
  score matrix is never materialised. The model with the best validation MAP is tested
  (``select``; the authors' ``logger.py`` in fact selects on the edge class's F1 at the
  argmax decision, ``select="f1"``, from the 7th epoch on, ``eval_after=6``);
* edge classification (Bitcoin OTC/Alpha) labels each undirected pair of a step by majority
  vote of its rating signs; a sample at ``t`` classifies the pairs of step ``t`` itself
  (``edge_offset=0``, the authors' code; ``edge_offset=1`` predicts step ``t+1``). F1 is
  computed on the confusion counts of all test steps for the minority (negative) class (the
  authors' target class 0, also their model-selection measure), macro-averaged, and
  micro-averaged (``f1_micro``, the accuracy: the measure of the paper's Figure 3).

Deviations, all switchable: the pair classifier may also see ``h_u * h_v``
(``cls_product=True``; the authors' MLP sees ``[h_u || h_v]`` only); validation on graphs with
more than ``full_val_max_nodes`` nodes uses 100 sampled non-edges per edge instead of all
pairs (the test always ranks all pairs); ties in the MRR ranking count half (the authors'
``argsort`` breaks them arbitrarily); the class-weighted cross-entropy is divided by the summed
weights (``loss_norm="samples"``: by the number of pairs, as the authors' ``Cross_Entropy``).
The authors' per-model hyper-parameters and epoch budget
(``OFFICIAL_CONFIGS``: up to 500-1000 epochs, patience 50-100) are the defaults for the
bundled datasets. The budget matters: on UCI, validation and test MAP still climb after 100
epochs at the authors' learning rate, so a short budget with early stopping on the noisy
validation MAP stops at about half the final MAP.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dyngraph.errors import ConfigError, DataError
from dyngraph.nn.evolve import EvolveGCN, detach_state
from dyngraph.nn.gcn_norm import GCNAdjacency

__all__ = [
    "PAPER_WINDOWS",
    "PAPER_RESULTS",
    "OFFICIAL_CONFIGS",
    "official_config",
    "SnapshotTask",
    "SnapshotEncoder",
    "PairClassifier",
    "SnapshotTrainer",
    "prepare_task",
    "chronological_split",
    "all_pairs_ap_mrr",
    "grouped_ap_mrr",
    "run_snapshot_linkpred",
]

#: snapshot widths used by the paper's code (seconds)
PAPER_WINDOWS = {"uci": 190_080.0, "bitcoin-otc": 1_200_000.0, "bitcoin-alpha": 1_200_000.0}

#: the authors' hyper-parameters per (task, dataset, model), from ``experiments/parameters_*
#: .yaml`` of IBM/EvolveGCN: learning rate, class weights (0 = non-edge / negative rating),
#: training negatives per edge, GCN width (both layers: ``layer_2_feats_same_as_l1``),
#: classifier width, train fraction, and their budget: at most ``epochs`` epochs, stopping
#: after ``patience`` validations without improvement (one validation per epoch, the first
#: after epoch ``eval_after``: ``eval_after_epochs: 5`` tested as ``e > 5``). EvolveGCN-H
#: and -O have separate files (they differ on Bitcoin); the static GCN has none and uses
#: EvolveGCN-O's. :func:`official_config` looks them up; ``run_snapshot_linkpred`` uses them
#: for the bundled datasets unless an argument overrides them.
_UCI_LINKPRED = dict(  # the authors' -O and -H files for UCI agree
    lr=1e-3, class_weights=(0.1, 0.9), neg_train=50, hidden=100, cls_hidden=100,
    train_frac=0.71, epochs=1000, patience=50, eval_after=6,
)
OFFICIAL_CONFIGS = {
    ("linkpred", "uci", "evolvegcn-o"): _UCI_LINKPRED,
    ("linkpred", "uci", "evolvegcn-h"): _UCI_LINKPRED,
    ("linkpred", "bitcoin-otc", "evolvegcn-o"): dict(
        lr=1e-2, class_weights=(0.05, 0.95), neg_train=100, hidden=100, cls_hidden=400,
        train_frac=0.70, epochs=500, patience=50, eval_after=6,
    ),
    ("linkpred", "bitcoin-otc", "evolvegcn-h"): dict(
        lr=5e-3, class_weights=(0.05, 0.95), neg_train=100, hidden=33, cls_hidden=400,
        train_frac=0.70, epochs=500, patience=50, eval_after=6,
    ),
    ("linkpred", "bitcoin-alpha", "evolvegcn-o"): dict(
        lr=5e-3, class_weights=(0.05, 0.95), neg_train=100, hidden=100, cls_hidden=400,
        train_frac=0.70, epochs=500, patience=50, eval_after=6,
    ),
    ("linkpred", "bitcoin-alpha", "evolvegcn-h"): dict(
        lr=5e-3, class_weights=(0.1, 0.9), neg_train=100, hidden=50, cls_hidden=100,
        train_frac=0.70, epochs=500, patience=50, eval_after=6,
    ),
    ("edgecls", "bitcoin-otc", "evolvegcn-o"): dict(
        lr=1e-3, class_weights=(0.8, 0.2), hidden=32, cls_hidden=316, train_frac=0.70,
        epochs=1000, patience=100, eval_after=6,
    ),
    ("edgecls", "bitcoin-otc", "evolvegcn-h"): dict(
        lr=1e-3, class_weights=(0.8, 0.2), hidden=50, cls_hidden=100, train_frac=0.70,
        epochs=1000, patience=100, eval_after=6,
    ),
    ("edgecls", "bitcoin-alpha", "evolvegcn-o"): dict(
        lr=1e-3, class_weights=(0.8, 0.2), hidden=122, cls_hidden=77, train_frac=0.70,
        epochs=1000, patience=100, eval_after=6,
    ),
    ("edgecls", "bitcoin-alpha", "evolvegcn-h"): dict(
        lr=1e-3, class_weights=(0.8, 0.2), hidden=100, cls_hidden=200, train_frac=0.70,
        epochs=1000, patience=100, eval_after=6,
    ),
}


def official_config(task: str, dataset: str | None, model: str) -> dict:
    """The authors' settings for ``(task, dataset, model)`` (:data:`OFFICIAL_CONFIGS`; the
    static GCN borrows EvolveGCN-O's), or ``{}`` for a dataset they did not configure.

    The static GCN keeps ``history=10`` although the authors' ``run_exp.py`` sets
    ``num_hist_steps = 0`` for it: the history also feeds the negative sampler, and with none
    it draws negatives among the nodes of the current snapshot only, so the model learns that
    a pair with an inactive node is an edge and ranks all pairs below random (measured on UCI:
    MAP .0001, MRR .0008, 3 seeds), far from the paper's GCN (.0251 / .1141). ``history=0``
    reproduces that setting."""
    if model == "gcn":
        model = "evolvegcn-o"
    return dict(OFFICIAL_CONFIGS.get((task, dataset, model), {}))


#: EvolveGCN paper, Table 3 (link prediction), plus ROLAND (KDD 2022) MRR
PAPER_RESULTS = {
    "gcn": {
        "bitcoin-otc": (0.0003, 0.0025),
        "bitcoin-alpha": (0.0003, 0.0031),
        "uci": (0.0251, 0.1141),
    },
    "evolvegcn-h": {
        "bitcoin-otc": (0.0026, 0.0690),
        "bitcoin-alpha": (0.0049, 0.1104),
        "uci": (0.0126, 0.0899),
    },
    "evolvegcn-o": {
        "bitcoin-otc": (0.0028, 0.0968),
        "bitcoin-alpha": (0.0036, 0.1185),
        "uci": (0.0270, 0.1379),
    },
    "roland-gru": {
        "bitcoin-otc": (None, 0.220),
        "bitcoin-alpha": (None, 0.289),
        "uci": (None, 0.229),
    },
}


# ----------------------------------------------------------------------------- data


@dataclass
class SnapshotTask:
    """Everything a snapshot model needs, precomputed once per snapshot.

    ``adj[t]``: normalised undirected adjacency; ``degree[t]``: [N] long, one-hot index of
    the node feature; ``node_mask[t]``: nodes active at ``t``; ``pos[t]``: [2, P_t] undirected
    edges of ``t`` (both directions) — link prediction targets; ``edges[t]``/``signs[t]``:
    the edges to classify at ``t`` and their 0/1 sign label (edge classification). For a
    labelled stream these are the undirected pairs of ``t`` (both directions, as in the
    authors' loader) labelled by majority vote of the signs of their ratings in the step;
    unlabelled streams keep the directed edges and ``signs[t] = None``.
    """

    adj: list[GCNAdjacency]
    degree: list[Tensor]
    node_mask: list[Tensor]
    pos: list[Tensor]
    edges: list[Tensor]
    signs: list[Tensor | None]
    num_nodes: int
    num_features: int
    window: float
    name: str = ""

    def __len__(self) -> int:
        return len(self.adj)

    def features(self, t: int) -> Tensor:
        return F.one_hot(self.degree[t], self.num_features).float()


def prepare_task(snapshots, name: str = "") -> SnapshotTask:
    """Turn a :class:`~dyngraph.data.SnapshotSequence` into a :class:`SnapshotTask`."""
    n = snapshots.num_nodes
    adj, degree, masks, pos, edges, signs = [], [], [], [], [], []
    for snap in snapshots:
        ei, w = snap.edge_index, snap.edge_weight
        und = torch.cat([ei, ei.flip(0)], 1)
        key, inv = torch.unique(und[0] * n + und[1], return_inverse=True)
        und_w = torch.zeros(key.numel()).index_add_(0, inv, torch.cat([w, w]).float())
        und = torch.stack([key // n, key % n])
        adj.append(GCNAdjacency.from_edge_index(und, und_w, n))
        degree.append(torch.bincount(und[0], minlength=n))
        masks.append(snap.node_mask.clone())
        pos.append(und)
        if snap.edge_label is None:
            edges.append(ei)
            signs.append(None)
        else:
            # the authors' loader adds every rating in both directions and labels a pair of a
            # step by majority vote of its rating signs (ties and 0 count as negative)
            vote = torch.where(snap.edge_label > 0, 1.0, -1.0) * w.float()
            und_vote = torch.zeros(key.numel()).index_add_(0, inv, torch.cat([vote, vote]))
            edges.append(und)
            signs.append((und_vote > 0).long())
    num_features = int(max(int(d.max()) for d in degree)) + 1
    return SnapshotTask(
        adj, degree, masks, pos, edges, signs, n, num_features, float(snapshots.window), name
    )


def chronological_split(
    num_steps: int, history: int, train: float = 0.71, val: float = 0.10
) -> tuple[range, range, range]:
    """Sample steps ``t`` (predicting ``t+1``) for train/val/test, as in the authors' splitter:
    train ``[history, floor(T_max*train))``, val up to ``floor(T_max*(train+val))``, test up to
    ``T_max - 1`` where ``T_max = num_steps - 1``."""
    t_max = num_steps - 1
    a = int(math.floor(t_max * train))
    b = int(math.floor(t_max * (train + val)))
    if not history < a < b < t_max:
        raise ConfigError(
            f"{num_steps} snapshots with history={history} leave no room for a "
            f"train/val/test split (train ends at {a}, val at {b}); use more snapshots "
            "(smaller --window) or a shorter history"
        )
    return range(history, a), range(a, b), range(b, t_max)


# ---------------------------------------------------------------------------- models


class SnapshotEncoder(nn.Module):
    """Node embeddings at step ``t`` from snapshots ``t-H..t``.

    ``kind``: ``"evolvegcn-o"``, ``"evolvegcn-h"`` or ``"gcn"`` (static 2-layer GCN on the
    last snapshot only, the paper's baseline).
    """

    def __init__(
        self, kind: str, in_channels: int, hidden: int = 100, num_layers: int = 2, cell: str = "gru"
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind in ("evolvegcn-o", "evolvegcn-h"):
            self.net = EvolveGCN(in_channels, hidden, num_layers, variant=kind[-1], cell=cell)
        elif kind == "gcn":
            dims = [in_channels] + [hidden] * num_layers
            self.net = nn.ModuleList(
                nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:])
            )
            self.act = nn.RReLU()
        else:
            raise ConfigError(
                f"unknown snapshot model {kind!r}; use evolvegcn-o, evolvegcn-h or gcn"
            )
        self.out_channels = hidden

    def step(self, task: SnapshotTask, t: int, state=None):
        """Advance one snapshot; returns ``(embeddings [N, hidden], state)``."""
        x = task.features(t)
        if self.kind == "gcn":
            for lin in self.net:
                x = self.act(task.adj[t].propagate(lin(x)))
            return x, None
        return self.net(x, task.adj[t], state=state, node_mask=task.node_mask[t])

    def window(self, task: SnapshotTask, t: int, history: int) -> Tensor:
        """Embeddings at ``t`` after reading ``t-history .. t`` from the initial weights."""
        if self.kind == "gcn":
            return self.step(task, t)[0]
        state = None
        if self.kind == "evolvegcn-o":
            # EGCN-O's weights never see the node embeddings and layer l at step t reads only
            # layer l-1 at step t, so the output at t needs just the evolved weights: skip the
            # (unused) convolutions of the earlier snapshots — same result, ~history x cheaper
            state = [None] * len(self.net.layers)
            for _ in range(max(0, t - history), t):
                state = [layer.evolve(s)[1] for layer, s in zip(self.net.layers, state)]
            return self.step(task, t, state)[0]
        for s in range(max(0, t - history), t + 1):
            h, state = self.step(task, s, state)
        return h


class PairClassifier(nn.Module):
    """MLP on ``[h_u || h_v]`` with two output classes (the authors' classifier); with
    ``product=True`` the input also holds ``h_u * h_v`` (a common link-prediction decoder that
    lets the MLP see embedding similarity directly).

    ``score(h, src, dst)`` gives the logit margin (class 1 minus class 0), the ranking score.
    ``score_rows(parts, rows)`` scores ``rows x all nodes`` without materialising the pair
    inputs: the first layer splits into a source, a destination and a product part.
    """

    def __init__(self, in_channels: int, hidden: int = 100, product: bool = False) -> None:
        super().__init__()
        self.product = product
        self.lin1 = nn.Linear((3 if product else 2) * in_channels, hidden)
        self.lin2 = nn.Linear(hidden, 2)
        self.in_channels = in_channels

    def _project(self, h: Tensor) -> tuple[Tensor, Tensor]:
        # lin1([h_u || h_v]) = (h W_a^T + bias)[u] + (h W_b^T)[v]: project nodes, then gather
        c = self.in_channels
        a = F.linear(h, self.lin1.weight[:, :c], self.lin1.bias)
        return a, F.linear(h, self.lin1.weight[:, c : 2 * c])

    def forward(self, h: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        """2-class logits ``[M, 2]`` for the pairs ``(src, dst)``."""
        a, b = self._project(h)
        if (not self.product and h.device.type == "cpu" and a.dtype in _FLOATS
                and _native_pairs_ok("pair_mlp_forward")):
            # gather, ReLU and the output layer in one native pass each way: no [M, hidden]
            # block stored for the backward (kernels/pair_scores.cpp)
            return _PairMLP.apply(a, b, src, dst, self.lin2.weight, self.lin2.bias)
        z = a[src] + b[dst]
        if self.product:
            z = z + F.linear(h[src] * h[dst], self.lin1.weight[:, 2 * self.in_channels :])
        return self.lin2(F.relu(z))

    def score(self, h: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        out = self(h, src, dst)
        return out[:, 1] - out[:, 0]

    def split_weights(self, h: Tensor) -> tuple:
        """The pieces :meth:`score_rows` reads, computed once per embedding matrix ``h``."""
        a, b = self._project(h)
        v = self.lin2.weight[1] - self.lin2.weight[0]
        wc = self.lin1.weight[:, 2 * self.in_channels :] if self.product else None
        c = self.lin2.bias[1] - self.lin2.bias[0]
        bt = None
        if (wc is None and not torch.is_grad_enabled()
                and h.dtype == torch.float32 and h.device.type == "cpu" and _native_pairs_ok()):
            # the fused kernel reads the destination terms transposed, [hidden, N]
            bt = b.detach().t().contiguous()
        return a, b, v, c, h, wc, bt

    def score_rows(self, parts, rows: Tensor) -> Tensor:
        """Logit margins ``[R, N]`` of the pairs ``rows x all nodes`` (``parts`` from
        :meth:`split_weights`); without the product term and without gradients, one native
        pass (``kernels/pair_scores.cpp``) that never forms the ``[R, N, hidden]`` block."""
        a, b, v, c, h, wc, bt = parts
        if bt is not None:
            return torch.ops.dyngraph.pair_mlp_scores(
                a.index_select(0, rows).detach(), bt, v.detach().contiguous(), float(c))
        hid = a[rows].unsqueeze(1) + b.unsqueeze(0)  # [R, N, hidden]
        if wc is not None:
            hid = hid + (h[rows].unsqueeze(1) * h.unsqueeze(0)) @ wc.t()
        return torch.relu_(hid) @ v + c


_FLOATS = (torch.float32, torch.float64)


class _PairMLP(torch.autograd.Function):
    # logits[m] = W2 relu(a[src[m]] + b[dst[m]]) + b2; the backward recomputes the hidden
    # units and scatters their gradient into a and b
    @staticmethod
    def forward(ctx, a, b, src, dst, w2, b2):
        src, dst = src.contiguous(), dst.contiguous()
        w2 = w2.to(a.dtype)
        ctx.save_for_backward(a, b, src, dst, w2)
        return torch.ops.dyngraph.pair_mlp_forward(a, b, src, dst, w2, b2.to(a.dtype))

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, b, src, dst, w2 = ctx.saved_tensors
        ga, gb, gw, gb2 = torch.ops.dyngraph.pair_mlp_backward(g.contiguous(), a, b, src, dst, w2)
        return ga, gb, None, None, gw, gb2


def _native_pairs_ok(op: str = "pair_mlp_scores") -> bool:
    """Whether ``torch.ops.dyngraph.<op>`` (``kernels/pair_scores.cpp``) may be used
    (:func:`dyngraph.ops._native.op_usable`)."""
    from dyngraph.ops import _native

    return _native.op_usable(op)


# --------------------------------------------------------------------------- metrics


def all_pairs_ap_mrr(
    score_rows, num_nodes: int, pos: Tensor, block: int = 64
) -> tuple[float, float]:
    """Average precision over all ``N x N`` pairs and per-source MRR, in row blocks.

    ``score_rows(rows) -> [R, N]`` scores; ``pos`` [2, P] are the true pairs (distinct). AP
    equals ``sklearn.metrics.average_precision_score`` on the flattened matrix (tied scores
    form one threshold); it is accumulated from a histogram of all scores against the
    positive scores, so no sort of the ``N^2`` scores is needed. The rank of a true pair in
    its source row counts strictly higher scores plus half of the other ties, and a row's
    reciprocal rank is averaged over its true pairs, as in the authors' code.
    """
    if pos.numel() == 0:
        raise DataError("no true edges to rank at this step")
    src, dst = pos
    order = torch.argsort(src * num_nodes + dst)
    src, dst = src[order], dst[order]
    p = src.numel()
    pos_scores, rank = torch.empty(p), torch.empty(p)
    all_scores = torch.empty(num_nodes, num_nodes)
    bounds = torch.searchsorted(src, torch.arange(0, num_nodes + block, block))
    with torch.no_grad():
        for bi, r0 in enumerate(range(0, num_nodes, block)):
            r1 = min(r0 + block, num_nodes)
            sc = score_rows(torch.arange(r0, r1))
            all_scores[r0:r1] = sc
            lo, hi = int(bounds[bi]), int(bounds[bi + 1])
            if hi > lo:
                ps = sc[src[lo:hi] - r0, dst[lo:hi]]
                row = sc[src[lo:hi] - r0]
                gt = (row > ps[:, None]).sum(1).double()
                eq = (row == ps[:, None]).sum(1).double() - 1
                pos_scores[lo:hi] = ps
                rank[lo:hi] = (1 + gt + eq / 2).float()
        # AP: precision at each distinct positive threshold u_m, weighted by its positives
        u, pos_count = torch.unique(pos_scores, return_counts=True)  # ascending
        hist = _threshold_hist(all_scores.view(-1), u)
        return _ap_from_hist(hist, pos_count), _mrr(src, rank)


def grouped_ap_mrr(
    scores: Tensor, mult: Tensor, group: Tensor, pos: Tensor, block: int = 4096
) -> tuple[float, float]:
    """:func:`all_pairs_ap_mrr` when nodes fall into groups of identical embeddings.

    Node ``u`` belongs to group ``group[u]`` (``[N]``), group ``g`` has ``mult[g]`` nodes and
    the pair ``(u, v)`` scores ``scores[group[u], group[v]]`` (``[U, U]``). The result equals
    :func:`all_pairs_ap_mrr` on the expanded ``N x N`` matrix, ties included, at the cost of
    ``U x U`` scores: a snapshot model gives every node without edges at ``t`` the same
    embedding, and with one-hot degree features many active nodes share one too (measured:
    33-106 distinct embeddings among Bitcoin OTC's 5,881 nodes).
    """
    if pos.numel() == 0:
        raise DataError("no true edges to rank at this step")
    n = group.numel()
    src, dst = pos
    order = torch.argsort(src * n + dst)
    src, dst = src[order], dst[order]
    with torch.no_grad():
        gs, gd = group[src], group[dst]
        pos_scores = scores[gs, gd]
        m = mult.double()
        rank = torch.empty(src.numel(), dtype=torch.float64)
        for c0 in range(0, src.numel(), block):
            row = scores[gs[c0 : c0 + block]]  # [B, U]: a source's scores, one per group
            ps = pos_scores[c0 : c0 + block, None]
            gt = (row > ps).double() @ m
            eq = (row == ps).double() @ m - 1
            rank[c0 : c0 + block] = 1 + gt + eq / 2
        u, pos_count = torch.unique(pos_scores, return_counts=True)
        if bool((mult == 1).all()):
            hist = _threshold_hist(scores.reshape(-1), u)
        else:  # cell (i, j) stands for mult[i] * mult[j] node pairs
            hist = torch.zeros(u.numel() + 1, dtype=torch.float64)
            rows_per_chunk = max(1, 4_000_000 // max(1, scores.size(1)))
            for r0 in range(0, scores.size(0), rows_per_chunk):
                sc = scores[r0 : r0 + rows_per_chunk]
                idx = torch.searchsorted(u, sc.contiguous(), right=True)
                w = m[r0 : r0 + sc.size(0), None] * m[None, :]
                hist += torch.bincount(idx.view(-1), weights=w.reshape(-1), minlength=u.numel() + 1)
        return _ap_from_hist(hist, pos_count), _mrr(src, rank)


def _threshold_hist(flat: Tensor, u: Tensor) -> Tensor:
    """``float64`` counts of ``flat`` per interval of the ascending thresholds ``u``
    (``bincount(searchsorted(u, flat, right=True))``)."""
    if flat.dtype == torch.float32 and _native_pairs_ok("threshold_counts"):
        # one branchless pass (kernels/pair_scores.cpp), ~14x the chunked searchsorted
        return torch.ops.dyngraph.threshold_counts(flat, u).double()
    hist = torch.zeros(u.numel() + 1, dtype=torch.float64)
    for c0 in range(0, flat.numel(), 4_000_000):
        idx = torch.searchsorted(u, flat[c0 : c0 + 4_000_000], right=True)
        hist += torch.bincount(idx, minlength=u.numel() + 1).double()
    return hist


def _ap_from_hist(hist: Tensor, pos_count: Tensor) -> float:
    # scores >= u_m are those whose searchsorted index is > m
    ge_all = hist.flip(0).cumsum(0).flip(0)[1:]
    ge_pos = pos_count.double().flip(0).cumsum(0).flip(0)
    return float((pos_count.double() * ge_pos / ge_all).sum() / pos_count.sum())


def _mrr(src: Tensor, rank: Tensor) -> float:
    """Mean over source nodes of the mean reciprocal rank of their true pairs."""
    rr = 1.0 / rank.double()
    rows, inv = torch.unique(src, return_inverse=True)
    row_sum = torch.zeros(rows.numel(), dtype=torch.float64).index_add_(0, inv, rr)
    row_cnt = torch.zeros(rows.numel(), dtype=torch.float64).index_add_(
        0, inv, torch.ones_like(rr)
    )
    return float((row_sum / row_cnt).mean())


def _f1(pred: Tensor, label: Tensor, positive: int) -> float:
    tp = int(((pred == positive) & (label == positive)).sum())
    return _f1_counts(tp, int((pred == positive).sum()), int((label == positive).sum()))


def _f1_counts(tp: float, predicted: float, actual: float) -> float:
    """F1 from true positives and the numbers of predicted and actual positives."""
    return 0.0 if tp == 0 else 2 * tp / (predicted + actual)


def _best_threshold(margin: Tensor, label: Tensor, positive: int, grid: int = 256) -> float:
    """The margin threshold (class 1 iff ``margin > thr``) maximising F1 of class
    ``positive``, searched over ``grid`` quantiles of the margins plus 0 (argmax)."""
    qs = torch.quantile(margin.double(), torch.linspace(0, 1, grid, dtype=torch.float64))
    cands = torch.unique(torch.cat([qs.float(), margin.new_zeros(1)]))
    best, best_f1 = 0.0, -1.0
    for c in cands.tolist():
        f = _f1((margin > c).long(), label, positive)
        if f > best_f1:
            best, best_f1 = c, f
    return best


def _sampled_ap(scores: Tensor, labels: Tensor) -> float:
    """Average precision (ties grouped) of a modest number of scored pairs."""
    order = torch.argsort(scores, descending=True)
    s, y = scores[order], labels[order].double()
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # last position of each run of tied scores
    tp = y.cumsum(0)[last]
    cnt = torch.arange(1, s.numel() + 1, dtype=torch.float64)[last]
    new_pos = torch.diff(tp, prepend=tp.new_zeros(1))
    return float((new_pos * tp / cnt).sum() / y.sum().clamp(min=1))


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    """Hyper-parameters; defaults follow the authors' configuration files where sensible."""

    model: str = "evolvegcn-o"
    task: str = "linkpred"
    hidden: int = 100
    cls_hidden: int = 100
    cls_product: bool = False
    num_layers: int = 2
    cell: str = "gru"
    history: int = 10
    mode: str = "window"
    lr: float = 5e-3
    neg_train: int = 50
    neg_val: int = 100
    #: share of training negatives drawn uniformly from all node pairs instead of by the
    #: authors' smart sampler (0 = theirs)
    neg_uniform: float = 0.0
    #: cross-entropy weights of classes (0, 1); ``None``: the authors' (0.1, 0.9) for link
    #: prediction, (0.8, 0.2) for edge classification (class 0 = negative rating);
    #: ``"balanced"``: inverse class frequency of the training labels
    class_weights: tuple[float, float] | str | None = None
    #: what the class-weighted cross-entropy is divided by: ``"weights"``, the sum of the
    #: samples' class weights (PyTorch's mean), or ``"samples"``, their number (the authors'
    #: ``Cross_Entropy``). Under Adam this is nearly, not exactly, a rescaling: the encoder's
    #: gradients are ~1e-7 at initialisation, not far above Adam's ``eps``
    loss_norm: str = "weights"
    train_frac: float = 0.71
    val_frac: float = 0.10
    #: edge classification: pick the decision threshold on the logit margin that maximises the
    #: validation F1 of the minority class (False: argmax, the authors' rule)
    tune_threshold: bool = False
    #: edge classification labels step ``t + edge_offset`` from snapshots ``<= t``: 0 is the
    #: authors' code (the edges of the last snapshot read), 1 predicts the next step's signs
    edge_offset: int = 0
    seed: int = 0
    eval_every: int = 1
    #: no validation (and no patience count) during the first ``eval_after`` epochs; the
    #: authors' code validates from its 7th epoch (``eval_after_epochs: 5``, tested as ``e > 5``)
    eval_after: int = 0
    #: link prediction's model-selection measure on validation: ``"map"`` (all-pairs MAP),
    #: ``"mrr"``, or ``"f1"``: F1 of the edge class at the argmax decision over all validation
    #: pairs, pooled over steps, which is what the authors' ``logger.py`` selects on (its
    #: per-class branch overwrites the configured ``target_measure: MAP`` for
    #: ``target_class: 1``)
    select: str = "map"
    patience: int = 10
    full_val_max_nodes: int = 2500
    checkpoint: str | None = None
    progress: bool = True
    extra: dict = field(default_factory=dict)


class SnapshotTrainer:
    """Trains an encoder + pair classifier on a :class:`SnapshotTask`; see module docstring."""

    def __init__(self, task: SnapshotTask, cfg: TrainConfig) -> None:
        if cfg.task not in ("linkpred", "edgecls"):
            raise ConfigError(f"task must be 'linkpred' or 'edgecls', got {cfg.task!r}")
        if cfg.mode not in ("window", "stream"):
            raise ConfigError(f"mode must be 'window' or 'stream', got {cfg.mode!r}")
        if cfg.loss_norm not in ("weights", "samples"):
            raise ConfigError(f"loss_norm must be 'weights' or 'samples', got {cfg.loss_norm!r}")
        if cfg.select not in ("map", "mrr", "f1"):
            raise ConfigError(f"select must be 'map', 'mrr' or 'f1', got {cfg.select!r}")
        if cfg.task == "edgecls" and all(s is None for s in task.signs):
            raise DataError(
                f"dataset {task.name!r} has no edge labels; edge classification needs a "
                "labelled stream such as bitcoin-otc or bitcoin-alpha"
            )
        self.task, self.cfg = task, cfg
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.encoder = SnapshotEncoder(
            cfg.model, task.num_features, cfg.hidden, cfg.num_layers, cfg.cell
        )
        self.classifier = PairClassifier(cfg.hidden, cfg.cls_hidden, cfg.cls_product)
        self.opt = torch.optim.Adam(
            [*self.encoder.parameters(), *self.classifier.parameters()], lr=cfg.lr
        )
        if cfg.edge_offset not in (0, 1):
            raise ConfigError(f"edge_offset must be 0 or 1, got {cfg.edge_offset}")
        self.train_steps, self.val_steps, self.test_steps = chronological_split(
            len(task), cfg.history, cfg.train_frac, cfg.val_frac
        )
        # step whose edges a sample at t is trained on / scored against
        self.offset = 1 if cfg.task == "linkpred" else cfg.edge_offset
        if self.offset == 0:  # the last snapshot can be classified too
            self.test_steps = range(self.test_steps.start, len(task))
        cw = cfg.class_weights
        if cfg.task == "edgecls":
            y = torch.cat(
                [
                    task.signs[t + self.offset]
                    for t in self.train_steps
                    if task.signs[t + self.offset] is not None
                ]
            )
            freq = torch.bincount(y, minlength=2).float().clamp(min=1)
            self.minority = int(freq.argmin())
            if cw == "balanced":
                self.weights = freq.sum() / (2 * freq)
            else:
                self.weights = torch.tensor((0.8, 0.2) if cw is None else cw, dtype=torch.float)
        else:
            if isinstance(cw, str):
                raise ConfigError("class_weights='balanced' is for edge classification")
            self.weights = torch.tensor((0.1, 0.9) if cw is None else cw, dtype=torch.float)
        # nodes active at each step, for the negative sampler (drawn every training sample)
        self._active = [m.nonzero().view(-1) for m in task.node_mask]
        # every selection measure is >= 0; like the authors' code, the first validation
        # only improves on 0 if it is positive
        self.epoch, self.best, self.best_state, self.history_log = 0, 0.0, None, []
        self.epoch_times: list[float] = []
        # edge classification decides class 1 when logit_1 - logit_0 > threshold (0 = argmax)
        self.threshold = torch.zeros(())

    # -- losses ------------------------------------------------------------------
    def _negatives(self, t: int, pos: Tensor, mult: int) -> Tensor:
        n = self.task.num_nodes
        lo = max(0, t - self.cfg.history)
        # the authors concatenate each history snapshot's node set, so a node is drawn in
        # proportion to the number of snapshots it was active in
        seen = torch.cat(self._active[lo : t + 1])
        if seen.numel() == 0:
            seen = torch.arange(n)
        m = pos.size(1) * mult
        src = pos[0][torch.randint(0, pos.size(1), (2 * m,), generator=self.gen)]
        dst = seen[torch.randint(0, seen.numel(), (2 * m,), generator=self.gen)]
        if self.cfg.neg_uniform > 0:
            # the test ranks all N^2 pairs, most between nodes the smart sampler never draws
            u = torch.rand(2 * m, generator=self.gen) < self.cfg.neg_uniform
            k = int(u.sum())
            src[u] = torch.randint(0, n, (k,), generator=self.gen)
            dst[u] = torch.randint(0, n, (k,), generator=self.gen)
        key = src * n + dst
        true = torch.sort(pos[0] * n + pos[1]).values
        loc = torch.searchsorted(true, key).clamp(max=true.numel() - 1)
        keep = (true[loc] != key) & (src != dst)
        return torch.stack([src[keep][:m], dst[keep][:m]])

    def _loss(self, h: Tensor, t: int) -> Tensor | None:
        nxt = t + 1
        if self.cfg.task == "linkpred":
            pos = self.task.pos[nxt]
            if pos.numel() == 0:
                return None
            neg = self._negatives(t, pos, self.cfg.neg_train)
            pairs = torch.cat([pos, neg], 1)
            y = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).long()
        else:
            k = t + self.offset
            if self.task.signs[k] is None or self.task.edges[k].numel() == 0:
                return None
            pairs, y = self.task.edges[k], self.task.signs[k]
        logits = self.classifier(h, pairs[0], pairs[1])
        if self.cfg.loss_norm == "samples":  # the authors' Cross_Entropy: mean of w_y * CE
            return F.cross_entropy(logits, y, weight=self.weights, reduction="sum") / y.numel()
        return F.cross_entropy(logits, y, weight=self.weights)

    # -- epochs ------------------------------------------------------------------
    def train_epoch(self) -> float:
        """One pass over the training snapshots (window or sequence mode); returns the mean training
        loss.
        """
        self.encoder.train()
        self.classifier.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        if self.cfg.mode == "window":
            for t in self.train_steps:
                h = self.encoder.window(self.task, t, self.cfg.history)
                loss = self._loss(h, t)
                if loss is None:
                    continue
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total, count = total + float(loss.detach()), count + 1
        else:  # one pass, weights carried, back-propagation truncated every `history` steps
            state, acc, k = None, 0.0, 0
            for t in range(self.train_steps.stop):
                h, state = self.encoder.step(self.task, t, state)
                if t in self.train_steps:
                    loss = self._loss(h, t)
                    if loss is not None:
                        acc, k = acc + loss, k + 1
                        total, count = total + float(loss.detach()), count + 1
                if (t + 1) % self.cfg.history == 0 or t + 1 == self.train_steps.stop:
                    if k:
                        self.opt.zero_grad()
                        (acc / k).backward()
                        self.opt.step()
                    state, acc, k = detach_state(state), 0.0, 0
        self.epoch_times.append(time.perf_counter() - t0)
        return total / max(count, 1)

    @torch.no_grad()
    def embeddings(self, steps: range) -> dict[int, Tensor]:
        """Embeddings at every step of ``steps`` (eval mode)."""
        self.encoder.eval()
        self.classifier.eval()
        out = {}
        if self.cfg.mode == "window" or self.cfg.model == "gcn":
            for t in steps:
                out[t] = self.encoder.window(self.task, t, self.cfg.history)
        else:
            state = None
            for t in range(steps.stop):
                h, state = self.encoder.step(self.task, t, state)
                if t in steps:
                    out[t] = h
        return out

    @torch.no_grad()
    def evaluate(self, steps: range, full: bool = True, tune: bool = False) -> dict:
        """Metrics over ``steps``; ``full`` ranks all node pairs (link prediction); ``tune``
        (edge classification with ``cfg.tune_threshold``) first picks the decision threshold
        that maximises the minority-class F1 on these steps (validation)."""
        embs = self.embeddings(steps)
        per_step = []
        if self.cfg.task == "linkpred":
            counts = torch.zeros(3, dtype=torch.float64)  # true pos., predicted pos., edges
            for t, h in embs.items():
                pos = self.task.pos[t + 1]
                if pos.numel() == 0:
                    continue
                if full:
                    ap, mrr, c = self._all_pairs(h, pos)
                else:
                    neg = self._negatives(t, pos, self.cfg.neg_val)
                    pairs = torch.cat([pos, neg], 1)
                    s = self.classifier.score(h, pairs[0], pairs[1])
                    y = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
                    ap, mrr = _sampled_ap(s, y), float("nan")
                    hit = s > 0
                    c = torch.tensor([(hit & (y == 1)).sum(), hit.sum(), y.sum()],
                                     dtype=torch.float64)
                counts += c
                per_step.append({"step": t + 1, "map": ap, "mrr": mrr})
            return {
                "map": sum(r["map"] for r in per_step) / max(len(per_step), 1),
                "mrr": sum(r["mrr"] for r in per_step) / max(len(per_step), 1),
                # F1 of the edge class when a pair is called an edge iff its margin is > 0
                "f1": _f1_counts(*counts.tolist()),
                "per_step": per_step,
            }
        margins, labels, steps_k = [], [], []
        for t, h in embs.items():
            k = t + self.offset
            if self.task.signs[k] is None or self.task.edges[k].numel() == 0:
                continue
            e = self.task.edges[k]
            margins.append(self.classifier.score(h, e[0], e[1]))
            labels.append(self.task.signs[k])
            steps_k.append(k)
        if tune and self.cfg.tune_threshold:
            self.threshold.fill_(_best_threshold(torch.cat(margins), torch.cat(labels),
                                                 self.minority))
        preds = [(m > self.threshold).long() for m in margins]
        for k, p, y in zip(steps_k, preds, labels):
            per_step.append(
                {"step": k, "f1": _f1(p, y, self.minority), "num_edges": int(y.numel())}
            )
        p, y = torch.cat(preds), torch.cat(labels)
        return {
            "threshold": float(self.threshold),
            "f1": _f1(p, y, self.minority),
            "f1_macro": (_f1(p, y, 0) + _f1(p, y, 1)) / 2,
            # the paper's Figure 3 measure: micro-averaged F1 over both classes, which for
            # one label per edge is the accuracy
            "f1_micro": float((p == y).double().mean()),
            "minority_class": self.minority,
            "per_step": per_step,
        }

    def _all_pairs(self, h: Tensor, pos: Tensor) -> tuple[float, float, Tensor]:
        """MAP, MRR and the argmax-decision counts (true positives, predicted positives,
        edges) of one step over all node pairs. Nodes with identical embeddings (at a step,
        every node without edges) share one row and one column of the scored matrix
        (:func:`grouped_ap_mrr`)."""
        uniq, group, mult = torch.unique(h, dim=0, return_inverse=True, return_counts=True)
        parts = self.classifier.split_weights(uniq)
        k = uniq.size(0)
        scores = torch.cat([
            self.classifier.score_rows(parts, torch.arange(r0, min(r0 + 64, k)))
            for r0 in range(0, k, 64)
        ])
        m = mult.double()
        hit = (scores > 0).double()
        counts = torch.stack([
            hit[group[pos[0]], group[pos[1]]].sum(), m @ hit @ m,
            torch.tensor(float(pos.size(1)), dtype=torch.float64),
        ])
        return (*grouped_ap_mrr(scores, mult, group, pos), counts)

    def _select_metric(self, res: dict) -> float:
        return res[self.cfg.select] if self.cfg.task == "linkpred" else res["f1"]

    def state_dict(self) -> dict:
        """Encoder, classifier and decision threshold, for checkpoints."""
        return {
            "encoder": self.encoder.state_dict(),
            "classifier": self.classifier.state_dict(),
            "decision": {"threshold": self.threshold},
        }

    def load_state_dict(self, sd: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.encoder.load_state_dict(sd["encoder"])
        self.classifier.load_state_dict(sd["classifier"])
        if "decision" in sd:
            self.threshold.copy_(sd["decision"]["threshold"])

    def _save(self) -> None:
        if self.cfg.checkpoint:
            torch.save(
                {
                    "epoch": self.epoch,
                    "best": self.best,
                    "best_state": self.best_state,
                    "model": self.state_dict(),
                    "opt": self.opt.state_dict(),
                    "log": self.history_log,
                    "gen": self.gen.get_state(),
                    "epoch_times": self.epoch_times,
                },
                self.cfg.checkpoint,
            )

    def _resume(self) -> None:
        path = self.cfg.checkpoint
        if path and Path(path).exists():
            ck = torch.load(path, weights_only=False)
            self.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["opt"])
            self.epoch, self.best, self.best_state = ck["epoch"], ck["best"], ck["best_state"]
            self.history_log, self.epoch_times = ck["log"], ck["epoch_times"]
            self.gen.set_state(ck["gen"])

    def fit(self, epochs: int) -> dict:
        """Train with validation-based model selection (early stopping on ``patience``)."""
        from tqdm.auto import tqdm

        self._resume()
        full_val = self.cfg.task != "linkpred" or self.task.num_nodes <= self.cfg.full_val_max_nodes
        bad = 0
        bar = tqdm(
            range(self.epoch, epochs),
            disable=not self.cfg.progress,
            desc=f"{self.cfg.model} {self.task.name}",
            leave=False,
        )
        for e in bar:
            loss = self.train_epoch()
            self.epoch = e + 1
            rec = {"epoch": self.epoch, "loss": loss}
            if self.epoch > self.cfg.eval_after and (
                self.epoch % self.cfg.eval_every == 0 or self.epoch == epochs
            ):
                res = self.evaluate(self.val_steps, full=full_val, tune=True)
                val = self._select_metric(res)
                rec["val"] = val
                # every measure, so a learning curve can be read whichever one selects
                rec["val_metrics"] = {k: v for k, v in res.items() if isinstance(v, float)}
                # a tie keeps the later model without resetting the patience, as the authors'
                # code does (it re-tests whenever validation equals the best): an F1 that
                # stays 0 while no pair is yet called an edge must not pin the first epoch
                bad = 0 if val > self.best else bad + 1
                if val >= self.best:
                    self.best = val
                    self.best_state = {
                        k: {n: v.clone() for n, v in sd.items()}
                        for k, sd in self.state_dict().items()
                    }
                bar.set_postfix(loss=f"{loss:.4f}", val=f"{val:.4f}", best=f"{self.best:.4f}")
            self.history_log.append(rec)
            self._save()
            if bad > self.cfg.patience:
                break
        if self.best_state is not None:
            self.load_state_dict(self.best_state)
        return {"epochs_run": self.epoch, "best_val": self.best, "log": self.history_log}


# ------------------------------------------------------------------------------- CLI


def _resolve_dataset(name):
    """``(EventStream, paper key or None)`` from a bundled name, a file path or a stream."""
    from dyngraph.data import EventStream
    from dyngraph.datasets import get_events, resolve_name

    if isinstance(name, EventStream):
        return name, None
    key = resolve_name(str(name))
    key = {"collegemsg": "uci"}.get(key, key)
    return get_events(name), key if key in PAPER_WINDOWS else None


def _checkpoint_in(directory, model, dataset) -> str | None:
    """The checkpoint file inside ``--checkpoint-dir`` (the ``dyngraph linkpred`` option)."""
    if not directory:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return str(Path(directory) / f"snapshot_{model or 'evolvegcn-o'}_{dataset}.pt")


def _auto_num_snapshots(stream) -> int:
    # about 400 events per snapshot, between 20 and 150 snapshots
    return int(min(150, max(20, stream.num_events // 400)))


def _plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["test"]["per_step"]
    keys = ["map", "mrr"] if result["task"] == "linkpred" else ["f1"]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False)
    for ax, k in zip(axes[:, 0], keys):
        ax.plot([r["step"] for r in rows], [r[k] for r in rows], marker="o")
        ax.set_ylabel(k.upper())
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time step (test)")
    fig.suptitle(f"{result['model']} on {result['dataset']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_snapshot_linkpred(args: argparse.Namespace) -> dict:
    """Entry point of ``dyngraph linkpred --model evolvegcn-o|evolvegcn-h|gcn``.

    Reads (with defaults) ``dataset`` ("uci"), ``window`` (paper's width for the bundled
    datasets, else chosen from the time span), ``num_snapshots``, ``epochs`` and
    ``patience`` (the authors' budget for the bundled datasets, :func:`official_config`; else
    50 and 10), ``seed`` (0), ``task`` ("linkpred" | "edgecls"), ``hidden`` (100),
    ``history`` (10), ``mode`` ("window" | "stream"), ``lr``, ``neg_train`` (50),
    ``eval_every``, ``eval_after`` (the authors' 6 for the bundled datasets, else 0),
    ``select`` ("map" | "mrr" | "f1"), ``loss_norm`` ("weights" | "samples"),
    ``official`` (False: ignore the authors' settings),
    ``full_val_max_nodes`` (validate on all pairs up to this many nodes, else sampled),
    ``threads``, ``report`` (JSON path), ``plot`` (PNG path), ``checkpoint`` (file) or
    ``checkpoint_dir``, ``progress`` or ``no_progress``. Returns the report dictionary.
    """
    g = lambda k, d=None: getattr(args, k, None) if getattr(args, k, None) is not None else d  # noqa: E731
    if g("threads"):
        torch.set_num_threads(int(g("threads")))
    dataset = g("dataset", "uci")
    stream, key = _resolve_dataset(dataset)
    name = key or getattr(stream, "name", "") or str(dataset)
    window, num_snap = g("window"), g("num_snapshots")
    if window is None and num_snap is None:
        if key in PAPER_WINDOWS:
            window = PAPER_WINDOWS[key]
        else:
            num_snap = _auto_num_snapshots(stream)
    t0 = time.perf_counter()
    snaps = stream.to_snapshots(window=window, num_snapshots=None if window else num_snap)
    task = prepare_task(snaps, name=name)
    prep_time = time.perf_counter() - t0
    model = g("model", "evolvegcn-o")
    off = official_config(g("task", "linkpred"), key, model) if g("official", True) else {}
    cw = g("class_weights", off.get("class_weights"))
    if isinstance(cw, str) and cw != "balanced":
        cw = tuple(float(v) for v in cw.split(","))
    cfg = TrainConfig(
        model=model,
        task=g("task", "linkpred"),
        hidden=g("hidden", off.get("hidden", 100)),
        class_weights=cw,
        train_frac=g("train_frac", off.get("train_frac", 0.71)),
        edge_offset=g("edge_offset", 0),
        tune_threshold=bool(g("tune_threshold", False)),
        cell=g("cell", "gru"),
        history=g("history", 10),
        mode=g("mode", "window"),
        lr=g("lr", off.get("lr", 5e-3)),
        seed=g("seed", 0),
        patience=g("patience", off.get("patience", 10)),
        eval_every=g("eval_every", 1),
        eval_after=g("eval_after", off.get("eval_after", 0)),
        select=g("select", "map"),
        loss_norm=g("loss_norm", "weights"),
        checkpoint=g("checkpoint") or _checkpoint_in(g("checkpoint_dir"), g("model"), name),
        progress=g("progress", not g("no_progress", False)),
        neg_train=g("neg_train", off.get("neg_train", 50)),
        neg_uniform=g("neg_uniform", 0.0),
        cls_hidden=g("cls_hidden", off.get("cls_hidden", 100)),
        cls_product=bool(g("cls_product", False)),
        full_val_max_nodes=g("full_val_max_nodes", 6000),
    )
    trainer = SnapshotTrainer(task, cfg)
    t1 = time.perf_counter()
    epochs = g("epochs", off.get("epochs", 50))
    fit = trainer.fit(epochs)
    train_time = time.perf_counter() - t1
    t2 = time.perf_counter()
    test = trainer.evaluate(trainer.test_steps, full=True)
    test_time = time.perf_counter() - t2
    result = {
        "model": cfg.model,
        "task": cfg.task,
        "dataset": name,
        "num_nodes": task.num_nodes,
        "num_snapshots": len(task),
        "window": task.window,
        "history": cfg.history,
        "mode": cfg.mode,
        "cell": cfg.cell,
        "seed": cfg.seed,
        "hidden": cfg.hidden,
        "lr": cfg.lr,
        "neg_train": cfg.neg_train,
        "neg_uniform": cfg.neg_uniform,
        "cls_hidden": cfg.cls_hidden,
        "cls_product": cfg.cls_product,
        "class_weights": [float(v) for v in trainer.weights],
        "train_frac": cfg.train_frac,
        "edge_offset": cfg.edge_offset if cfg.task == "edgecls" else None,
        "tune_threshold": cfg.tune_threshold if cfg.task == "edgecls" else None,
        "official_defaults": bool(off),
        "split": {
            k: [r.start, r.stop]
            for k, r in (
                ("train", trainer.train_steps),
                ("val", trainer.val_steps),
                ("test", trainer.test_steps),
            )
        },
        "budget": {"epochs": epochs, "patience": cfg.patience,
                   "eval_every": cfg.eval_every, "eval_after": cfg.eval_after},
        "select": cfg.select if cfg.task == "linkpred" else "f1",
        "loss_norm": cfg.loss_norm,
        "epochs_run": fit["epochs_run"],
        "best_val": fit["best_val"],
        "test": test,
        "times": {
            "prepare_s": prep_time,
            "train_s": train_time,
            "test_s": test_time,
            "epoch_s_median": (
                sorted(trainer.epoch_times)[len(trainer.epoch_times) // 2]
                if trainer.epoch_times
                else None
            ),
        },
    }
    for k in ("map", "mrr", "f1", "f1_macro", "f1_micro"):
        if k in test:
            result[k] = test[k]
    paper_steps = key is not None and task.window == PAPER_WINDOWS[key]
    if paper_steps and cfg.task == "linkpred" and cfg.model in PAPER_RESULTS:
        result["paper"] = dict(zip(("map", "mrr"), PAPER_RESULTS[cfg.model].get(key, ())))
    if g("report"):
        Path(g("report")).parent.mkdir(parents=True, exist_ok=True)
        Path(g("report")).write_text(json.dumps(result, indent=2))
    if g("plot"):
        _plot(result, g("plot"))
    return result
