"""Snapshot link prediction / edge classification (EvolveGCN protocol)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from dyngraph.data import EventStream
from dyngraph.errors import ConfigError, DataError
from dyngraph.train.snapshot import (
    PairClassifier,
    SnapshotTrainer,
    TrainConfig,
    _native_pairs_ok,
    all_pairs_ap_mrr,
    chronological_split,
    grouped_ap_mrr,
    official_config,
    prepare_task,
    run_snapshot_linkpred,
)


def _official_row_mrr(scores: np.ndarray, truth: np.ndarray) -> float:
    """EvolveGCN logger: per source row, mean 1/rank of its true pairs, averaged over rows."""
    out = []
    for s, y in zip(scores, truth):
        if y.any():
            ranks = np.flatnonzero(y[np.argsort(-s, kind="stable")]) + 1
            out.append(np.mean(1.0 / ranks))
    return float(np.mean(out))


@pytest.mark.parametrize("native", [True, False])
def test_all_pairs_ap_matches_sklearn_and_mrr_matches_official(monkeypatch, native):
    from sklearn.metrics import average_precision_score

    from dyngraph.train import snapshot as snap

    if native and not _native_pairs_ok("threshold_counts"):
        pytest.skip("native extension unavailable")
    monkeypatch.setattr(snap, "_native_pairs_ok", lambda op="", native=native: native)

    rng = np.random.default_rng(0)
    n = 37
    scores = rng.normal(size=(n, n))
    truth = rng.random((n, n)) < 0.05
    scores_t = torch.tensor(scores, dtype=torch.float32)
    pos = torch.tensor(np.stack(np.nonzero(truth)))
    ap, mrr = all_pairs_ap_mrr(lambda rows: scores_t[rows], n, pos, block=5)
    ref_ap = average_precision_score(truth.ravel(), scores_t.numpy().ravel())
    assert ap == pytest.approx(ref_ap, rel=1e-6)
    assert mrr == pytest.approx(_official_row_mrr(scores_t.numpy(), truth), rel=1e-6)
    # ties: scores on a coarse grid, AP still equals sklearn's tie-grouped value
    coarse = torch.round(scores_t * 2) / 2
    ap_t, _ = all_pairs_ap_mrr(lambda rows: coarse[rows], n, pos, block=8)
    assert ap_t == pytest.approx(average_precision_score(truth.ravel(), coarse.numpy().ravel()))


@pytest.mark.parametrize("dup", [0.0, 0.7])
def test_grouped_ap_mrr_equals_the_expanded_matrix(dup):
    """Nodes with identical embeddings share a row/column: AP equals sklearn's on the full
    N x N matrix and MRR the authors' per-row ranking (ties counted half, as in
    all_pairs_ap_mrr)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    n, k = 60, 14
    # every node in its own group, or 70 % of the nodes in one group (the nodes without edges)
    group = np.arange(n) if dup == 0 else np.where(rng.random(n) < dup, 0, rng.integers(1, k, n))
    _, group = np.unique(group, return_inverse=True)
    u = group.max() + 1
    scores = torch.tensor(np.round(rng.normal(size=(u, u)) * 3) / 3, dtype=torch.float32)
    full = scores[torch.tensor(group)][:, torch.tensor(group)]
    truth = rng.random((n, n)) < 0.04
    pos = torch.tensor(np.stack(np.nonzero(truth)))
    mult = torch.bincount(torch.tensor(group), minlength=u)
    ap, mrr = grouped_ap_mrr(scores, mult, torch.tensor(group), pos, block=7)
    assert ap == pytest.approx(average_precision_score(truth.ravel(), full.numpy().ravel()))
    ap_full, mrr_full = all_pairs_ap_mrr(lambda rows: full[rows], n, pos, block=9)
    assert ap == pytest.approx(ap_full, rel=1e-12) and mrr == pytest.approx(mrr_full, rel=1e-12)


