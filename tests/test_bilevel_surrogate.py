"""Surrogate: the edge-weighted GIN against a dense reference, overfitting a handful of solved
scenarios, checkpoint resume, persistence, and the trained-on-another-network error."""

import numpy as np
import pytest
import torch

from dyngraph.bilevel import (
    EdgeWeightedGINConv,
    ScenarioSet,
    Surrogate,
    SurrogateConfig,
    TrainConfig,
    evaluate_surrogate,
    fit_surrogate,
    generate_scenarios,
    train_surrogate,
)
from dyngraph.errors import ConfigError, DataError
from dyngraph.traffic import ScenarioSampler, sioux_falls


@pytest.fixture(scope="module")
def net():
    return sioux_falls()


@pytest.fixture(scope="module")
def scenarios(net, tmp_path_factory):
    d = tmp_path_factory.mktemp("scen")
    return generate_scenarios(net, 12, d, sampler=ScenarioSampler(seed=5), chunk_size=12,
                              progress=False), d


def test_conv_matches_dense_reference():
    torch.manual_seed(0)
    n, c = 6, 4
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]])
    x = torch.randn(n, c)
    w, wr = torch.rand(ei.shape[1], c), torch.rand(ei.shape[1])
    a = torch.zeros(n, n, c)  # a[i, j] = weight of message j -> i
    ar = torch.zeros(n, n)
    for k, (s, t) in enumerate(ei.T.tolist()):
        a[t, s] += w[k]
        ar[s, t] += wr[k]
    uni = EdgeWeightedGINConv(c, 5, eps=0.3)
    ref = uni.mlp((1 + 0.3) * x + (a * x[None]).sum(1))
    torch.testing.assert_close(uni(x, ei, w), ref)
    bi = EdgeWeightedGINConv(c, 5, bidirectional=True)
    ref = bi.mlp(torch.cat([x, (a * x[None]).sum(1), ar @ x], -1))
    ref_w = torch.ones(ei.shape[1], c)
    torch.testing.assert_close(bi(x, ei, ref_w, wr), bi.mlp(torch.cat(
        [x, torch.zeros(n, c).index_add_(0, ei[1], x[ei[0]]), ar @ x], -1)))
    assert "bidirectional=True" in repr(bi)
    del ref


def test_surrogate_overfits_a_handful_of_scenarios(net, scenarios):
    data, _ = scenarios
    few = data.subset(np.arange(8))
    s = Surrogate(net, SurrogateConfig(hidden=32, layers=2, link_embedding=16, seed=0))
    before = evaluate_surrogate(s, few)
    hist = train_surrogate(s, few, None, TrainConfig(epochs=200, batch_size=8, lr=1e-2,
                                                     ttt_weight=0.0), progress=False)
    after = evaluate_surrogate(s, few)
    # per-link means alone explain ~70% of the flow variance; the GNN must learn how each
    # scenario's demand and capacities move flows to get far beyond that
    mean_only = 1 - ((few.flows - few.flows.mean(0)) ** 2).sum() / (
        (few.flows - few.flows.mean()) ** 2).sum()
    assert after.flow_r2 > 0.88 and after.flow_r2 > mean_only + 0.15
    assert before.flow_r2 < 0.5
    assert hist.train_loss[-1] < 0.4 * hist.train_loss[0]
    assert after.ttt_accuracy > max(0.8, before.ttt_accuracy)
    # predictions are non-negative flows (ReLU) and the TTT helper agrees with BPR
    f = s.predict_flows(few.capacity, few.demand)
    assert (f >= 0).all()
    cap = few.capacity
    t = net.free_flow_time * (1 + net.b * (f / cap) ** net.power)
    np.testing.assert_allclose(s.predict_ttt(cap, few.demand), (f * t).sum(1), rtol=1e-6)


