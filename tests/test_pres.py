"""PRES: the transition mixture is a maximum-likelihood fit (exact for K=1, close to sklearn's
batch EM for K=2), prediction-correction follows its equation and is persisted, the coherence
loss has a real gradient, every preset works with PRES without leaking the future, and a
PRES run resumes bit-for-bit."""

from __future__ import annotations

import math

import pytest
import torch

from dyngraph.data import EventStream, TemporalNeighborIndex
from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn.memory import PRESETS, build_memory_model
from dyngraph.nn.pres import (
    PRES,
    GaussianMixtureTransition,
    enable_pres,
    fuse_memory,
    gmm_log_prob,
    memory_coherence_loss,
)

N, E, F = 40, 400, 3


def _stream(seed=0, n=N, e=E):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = torch.randint(0, n, (e,), generator=g)
    t = torch.sort(torch.rand(e, generator=g, dtype=torch.float64) * 1e4).values
    return EventStream(src, dst, t, msg=torch.randn(e, F, generator=g), num_nodes=n)


def _model(name, seed=0, **pres_kw):
    torch.manual_seed(seed)
    m = build_memory_model(name, N, F, memory_dim=8, time_dim=6, embedding_dim=8,
                           num_neighbors=4)
    enable_pres(m, **pres_kw)
    return m


# ---------------------------------------------------------------------- the mixture
def test_single_component_is_exact_mle():
    g = torch.Generator().manual_seed(0)
    gm = GaussianMixtureTransition(5, 3, num_components=1, var_floor=1e-12)
    seen = {i: [] for i in range(5)}
    for _ in range(30):  # interleaved updates of random subsets of nodes
        nodes = torch.randperm(5, generator=g)[: int(torch.randint(1, 6, (1,), generator=g))]
        x = torch.randn(nodes.numel(), 3, generator=g) * 0.3 + nodes.unsqueeze(1) * 0.1
        gm.update(nodes, x)
        for j, nd in enumerate(nodes.tolist()):
            seen[nd].append(x[j])
    for nd, xs in seen.items():
        xs = torch.stack(xs).double()
        mean, var, valid = gm.predict(torch.tensor([nd]))
        assert bool(valid)
        torch.testing.assert_close(mean[0], xs.mean(0))
        torch.testing.assert_close(var[0], xs.var(0, unbiased=False))  # the MLE variance
        assert int(gm.count[nd]) == len(xs)


def test_online_em_close_to_batch_mle_of_sklearn_and_mean_is_exact():
    mixture = pytest.importorskip("sklearn.mixture")
    g = torch.Generator().manual_seed(1)
    d, n = 2, 600
    gm = GaussianMixtureTransition(3, d, num_components=2, var_floor=1e-6)
    single = GaussianMixtureTransition(3, d, num_components=1, var_floor=1e-6)
    data = []
    for _ in range(3):
        centres = torch.randn(2, d, generator=g) * 2.0
        comp = (torch.rand(n, generator=g) < 0.35).long()
        data.append(centres[comp] + torch.randn(n, d, generator=g) * 0.3)
    for i in range(n):  # one transition per node per "batch", as in training
        x = torch.stack([x[i] for x in data])
        gm.update(torch.arange(3), x)
        single.update(torch.arange(3), x)
    for node, x in enumerate(data):
        ref = mixture.GaussianMixture(2, covariance_type="diag", random_state=0,
                                      n_init=3).fit(x.numpy())
        ll_ref = float(ref.score(x.numpy()))  # mean log-likelihood of the batch MLE
        nodes = torch.full((n,), node)
        ll = float(gm.log_likelihood(nodes, x).mean())
        ll_single = float(single.log_likelihood(nodes, x).mean())
        # one online pass gets close to batch EM and far above one Gaussian
        assert ll > ll_ref - 0.25, (node, ll, ll_ref)
        assert ll > ll_single + 0.2, (node, ll, ll_single)
        # the predictor (mixture mean) is the exact MLE mean whatever the responsibilities
        mean, _, _ = gm.predict(torch.tensor([node]))
        torch.testing.assert_close(mean[0], x.double().mean(0))