def test_trainer_all_pairs_metrics_equal_the_ungrouped_computation():
    """SnapshotTrainer scores each group of identical embeddings once; the metrics equal the
    row-by-row all-pairs computation on the same embeddings."""
    from sklearn.metrics import f1_score

    stream = _synthetic_stream()
    task = prepare_task(stream.to_snapshots(window=1.0))
    # edge-heavy class weights: after an epoch the classifier calls some pairs edges
    tr = SnapshotTrainer(task, TrainConfig(model="gcn", hidden=8, cls_hidden=16, history=4,
                                           class_weights=(0.02, 0.98), progress=False))
    tr.train_epoch()
    tr.encoder.eval()  # RReLU draws random slopes in training mode
    truth, called = [], []
    with torch.no_grad():
        for t in tr.test_steps:
            h = tr.encoder.window(task, t, 4)
            assert torch.unique(h, dim=0).size(0) < task.num_nodes  # inactive nodes coincide
            pos = task.pos[t + 1]
            parts = tr.classifier.split_weights(h)
            ref = all_pairs_ap_mrr(lambda r, p=parts: tr.classifier.score_rows(p, r),
                                   task.num_nodes, pos)
            ap, mrr, counts = tr._all_pairs(h, pos)
            assert (ap, mrr) == pytest.approx(ref, rel=1e-9)
            full = tr.classifier.score_rows(parts, torch.arange(task.num_nodes))
            y = torch.zeros_like(full, dtype=torch.bool)
            y[pos[0], pos[1]] = True
            assert counts.tolist() == [(full[y] > 0).sum(), (full > 0).sum(), y.sum()]
            truth.append(y.view(-1))
            called.append(full.view(-1) > 0)
    # the authors' selection measure: edge-class F1 at the argmax, pooled over the steps
    ref_f1 = f1_score(torch.cat(truth).numpy(), torch.cat(called).numpy())
    assert ref_f1 > 0
    assert tr.evaluate(tr.test_steps)["f1"] == pytest.approx(ref_f1, rel=1e-12)


@pytest.mark.parametrize("m,p", [(0, 3), (7, 1), (1001, 5), (4099, 300), (50, 0)])
def test_native_threshold_counts_equal_searchsorted_bincount(m, p):
    """kernels/pair_scores.cpp threshold_counts == bincount(searchsorted(right=True)),
    with ties on the thresholds, repeated thresholds, +-inf and NaN values."""
    if not _native_pairs_ok("threshold_counts"):
        pytest.skip("native extension unavailable")
    g = torch.Generator().manual_seed(m + p)
    thr = torch.sort(torch.round(torch.randn(p, generator=g) * 4) / 4).values
    x = torch.round(torch.randn(m, generator=g) * 4) / 4  # many values equal a threshold
    if m > 10:
        x[:4] = torch.tensor([float("inf"), -float("inf"), float("nan"), 0.0])
    got = torch.ops.dyngraph.threshold_counts(x, thr)
    ref = torch.bincount(torch.searchsorted(thr, x, right=True), minlength=p + 1)
    assert torch.equal(got, ref)
    if p > 1:
        with pytest.raises(RuntimeError, match="sorted"):
            torch.ops.dyngraph.threshold_counts(x, thr.flip(0) - torch.arange(p))


