import hashlib
import json
import pickle
import random

import pytest
import torch

from dyngraph.errors import ConfigError
from dyngraph.nas import AGNNSpace, Architecture, make_space, register_activation
from dyngraph.nas.space import ACTIVATIONS


def _gat_like(space):
    return space.make({
        "attention_0": "gat", "aggregation_0": "sum", "activation_0": "elu", "heads_0": 8,
        "hidden_0": 8, "attention_1": "gat", "aggregation_1": "sum", "activation_1": "linear",
        "heads_1": 1,
    })


def test_architecture_roundtrip_and_hash():
    space = AGNNSpace()
    rng = random.Random(0)
    for _ in range(20):
        a = space.sample(rng)
        b = Architecture.from_json(a.to_json())
        assert a == b and hash(a) == hash(b) and a.key == b.key
        assert pickle.loads(pickle.dumps(a)) == a
        # key is a digest of the canonical JSON, independent of PYTHONHASHSEED
        expect = hashlib.sha1(json.dumps(a.to_dict(), separators=(",", ":")).encode())
        assert a.key == expect.hexdigest()[:16]
        assert str(a).startswith("agnn[")
    a = _gat_like(space)
    shuffled = dict(reversed(list(a.values().items())))
    assert space.make(shuffled) == a
    changed = a.replace({"heads_0": 4})
    assert changed != a and changed.key != a.key and len({a, changed, a}) == 2


def test_architecture_validation():
    space = AGNNSpace()
    a = _gat_like(space)
    with pytest.raises(ConfigError):
        space.make({**a.values(), "heads_0": 3})
    with pytest.raises(ConfigError):
        space.make({k: v for k, v in a.values().items() if k != "heads_0"})
    with pytest.raises(ConfigError):
        Architecture("x", (("a", [1, 2]),))
    with pytest.raises(ConfigError):
        a.replace({"nope": 1})
    with pytest.raises(ConfigError):
        Architecture.from_dict({"choices": {}})


def test_variable_depth_canonical():
    space = AGNNSpace(num_layers=(1, 2, 3))
    assert space.action_classes[0] == "layers"
    rng = random.Random(1)
    for _ in range(30):
        a = space.sample(rng)
        d = space.depth(a)
        for layer in range(d, 3):
            assert a[f"attention_{layer}"] == space.decision(f"attention_{layer}").choices[0]
        assert len(space.layers(a)) == d
    # decisions of an inactive layer do not make a different architecture
    a = space.sample(random.Random(2)).replace({"num_layers": 1})
    a = space.canonical(a)
    b = space.canonical(a.replace({"attention_2": "cos", "hidden_1": 64}))
    assert a == b


def test_build_real_model_shapes_and_params():
    space = AGNNSpace()
    a = _gat_like(space)
    model = space.build(a, 20, 3)
    x = torch.randn(6, 20)
    ei = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    assert model(x, ei).shape == (6, 3)
    convs = list(model.convs)
    assert convs[0].weight.shape == (20, 64) and convs[1].weight.shape == (64, 3)
    sigs = space.layer_signatures(a, 20, 3)
    assert sigs[0] == (20, 8, 8, True, "gat", "elu")
    assert sigs[1] == (64, 1, 3, False, "gat", "linear")


def test_operator_registry_extends_space():
    @register_activation("test-square")
    def square(x):
        return x * x

    try:
        space = AGNNSpace(activation=("relu", "test-square"), attention=("gat", "cos"))
        rng = random.Random(0)
        archs = {space.sample(rng) for _ in range(50)}
        assert any(a["activation_0"] == "test-square" for a in archs)
        model = space.build(next(iter(archs)), 4, 2)
        assert model(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape == (3, 2)
    finally:
        del ACTIVATIONS["test-square"]
    with pytest.raises(ConfigError):
        AGNNSpace(activation=("relu", "nope"))


def test_mutate_changes_one_decision():
    space = make_space("agnn-light")
    rng = random.Random(3)
    a = space.sample(rng)
    for cls in space.action_classes:
        b = space.mutate(a, rng, cls)
        diff = [k for k in a if a[k] != b[k]]
        assert len(diff) == 1 and space.decision(diff[0]).action_class == cls