def test_checkpoint_resume_equals_uninterrupted(net, scenarios, tmp_path):
    data, _ = scenarios
    cfg = TrainConfig(epochs=4, batch_size=4, seed=1)
    a = Surrogate(net, SurrogateConfig(hidden=16, layers=2))
    train_surrogate(a, data, None, cfg, progress=False)
    b = Surrogate(net, SurrogateConfig(hidden=16, layers=2))
    ck = tmp_path / "ck.pt"
    train_surrogate(b, data, None, cfg, checkpoint=ck, progress=False, max_seconds=0.0)
    c = Surrogate(net, SurrogateConfig(hidden=16, layers=2, seed=9))  # other init: resumed
    hist = train_surrogate(c, data, None, cfg, checkpoint=ck, progress=False)
    assert hist.epoch == [1, 2, 3, 4]
    np.testing.assert_allclose(c.predict_flows(data.capacity, data.demand),
                               a.predict_flows(data.capacity, data.demand), rtol=1e-5)
    with pytest.raises(ConfigError, match="other training settings"):
        train_surrogate(c, data, None, TrainConfig(epochs=5), checkpoint=ck, progress=False)


def test_save_load_and_other_network_error(net, scenarios, tmp_path):
    data, d = scenarios
    s = Surrogate(net, SurrogateConfig(hidden=16, layers=2))
    p = s.save(tmp_path / "s.pt")
    s2 = Surrogate.load(p, net)
    np.testing.assert_array_equal(s2.predict_flows(data.capacity[:2], data.demand[:2]),
                                  s.predict_flows(data.capacity[:2], data.demand[:2]))
    other = net.with_(free_flow_time=net.free_flow_time * 1.1)
    with pytest.raises(ConfigError, match="trained on SiouxFalls"):
        Surrogate.load(p, other)
    with pytest.raises(ConfigError, match="train a surrogate on this network"):
        s.check_network(other)
    # capacities and demand are inputs, not identity: a changed base demand is fine
    s.check_network(net.with_(demand=net.demand * 1.1))
    with pytest.raises(DataError, match="another network"):
        ScenarioSet.from_dir(d, net.with_(capacity=net.capacity * 2))
    with pytest.raises(DataError, match="no surrogate checkpoint"):
        Surrogate.load(tmp_path / "missing.pt", net)