@pytest.mark.parametrize("product", [False, True])
@pytest.mark.parametrize("grad", [True, False])  # without grad: the native kernel when built
@pytest.mark.parametrize("n,hidden", [(11, 9), (37, 100)])
def test_pair_classifier_row_scores_equal_pairwise_scores(product, grad, n, hidden):
    torch.manual_seed(0)
    clf = PairClassifier(6, hidden, product=product)
    h = torch.randn(n, 6)
    rows = torch.tensor([2, 5, 7])
    with torch.set_grad_enabled(grad):
        parts = clf.split_weights(h)
        block = clf.score_rows(parts, rows)
    assert (parts[-1] is not None) == (not grad and not product and _native_pairs_ok())
    src = rows.repeat_interleave(n)
    dst = torch.arange(n).repeat(3)
    feats = [h[src], h[dst]] + ([h[src] * h[dst]] if product else [])
    ref = clf.lin2(torch.relu(clf.lin1(torch.cat(feats, -1))))
    torch.testing.assert_close(block.reshape(-1), ref[:, 1] - ref[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(clf.score(h, src, dst), ref[:, 1] - ref[:, 0])


def test_chronological_split_paper_bitcoin():
    train, val, test = chronological_split(138, 10)
    assert (train.start, train.stop, val.stop, test.stop) == (10, 97, 110, 137)
    assert train.stop == val.start and val.stop == test.start
    with pytest.raises(ConfigError):
        chronological_split(12, 10)


def test_paper_time_steps_on_bundled_data():
    from dyngraph.datasets import BitcoinOTC, CollegeMsg

    otc = BitcoinOTC().to_snapshots(window=1_200_000)
    assert len(otc) == 138  # the paper's 138 steps
    task = prepare_task(otc, "bitcoin-otc")
    assert task.num_nodes == 5881
    # undirected targets; one-hot degree = number of distinct neighbours
    pos = task.pos[50]
    assert set(map(tuple, pos.t().tolist())) == set(map(tuple, pos.flip(0).t().tolist()))
    assert torch.equal(task.degree[50], torch.bincount(pos[0], minlength=5881))
    assert task.signs[50] is not None and set(task.signs[50].tolist()) <= {0, 1}
    uci = CollegeMsg().to_snapshots(window=190_080)
    # SNAP's CollegeMsg spans 88.05 windows, so a final 89th step holds its last events
    assert len(uci) == 89 and uci[88].num_edges < 50


def _synthetic_stream(seed: int = 0, n: int = 80, steps: int = 30, labelled: bool = False):
    """Heterogeneous activity: some nodes link a lot, every step; bad nodes' pairs rate -5."""
    gen = torch.Generator().manual_seed(seed)
    act = torch.rand(n, generator=gen) ** 3 + 0.01
    bad = torch.zeros(n, dtype=torch.bool)
    if labelled:  # a few hubs, clearly more active than anyone else, rate and get rated -5
        bad[torch.topk(act, 3).indices] = True
        act[bad] = 1.5
    src, dst, t = [], [], []
    for s in range(steps):
        e = 60
        a = torch.multinomial(act, e, replacement=True, generator=gen)
        b = torch.multinomial(act, e, replacement=True, generator=gen)
        keep = a != b
        src.append(a[keep])
        dst.append(b[keep])
        t.append(s + torch.rand(int(keep.sum()), generator=gen, dtype=torch.float64) * 0.9)
    src, dst, t = torch.cat(src), torch.cat(dst), torch.cat(t)
    order = torch.argsort(t)
    src, dst, t = src[order], dst[order], t[order]
    label = None
    if labelled:
        # a pair is labelled by the majority of its ratings in both directions (authors'
        # loader), so make the sign a property of the pair: negative when a bad node is in it
        label = torch.where(bad[src] | bad[dst], -5.0, 5.0)
    return EventStream(src, dst, t, label=label, num_nodes=n, name="synthetic")


@pytest.mark.parametrize("model,mode", [("evolvegcn-o", "stream"), ("evolvegcn-h", "window")])
def test_linkpred_beats_random_on_synthetic(tmp_path, model, mode):
    stream = _synthetic_stream()
    args = argparse.Namespace(
        dataset=stream,
        model=model,
        window=1.0,
        epochs=12,
        hidden=16,
        mode=mode,
        history=4,
        lr=0.01,
        progress=False,
        seed=0,
        report=str(tmp_path / "r.json"),
        plot=str(tmp_path / "p.png"),
    )
    res = run_snapshot_linkpred(args)
    assert res["num_snapshots"] == 30 and res["dataset"] == "synthetic"
    # random scores give MAP ~ density of the target graph (an oracle that knows every node's
    # activity reaches ~6x); a model that reads the degree history must clear 2x
    task = prepare_task(stream.to_snapshots(window=1.0))
    density = np.mean([task.pos[r["step"]].size(1) / 80**2 for r in res["test"]["per_step"]])
    assert res["map"] > 2 * density, res["map"]
    assert 0 < res["mrr"] <= 1
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["map"] == pytest.approx(res["map"]) and (tmp_path / "p.png").stat().st_size > 0


def test_edge_classification_sign_and_f1():
    from sklearn.metrics import f1_score

    stream = _synthetic_stream(1, labelled=True)
    task = prepare_task(stream.to_snapshots(window=1.0), "synthetic")
    tr = SnapshotTrainer(
        task,
        TrainConfig(
            model="evolvegcn-o",
            task="edgecls",
            hidden=16,
            history=4,
            mode="stream",
            lr=0.02,
            class_weights="balanced",
            progress=False,
        ),
    )
    tr.fit(20)
    res = tr.evaluate(tr.test_steps)
    assert res["minority_class"] == 0  # negative ratings are the minority
    embs = tr.embeddings(tr.test_steps)
    # default edge_offset=0 (authors' code): a sample at t classifies the edges of step t
    assert [r["step"] for r in res["per_step"]] == list(tr.test_steps)
    p = torch.cat([tr.classifier(embs[t], *task.edges[t]).argmax(-1) for t in embs])
    y = torch.cat([task.signs[t] for t in embs])
    assert res["f1"] == pytest.approx(f1_score(y, p, pos_label=0))
    assert res["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"))
    # predicting "negative" everywhere gives F1 = 2p / (1 + p) on the minority class
    share = float((y == 0).float().mean())
    assert res["f1"] > 2 * share / (1 + share) + 0.05, res
    assert res["f1_macro"] > 0.6, res


def test_best_threshold_maximises_minority_f1():
    from sklearn.metrics import f1_score

    from dyngraph.train.snapshot import _best_threshold

    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(400, generator=gen) > 0.15).long()  # class 0 is the minority
    margin = y.float() * 0.8 + torch.randn(400, generator=gen)
    thr = _best_threshold(margin, y, 0, grid=4000)  # grid >> n: every margin is a candidate
    got = f1_score(y, (margin > thr).long(), pos_label=0)
    brute = max(f1_score(y, (margin > c).long(), pos_label=0) for c in margin.tolist() + [0.0])
    assert got == pytest.approx(brute)
    assert got >= f1_score(y, (margin > 0).long(), pos_label=0)  # never worse than argmax