def test_mixture_guards_and_log_prob():
    gm = GaussianMixtureTransition(4, 2, num_components=3)
    mean, var, valid = gm.predict(torch.arange(4))  # no history: no division by zero
    assert not valid.any() and torch.isfinite(mean).all() and torch.isfinite(var).all()
    with pytest.raises(ShapeError):
        gm.update(torch.tensor([0]), torch.zeros(1, 3))
    with pytest.raises(ConfigError):
        GaussianMixtureTransition(4, 2, num_components=0)
    gm.grow(6)
    assert gm.num_nodes == 6
    # gmm_log_prob against torch.distributions for one diagonal component
    x, mu, var = torch.randn(5, 2).double(), torch.randn(5, 1, 2).double(), \
        torch.rand(5, 1, 2).double() + 0.1
    ref = torch.distributions.Normal(mu[:, 0], var[:, 0].sqrt()).log_prob(x).sum(-1)
    torch.testing.assert_close(gmm_log_prob(x, torch.zeros(5, 1).double(), mu, var)[:, 0], ref)


# ---------------------------------------------------------------------- functions + gradients
def test_gradcheck_fusion_and_coherence():
    pred = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    comp = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda p, c, gm: fuse_memory(p, c, gm, mask),
                                    (pred, comp, gamma))
    old = torch.randn(6, 4, dtype=torch.float64)
    old[2] = 0.0  # fresh node: excluded
    assert torch.autograd.gradcheck(lambda c: memory_coherence_loss(c, old, mask), (comp,))
    # value: mean of 1 - cos over rows kept by mask and non-zero old memory
    keep = mask & (old.abs().sum(-1) > 0)
    ref = (1 - torch.nn.functional.cosine_similarity(comp[keep], old[keep], dim=-1)).mean()
    torch.testing.assert_close(memory_coherence_loss(comp, old, mask), ref)
    assert float(memory_coherence_loss(comp, old, torch.zeros(6, dtype=torch.bool)).detach()) == 0.0


def test_prediction_correction_equation_and_persistence():
    s = _stream(3)
    model = _model("tgn", gamma=0.4, num_components=1).eval()
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    batches = list(s.batches(50))
    history: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for b in batches[:6]:
            mem_before = model.state.memory.clone()
            model(b.src, b.dst, b.t, b.dst.flip(0))
            upd = model._ctx
            idx = upd.updated.nonzero().view(-1)
            for j in idx.tolist():
                nd = int(upd.n_id[j])
                torch.testing.assert_close(upd.prev[j], mem_before[nd])
                past = history.get(nd, [])
                if past:  # s = s_old + (1 - g) * delta_measured + g * mean(past deltas)
                    mean = torch.stack(past).mean(0)
                    want = upd.prev[j] + 0.6 * (upd.computed[j] - upd.prev[j]) + 0.4 * mean
                else:  # no history yet: nothing to predict from
                    want = upd.computed[j]
                torch.testing.assert_close(upd.memory[j], want, rtol=1e-5, atol=1e-6)
                history.setdefault(nd, []).append(upd.computed[j] - upd.prev[j])
            model.observe(b.src, b.dst, b.t, b.msg)
            # the fused memory is what later batches see, and the mixture counted each update
            torch.testing.assert_close(model.state.memory[upd.n_id[idx]], upd.memory[idx])
    corrected = sum(len(v) > 1 for v in history.values())
    assert corrected > 5
    for nd, past in history.items():
        assert int(model.pres.transition.count[nd]) == len(past)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_with_pres(name):
    s = _stream(2)
    model = _model(name)
    model.set_graph(TemporalNeighborIndex(s), s.msg)
    batches = list(s.batches(100))
    coh = []
    for b in batches[:3]:
        pos, neg = model(b.src, b.dst, b.t, b.dst.flip(0))
        aux = model.auxiliary_loss()
        coh.append(float(aux))
        if b is batches[2]:
            # the coherence term alone reaches the memory modules (not detached)
            model.zero_grad()
            aux.backward(retain_graph=True)
            grads = [p.grad for p in model.updater.parameters()]
            assert any(g is not None and g.abs().sum() > 0 for g in grads)
            model.zero_grad()
            (pos.sum() - neg.sum()).backward()  # the task loss trains the fusion weight
            assert model.pres.gamma_logit.grad is not None
            assert model.pres.gamma_logit.grad.abs() > 0
        model.observe(b.src, b.dst, b.t, b.msg)
    assert coh[0] == 0.0 and coh[2] > 0.0  # nothing to be coherent with before memory exists
    assert torch.isfinite(model.state.memory).all()