def test_scenario_split_is_disjoint_and_reproducible(scenarios):
    data, _ = scenarios
    tr, va, te = data.split(0.25, 0.25, seed=3)
    assert len(tr) + len(va) + len(te) == len(data)
    keys = [set(map(bytes, s.capacity)) for s in (tr, va, te)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    tr2, _, _ = data.split(0.25, 0.25, seed=3)
    np.testing.assert_array_equal(tr.flows, tr2.flows)


@pytest.mark.parametrize("channel_weights,bidirectional,context",
                         [(False, True, False), (True, True, True), (False, False, False)])
def test_dense_fast_path_equals_pyg_message_passing(net, channel_weights, bidirectional,
                                                    context):
    # the batched dense path must compute exactly what PyG's MessagePassing computes on the
    # disjoint union of the scenarios' graphs
    cfg = SurrogateConfig(hidden=8, layers=3, channel_weights=channel_weights,
                          bidirectional=bidirectional, global_context=context,
                          link_embedding=4, seed=2)
    s = Surrogate(net, cfg)
    rng = np.random.default_rng(0)
    cap = net.capacity * rng.uniform(0.5, 1.5, (5, net.num_links))
    dem = net.demand * rng.uniform(0.8, 1.2, (5, *net.demand.shape))
    with torch.no_grad():
        a = s.forward_flows(cap, dem, dense=True)
        b = s.forward_flows(cap, dem, dense=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
    x, ei, ea = s.features(cap, dem)
    assert x.shape[0] == 5 * net.num_nodes and ei.shape[1] == ea.shape[0] == 5 * net.num_links


def test_route_split_reproduces_all_or_nothing(net):
    from dyngraph.bilevel import route_split
    from dyngraph.traffic import all_or_nothing

    rng = np.random.default_rng(3)
    times = net.free_flow_time * rng.uniform(1.0, 3.0, (3, net.num_links))
    p = route_split(net, times)
    z = net.num_zones
    dem = net.demand * rng.uniform(0.8, 1.2, net.demand.shape)
    np.fill_diagonal(dem, 0.0)
    # demand projected through the averaged incidence = average of the AON loadings
    ref = np.mean([all_or_nothing(net, t, dem)[0] for t in times], axis=0)
    np.testing.assert_allclose(dem.reshape(-1) @ p, ref, rtol=1e-9, atol=1e-6)
    od = p.reshape(z, z, -1)
    # every OD pair with demand leaves its origin exactly once: shares out of the origin's
    # links sum to one
    out_of = np.zeros((z, net.num_links))
    out_of[net.init[net.init < z], np.flatnonzero(net.init < z)] = 1
    i, j = 0, 5
    assert abs((od[i, j] * out_of[i]).sum() - 1.0) < 1e-9
    with pytest.raises(DataError, match="link_time"):
        route_split(net, -times)


def test_paper_preset_and_route_features(net, scenarios):
    data, _ = scenarios
    paper = SurrogateConfig.paper()
    assert not (paper.bidirectional or paper.channel_weights or paper.demand_columns
                or paper.route_features)
    s = Surrogate(net, paper)
    assert s.edge_in == 3 and "route" not in s.stats
    s.fit_stats(data)
    np.testing.assert_allclose(s.stats["flow_mu"].numpy(), data.flows.mean(0), rtol=1e-5)
    r = Surrogate(net, SurrogateConfig(hidden=8, layers=1))
    r.fit_stats(data)
    # the target is the correction of the route-split flows: its mean over the training set
    # is what the base flows miss on average
    base = (data.demand.reshape(len(data), -1) @ r.stats["route"].numpy().astype(np.float64))
    np.testing.assert_allclose(r.stats["flow_mu"].numpy(), (data.flows - base).mean(0),
                               rtol=1e-3, atol=1e-2 * data.flows.std())


def test_global_linear_starts_at_the_ridge_least_squares_fit(net, scenarios):
    data, _ = scenarios
    s = Surrogate(net, SurrogateConfig(hidden=8, layers=1))
    s.fit_stats(data)
    cap = torch.as_tensor(data.capacity, dtype=torch.float32)
    base = s._route_flows(torch.as_tensor(data.demand, dtype=torch.float32))
    a = torch.cat([s._global_inputs(cap, base), torch.ones(len(data), 1)], 1).double()
    y = ((torch.as_tensor(data.flows, dtype=torch.float32) - base - s.stats["flow_mu"])
         / s.stats["flow_sd"]).double()
    lin = s.model.global_linear
    w = torch.cat([lin.weight.T, lin.bias[None]], 0).double().detach()
    # ridge normal equations: A^T (y - A w) = lambda w
    lam = 1e-3 * len(data)
    torch.testing.assert_close(a.T @ (y - a @ w), lam * w, rtol=0, atol=2e-3 * lam)
    # with the GNN's readouts silenced the surrogate predicts exactly the linear fit
    with torch.no_grad():
        for r in s.model.readout:
            r.out.weight.zero_()
            r.out.bias.zero_()
    pred = s.predict_flows(data.capacity, data.demand)
    ref = torch.relu(base + s.stats["flow_mu"] + s.stats["flow_sd"] * (a @ w).float())
    np.testing.assert_allclose(pred, ref.numpy(), rtol=1e-4, atol=1e-2)
    with pytest.raises(ConfigError, match="route_features"):
        Surrogate(net, SurrogateConfig(route_features=False, global_linear=True))


def test_default_global_mlp_model(net, scenarios, tmp_path):
    # the default is the global model alone (no message passing): route-split flows + ridge
    # linear sensitivity + an MLP on standardised inputs whose output layer starts at zero
    data, _ = scenarios
    s = Surrogate(net, SurrogateConfig())
    assert s.config.layers == 0 and s.config.global_hidden > 0
    s.fit_stats(data)
    cap = torch.as_tensor(data.capacity, dtype=torch.float32)
    base = s._route_flows(torch.as_tensor(data.demand, dtype=torch.float32))
    g = s._global_inputs(cap, base)
    torch.testing.assert_close(s.stats["global_mu"], g.mean(0))
    torch.testing.assert_close(s.stats["global_sd"], g.std(0).clamp_min(1e-6))
    lin = s.model.global_linear
    with torch.no_grad():
        ridge = torch.relu(base + s.stats["flow_mu"] + s.stats["flow_sd"] * lin(g))
    np.testing.assert_allclose(s.predict_flows(data.capacity, data.demand), ridge.numpy(),
                               rtol=1e-5, atol=1e-2)
    # with a non-zero MLP: the flows are the reference composition, written out by hand
    torch.manual_seed(0)
    mlp = s.model.global_mlp
    with torch.no_grad():
        mlp[-1].weight.normal_(0.0, 0.05)
        z = (g - g.mean(0)) / g.std(0).clamp_min(1e-6)
        for k in range(0, len(mlp) - 1, 2):
            z = torch.nn.functional.gelu(z @ mlp[k].weight.T + mlp[k].bias)
        z = z @ mlp[-1].weight.T + mlp[-1].bias
        ref = torch.relu(base + s.stats["flow_mu"] + s.stats["flow_sd"] * (lin(g) + z))
    pred = s.predict_flows(data.capacity, data.demand)
    np.testing.assert_allclose(pred, ref.numpy(), rtol=1e-4, atol=1e-2)
    assert np.abs(pred - ridge.numpy()).max() > 1.0  # the MLP term is really used
    p = s.save(tmp_path / "g.pt")
    np.testing.assert_array_equal(Surrogate.load(p, net).predict_flows(data.capacity,
                                                                       data.demand), pred)
    with pytest.raises(ConfigError, match="layers=0"):
        Surrogate(net, SurrogateConfig(global_linear=False))
    with pytest.raises(ConfigError, match="global_layers"):
        Surrogate(net, SurrogateConfig(global_layers=0))


def test_checkpoint_without_global_mlp_fields_still_loads(net, scenarios, tmp_path):
    # checkpoints written before global_hidden / global_layers existed load as linear-only
    data, _ = scenarios
    s = Surrogate(net, SurrogateConfig(hidden=8, layers=1, global_hidden=0))
    s.fit_stats(data)
    st = s.state()
    del st["config"]["global_hidden"], st["config"]["global_layers"]
    torch.save(st, tmp_path / "old.pt")
    old = Surrogate.load(tmp_path / "old.pt", net)
    assert old.config.global_hidden == 0 and not hasattr(old.model, "global_mlp")
    np.testing.assert_array_equal(old.predict_flows(data.capacity, data.demand),
                                  s.predict_flows(data.capacity, data.demand))


def test_fit_surrogate_pipeline_resumes_from_its_cache(net, tmp_path):
    cfg = SurrogateConfig(global_hidden=16, seed=1)
    fit = fit_surrogate(net, 20, tmp_path, cfg, TrainConfig(epochs=2, batch_size=8),
                        test_fraction=0.2, val_fraction=0.2, progress=False)
    assert fit.path == tmp_path / "surrogate.pt" and fit.path.is_file()
    assert (len(fit.train), len(fit.val), len(fit.test)) == (12, 4, 4)
    assert fit.metrics.n == 4 and len(fit.history.epoch) == 2
    # held-out metrics are those of the saved model on the test split
    again = evaluate_surrogate(Surrogate.load(fit.path, net), fit.test)
    assert again.flow_r2 == pytest.approx(fit.metrics.flow_r2, abs=1e-6)
    # a second call finds the solved scenarios and the finished training: nothing is redone
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "scenarios").iterdir()}
    ckpt = tmp_path / "surrogate_checkpoint.pt"
    ckpt_stamp = ckpt.stat().st_mtime_ns
    fit2 = fit_surrogate(net, 20, tmp_path, cfg, TrainConfig(epochs=2, batch_size=8),
                         test_fraction=0.2, val_fraction=0.2, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "scenarios").iterdir()} == stamp
    assert ckpt.stat().st_mtime_ns == ckpt_stamp  # no epoch was trained again
    np.testing.assert_array_equal(fit2.test.flows, fit.test.flows)
    for a, b in zip(fit.surrogate.model.parameters(), fit2.surrogate.model.parameters(),
                    strict=True):
        torch.testing.assert_close(a, b)