def test_tuned_threshold_is_kept_with_the_best_model(tmp_path):
    stream = _synthetic_stream(1, labelled=True)
    task = prepare_task(stream.to_snapshots(window=1.0), "synthetic")
    cfg = dict(model="gcn", task="edgecls", hidden=8, history=4, lr=0.02, progress=False)
    tr = SnapshotTrainer(task, TrainConfig(tune_threshold=True, **cfg))
    tr.fit(3)
    val = tr.evaluate(tr.val_steps)  # best model + its threshold, no re-tuning
    assert val["f1"] == pytest.approx(tr.best) and val["threshold"] == float(tr.threshold)
    plain = SnapshotTrainer(task, TrainConfig(**cfg))
    assert plain.evaluate(plain.test_steps)["threshold"] == 0.0


def test_edge_labels_are_undirected_majority_votes():
    # pair (0, 1) at step 0: ratings +5 (0->1), -5 (1->0), -5 (1->0) -> negative both ways;
    # pair (2, 3): one +5 -> positive; step 1: (0, 1) +5 twice -> positive
    stream = EventStream(
        torch.tensor([0, 1, 1, 2, 0, 0]),
        torch.tensor([1, 0, 0, 3, 1, 1]),
        torch.tensor([0.1, 0.2, 0.3, 0.4, 1.1, 1.2], dtype=torch.float64),
        label=torch.tensor([5.0, -5.0, -5.0, 5.0, 5.0, 5.0]),
        num_nodes=4,
    )
    task = prepare_task(stream.to_snapshots(window=1.0))
    got = {tuple(e): int(y) for e, y in zip(task.edges[0].t().tolist(), task.signs[0])}
    assert got == {(0, 1): 0, (1, 0): 0, (2, 3): 1, (3, 2): 1}
    got = {tuple(e): int(y) for e, y in zip(task.edges[1].t().tolist(), task.signs[1])}
    assert got == {(0, 1): 1, (1, 0): 1}


@pytest.mark.parametrize("model", ["evolvegcn-o", "evolvegcn-h"])
def test_window_embeddings_equal_step_by_step_run(model):
    # the EGCN-O window shortcut (evolve weights only on the earlier snapshots) must give the
    # embeddings of the full computation over the window
    from dyngraph.train.snapshot import SnapshotEncoder

    task = prepare_task(_synthetic_stream(4).to_snapshots(window=1.0))
    torch.manual_seed(0)
    enc = SnapshotEncoder(model, task.num_features, hidden=7).eval()
    for t in (2, 9):
        state = None
        for s in range(max(0, t - 4), t + 1):
            h, state = enc.step(task, s, state)
        torch.testing.assert_close(enc.window(task, t, 4), h)