@pytest.mark.parametrize("name", ["tgn", "apan"])
def test_no_future_leakage_with_pres(name):
    s = _stream()
    cut = 233
    t_cut = float(s.t[cut])
    g = torch.Generator().manual_seed(9)
    src, dst = s.src.clone(), s.dst.clone()
    later = s.t >= t_cut
    src[later] = torch.randint(0, N, (int(later.sum()),), generator=g)
    dst[later] = torch.randint(0, N, (int(later.sum()),), generator=g)
    s2 = EventStream(src, dst, s.t, msg=s.msg, num_nodes=N)

    def scores(stream):
        model = _model(name, gamma=0.5).eval()
        model.set_graph(TemporalNeighborIndex(stream), stream.msg)
        out = []
        with torch.no_grad():
            for b in stream.batches(50):
                pos, _ = model(b.src, b.dst, b.t, b.dst.flip(0))
                out.append(pos)
                model.observe(b.src, b.dst, b.t, b.msg)
        return torch.cat(out)

    a, b = scores(s), scores(s2)
    first = int(later.nonzero()[0])
    torch.testing.assert_close(a[:first], b[:first], rtol=1e-5, atol=1e-6)
    assert (a[first:] - b[first:]).abs().max() > 1e-3


def test_ablation_switches_and_bad_config():
    comp = torch.randn(3, 4, requires_grad=True)
    prev = torch.randn(3, 4)
    upd = torch.ones(3, dtype=torch.bool)
    v = PRES(3, 4, coherence=False)  # PRES-V
    assert float(v.loss(prev, comp, upd)) == 0.0
    s_ = PRES(3, 4, prediction=False)  # PRES-S
    v.transition.update(torch.arange(3), torch.ones(3, 4))
    s_.transition.update(torch.arange(3), torch.ones(3, 4))
    assert torch.equal(s_(torch.arange(3), prev, comp, upd), comp)
    assert not torch.equal(v(torch.arange(3), prev, comp, upd), comp)
    assert float(s_.loss(prev, comp, upd)) > 0
    fixed = PRES(3, 4, gamma=0.25, learn_gamma=False)
    assert math.isclose(float(fixed.gamma), 0.25, rel_tol=1e-6)
    assert not any(True for _ in fixed.parameters())
    with pytest.raises(ConfigError):
        PRES(3, 4, gamma=1.0)
    with pytest.raises(ConfigError):
        enable_pres(torch.nn.Linear(2, 2))


def test_pres_run_resumes_bit_for_bit_and_cli_flag(tmp_path):
    import argparse

    from dyngraph.datasets import get_events
    from dyngraph.train import StreamingConfig, load_checkpoint, train_link_prediction
    from dyngraph.train.cli import register

    split = get_events("uci")[:1500].split(seed=0)
    kw = dict(model="jodie", memory_dim=8, time_dim=8, embedding_dim=8, num_neighbors=3,
              batch_size=300, mrr_negatives=0, progress=False, patience=5, pres=True,
              pres_gamma=0.3)
    quiet = lambda *a, **k: None  # noqa: E731
    _, r_full = train_link_prediction(split, StreamingConfig(epochs=2, **kw),
                                      checkpoint_dir=str(tmp_path / "a"), log=quiet)
    train_link_prediction(split, StreamingConfig(epochs=1, **kw),
                          checkpoint_dir=str(tmp_path / "b"), log=quiet)
    _, r_res = train_link_prediction(split, StreamingConfig(epochs=2, **kw),
                                     checkpoint_dir=str(tmp_path / "b"), resume=True, log=quiet)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert any(k.startswith("pres.") for k in a["model"])
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert r_full.test["ap"] == r_res.test["ap"]
    assert all("pres_gamma" in h for h in r_full.history)

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["linkpred", "--pres", "--pres-mode", "coherence", "--nproc", "2"])
    assert args.pres and args.pres_mode == "coherence" and args.nproc == 2
