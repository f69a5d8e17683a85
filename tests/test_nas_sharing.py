import random

import torch
from torch_geometric.data import Data

from dyngraph.nas import (
    AGNNSpace,
    NodeClassificationObjective,
    ParameterBank,
    TrainConfig,
    homogeneous_layers,
    search,
)


def _space():
    return AGNNSpace(heads=(1, 2), hidden=(4, 8), num_layers=(2,))


def _base(space):
    return space.make({
        "attention_0": "gat", "aggregation_0": "sum", "activation_0": "elu", "heads_0": 2,
        "hidden_0": 8, "attention_1": "cos", "aggregation_1": "mean", "activation_1": "linear",
        "heads_1": 1,
    })


def _toy_data(n=40, f=12, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.3)
    x[torch.arange(n), y] += 1.0  # class signal
    src = torch.randint(0, n, (120,), generator=g)
    dst = torch.randint(0, n, (120,), generator=g)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    idx = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][idx[:15]] = True
    masks[1][idx[15:28]] = True
    masks[2][idx[28:]] = True
    return Data(x=x, edge_index=ei, y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


def test_homogeneity_rules():
    space = _space()
    p = _base(space)
    # aggregation has no parameters: every layer stays homogeneous
    assert homogeneous_layers(space, p, p.replace({"aggregation_0": "max"}), 12, 3) == [0, 1]
    # activation type differs in layer 1 only
    assert homogeneous_layers(space, p, p.replace({"activation_1": "elu"}), 12, 3) == [0]
    # attention type differs in layer 0 only
    assert homogeneous_layers(space, p, p.replace({"attention_0": "gcn"}), 12, 3) == [1]
    # hidden size changes layer 0's output and layer 1's input shape
    assert homogeneous_layers(space, p, p.replace({"hidden_0": 4}), 12, 3) == []
    # heads of layer 0 change both shapes; heads of layer 1 only its own
    assert homogeneous_layers(space, p, p.replace({"heads_0": 1}), 12, 3) == []
    assert homogeneous_layers(space, p, p.replace({"heads_1": 2}), 12, 3) == [0]


def test_bank_shares_only_homogeneous_layers_of_the_parent():
    space = _space()
    parent = _base(space)
    other = parent.replace({"activation_1": "elu"})
    child = other.replace({"aggregation_0": "max"})  # homogeneous with `other`, not `parent`
    torch.manual_seed(0)
    m_parent = space.build(parent, 12, 3)
    m_other = space.build(other, 12, 3)
    bank = ParameterBank(capacity=4)
    bank.store(parent, 0.5, m_parent.state_dict())
    bank.store(other, 0.9, m_other.state_dict())
    state, layers = bank.inherit(space, parent, child, 12, 3)
    # only layer 0 is homogeneous with the *parent*; the better `other` is never used
    assert layers == [0]
    assert state and all(k.startswith("convs.0.") for k in state)
    for k, v in state.items():
        assert torch.equal(v, m_parent.state_dict()[k])
    # the child model accepts the inherited tensors
    m_child = space.build(child, 12, 3)
    m_child.load_state_dict(state, strict=False)
    assert torch.equal(m_child.convs[0].weight, m_parent.convs[0].weight)
    assert not torch.equal(m_child.convs[1].weight, m_parent.convs[1].weight)
    # no parent / parent not stored / sharing off -> nothing
    assert bank.inherit(space, None, child, 12, 3) == (None, [])
    assert bank.inherit(space, child, parent, 12, 3) == (None, [])
    off = ParameterBank(enabled=False)
    off.store(parent, 0.5, m_parent.state_dict())
    assert len(off) == 0 and off.inherit(space, parent, child, 12, 3) == (None, [])


def test_bank_capacity_keeps_best():
    space = _space()
    rng = random.Random(0)
    bank = ParameterBank(capacity=2)
    archs = [space.sample(rng) for _ in range(4)]
    for a, r in zip(archs, [0.1, 0.7, 0.3, 0.5]):
        bank.store(a, r, {"w": torch.zeros(1)})
    assert archs[1] in bank and archs[3] in bank and len(bank) == 2


def test_objective_uses_inherited_weights_and_fewer_epochs():
    space = _space()
    obj = NodeClassificationObjective(_toy_data(), TrainConfig(epochs=12, shared_epochs=3,
                                                               patience=100, threads=1))
    parent = _base(space)
    res = obj(space, parent, seed=0, keep_state=True)
    assert res.state is not None and res.metrics["epochs"] == 12
    child = parent.replace({"activation_1": "tanh"})
    state = {k: v for k, v in res.state.items() if k.startswith("convs.0.")}
    res2 = obj(space, child, init_state=state, seed=1)
    assert res2.metrics["inherited_tensors"] == len(state) and res2.metrics["epochs"] == 3


def test_search_with_sharing_follows_the_rules():
    space = _space()
    obj = NodeClassificationObjective(_toy_data(), TrainConfig(epochs=6, shared_epochs=2,
                                                               patience=100, threads=1))
    res = search(space, obj, "rcc", trials=14, seed=0, progress=False,
                 controller_kwargs={"num_initial": 3})
    shared = [r for r in res.trials if r["shared_layers"]]
    assert shared, "RCC children should inherit from homogeneous parents"
    from dyngraph.nas import Architecture
    for r in res.trials:
        if r["shared_layers"]:
            parent = Architecture.from_dict(r["parent"])
            child = Architecture.from_dict(r["arch"])
            assert r["shared_layers"] == homogeneous_layers(space, parent, child, 12, 3)
            if "shared_reward" in r["metrics"]:
                # verified: a promising shared child was retrained from scratch
                assert r["metrics"]["inherited_tensors"] == 0 and r["metrics"]["epochs"] == 6
            else:
                assert r["metrics"]["epochs"] <= 2
        else:
            assert r["metrics"]["inherited_tensors"] == 0
    res_off = search(space, obj, "rcc", trials=8, seed=0, progress=False, sharing=False)
    assert all(not r["shared_layers"] for r in res_off.trials)


class _Inflated:
    """Reward = fraction of decisions matching a target; +0.5 when trained from inherited
    weights — an exaggerated version of the bias sharing puts on a child's reward."""

    supports_sharing = True
    in_channels, num_classes = 12, 3

    def __init__(self, space):
        self.target = space.sample(random.Random(5))

    def base(self, arch):
        return sum(arch[k] == self.target[k] for k in arch) / len(list(arch))

    def __call__(self, space, arch, init_state=None, seed=0, keep_state=False):
        from dyngraph.nas import TrialResult
        r = self.base(arch) + (0.5 if init_state else 0.0)
        state = {f"convs.{i}.w": torch.zeros(1) for i in range(2)} if keep_state else None
        return TrialResult(r, {"seconds": 0.0, "inherited_tensors": len(init_state or {})},
                           state)


def test_verify_shared_ranks_promising_children_from_scratch():
    space = _space()
    obj = _Inflated(space)
    kw = {"num_initial": 3, "explore": (0.0, 0.0, 1)}
    res = search(space, obj, "rcc", trials=30, seed=0, progress=False, verify_shared=3,
                 controller_kwargs=kw)
    verified = [r for r in res.trials if "shared_reward" in r["metrics"]]
    assert verified
    from dyngraph.nas import Architecture
    for r in verified:
        arch = Architecture.from_dict(r["arch"])
        assert r["reward"] == obj.base(arch) and r["metrics"]["shared_reward"] == r["reward"] + 0.5
    # the winner's reward is a from-scratch one
    assert res.best_reward == obj.base(res.best) <= 1.0
    # without the check an inflated fine-tuned reward wins the search
    res0 = search(space, obj, "rcc", trials=30, seed=0, progress=False, verify_shared=0,
                  controller_kwargs=kw)
    assert res0.best_reward > 1.0
    assert not any("shared_reward" in r["metrics"] for r in res0.trials)