def test_negative_samplers():
    task = prepare_task(_synthetic_stream(5).to_snapshots(window=1.0), "synthetic")
    t = 12
    pos = task.pos[t + 1]
    true = set(map(tuple, pos.t().tolist()))
    smart = SnapshotTrainer(task, TrainConfig(history=4, progress=False))
    neg = smart._negatives(t, pos, 5)
    assert neg.size(1) == 5 * pos.size(1) and not true & set(map(tuple, neg.t().tolist()))
    # the authors' sampler: sources of true edges, destinations active in the history window
    seen = torch.stack(task.node_mask[t - 4 : t + 1]).any(0)
    assert set(neg[0].tolist()) <= set(pos[0].tolist()) and bool(seen[neg[1]].all())
    unif = SnapshotTrainer(task, TrainConfig(history=4, neg_uniform=1.0, progress=False))
    neg_u = unif._negatives(t, pos, 5)
    assert not true & set(map(tuple, neg_u.t().tolist())) and bool((neg_u[0] != neg_u[1]).all())
    assert not set(neg_u[0].tolist()) <= set(pos[0].tolist())  # sources anywhere now


def test_stream_mode_gcn_and_errors():
    stream = _synthetic_stream(2)
    task = prepare_task(stream.to_snapshots(window=1.0), "synthetic")
    with pytest.raises(DataError):
        SnapshotTrainer(task, TrainConfig(task="edgecls", history=4, progress=False))
    with pytest.raises(ConfigError):
        SnapshotTrainer(task, TrainConfig(model="lstm-gcn", history=4, progress=False))
    tr = SnapshotTrainer(task, TrainConfig(model="gcn", history=4, hidden=8, progress=False))
    before = tr.encoder.state_dict()["net.0.weight"].clone()
    loss = tr.train_epoch()
    assert np.isfinite(loss) and not torch.equal(before, tr.encoder.state_dict()["net.0.weight"])


def test_checkpoint_resume(tmp_path):
    stream = _synthetic_stream(3)
    task = prepare_task(stream.to_snapshots(window=1.0), "synthetic")
    ck = str(tmp_path / "ck.pt")
    cfg = dict(
        model="evolvegcn-o", history=4, hidden=8, mode="stream", progress=False, checkpoint=ck
    )
    a = SnapshotTrainer(task, TrainConfig(**cfg))
    a.fit(2)
    b = SnapshotTrainer(task, TrainConfig(**cfg))
    out = b.fit(3)  # resumes at epoch 2, runs one more
    assert out["epochs_run"] == 3 and len(out["log"]) == 3


def test_native_pair_classifier_gradcheck_and_matches_torch(monkeypatch):
    """The fused training path of PairClassifier (kernels/pair_scores.cpp): gradcheck of its
    custom backward, and the same logits and parameter gradients as the PyTorch ops."""
    if not _native_pairs_ok("pair_mlp_forward"):
        pytest.skip("native extension unavailable")
    from dyngraph.train import snapshot as snap

    g = torch.Generator().manual_seed(0)
    a = torch.randn(9, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(9, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w2 = torch.randn(2, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b2 = torch.randn(2, dtype=torch.float64, generator=g, requires_grad=True)
    src = torch.tensor([0, 3, 3, 8, 1, 0])  # repeated sources and destinations accumulate
    dst = torch.tensor([2, 2, 7, 8, 0, 2])
    assert torch.autograd.gradcheck(
        lambda a, b, w, c: snap._PairMLP.apply(a, b, src, dst, w, c), (a, b, w2, b2))

    torch.manual_seed(1)
    clf = PairClassifier(6, 40)
    h = torch.randn(30, 6, requires_grad=True)
    src = torch.randint(0, 30, (200,))
    dst = torch.randint(0, 30, (200,))
    out = []
    for native in (True, False):
        monkeypatch.setattr(snap, "_native_pairs_ok", lambda op="", native=native: native)
        clf.zero_grad()
        h.grad = None
        logits = clf(h, src, dst)
        (logits * torch.linspace(-1, 1, 400).view(200, 2)).sum().backward()
        out.append([logits.detach(), h.grad.clone()] + [p.grad.clone() for p in clf.parameters()])
    for x, y in zip(*out):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_official_config_is_per_model_and_gcn_borrows_evolvegcn_o():
    # the authors' Bitcoin Alpha link-prediction files differ between -H and -O
    h = official_config("linkpred", "bitcoin-alpha", "evolvegcn-h")
    o = official_config("linkpred", "bitcoin-alpha", "evolvegcn-o")
    assert (h["hidden"], h["cls_hidden"]) == (50, 100)
    assert (o["hidden"], o["cls_hidden"]) == (100, 400)
    assert official_config("linkpred", "bitcoin-alpha", "gcn") == o
    assert official_config("linkpred", "uci", "evolvegcn-o")["epochs"] == 1000
    assert official_config("linkpred", None, "gcn") == {}
    # a copy: callers may edit it
    official_config("linkpred", "uci", "gcn")["lr"] = 1.0
    assert official_config("linkpred", "uci", "gcn")["lr"] == 1e-3


def test_selection_measure_and_first_validation():
    """``eval_after`` skips the first validations (the authors validate from epoch 7) and
    ``select`` names the validation measure the best model is chosen on."""
    task = prepare_task(_synthetic_stream(4).to_snapshots(window=1.0), "synthetic")
    with pytest.raises(ConfigError, match="select"):
        SnapshotTrainer(task, TrainConfig(history=4, select="auc", progress=False))
    tr = SnapshotTrainer(task, TrainConfig(model="gcn", history=4, hidden=8, select="f1",
                                           class_weights=(0.02, 0.98), eval_after=3,
                                           progress=False))
    out = tr.fit(6)
    assert ["val" in r for r in out["log"]] == [False] * 3 + [True] * 3
    assert out["best_val"] == max(r["val"] for r in out["log"][3:])
    # the restored best model scores that F1 again (eval mode is deterministic)
    assert tr.evaluate(tr.val_steps)["f1"] == pytest.approx(out["best_val"], rel=1e-12)


def test_tied_validation_keeps_the_later_model():
    """While no pair is called an edge the F1 stays 0; like the authors' code (which re-tests
    on every tie), the model kept is the latest of the tied ones, not the first."""
    task = prepare_task(_synthetic_stream(5).to_snapshots(window=1.0), "synthetic")
    tr = SnapshotTrainer(task, TrainConfig(model="gcn", history=4, hidden=8, select="f1",
                                           class_weights=(0.5, 0.5), lr=1e-4, progress=False))
    states = []

    def train_and_record(*a, **k):
        out = train_epoch(*a, **k)
        states.append({n: v.clone() for n, v in tr.encoder.state_dict().items()})
        return out

    train_epoch, tr.train_epoch = tr.train_epoch, train_and_record
    out = tr.fit(3)
    assert [r["val"] for r in out["log"]] == [0.0, 0.0, 0.0]  # balanced weights: no edge called
    kept = tr.encoder.state_dict()
    same = [all(torch.equal(st[n], kept[n]) for n in kept) for st in states]
    assert same == [False, False, True]


def test_loss_normalisation_of_the_authors():
    """``loss_norm="samples"`` is the authors' ``Cross_Entropy``: the mean over pairs of
    ``w_y * CE``; the default divides by the summed weights (PyTorch's weighted mean)."""
    task = prepare_task(_synthetic_stream(6).to_snapshots(window=1.0), "synthetic")
    with pytest.raises(ConfigError, match="loss_norm"):
        SnapshotTrainer(task, TrainConfig(history=4, loss_norm="pairs", progress=False))
    losses = {}
    for norm in ("weights", "samples"):
        tr = SnapshotTrainer(task, TrainConfig(model="gcn", history=4, hidden=8, seed=3,
                                               loss_norm=norm, progress=False))
        t = tr.train_steps[0]
        h = tr.encoder.window(task, t, 4)
        tr.gen.manual_seed(0)  # the same negatives for both
        losses[norm] = float(tr._loss(h, t))
        tr.gen.manual_seed(0)
        pos = task.pos[t + 1]
        neg = tr._negatives(t, pos, tr.cfg.neg_train)
        pairs = torch.cat([pos, neg], 1)
        y = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).long()
        logits = tr.classifier(h, pairs[0], pairs[1])
        ce = -torch.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
        w = tr.weights[y]
        ref = (w * ce).mean() if norm == "samples" else (w * ce).sum() / w.sum()
        assert losses[norm] == pytest.approx(float(ref), rel=1e-5)
    assert losses["samples"] < losses["weights"]  # the weights sum to less than the pairs
