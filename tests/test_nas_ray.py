import pytest
import torch
from torch_geometric.data import Data

pytest.importorskip("ray")

from dyngraph.nas import (  # noqa: E402
    AGNNSpace,
    InProcessRunner,
    NodeClassificationObjective,
    RayRunner,
    TrainConfig,
    search,
)


def toy_data(n=40, f=12, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.rand(n, f, generator=g)
    x[torch.arange(n), y] += 1.0
    ei = torch.randint(0, n, (2, 200), generator=g)
    perm = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    for m, idx in zip(masks, (perm[:15], perm[15:28], perm[28:])):
        m[idx] = True
    return Data(x=x, edge_index=ei, y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


def test_ray_runner_matches_in_process(tmp_path):
    space = AGNNSpace(heads=(1, 2), hidden=(4, 8))
    obj = NodeClassificationObjective(toy_data(), TrainConfig(epochs=5, shared_epochs=2,
                                                              threads=1))
    runner = RayRunner(num_cpus=2)
    try:
        remote = search(space, obj, "rcc", trials=6, batch_size=2, runner=runner, seed=0,
                        progress=False, log=tmp_path / "ray.jsonl",
                        controller_kwargs={"num_initial": 2})
    finally:
        runner.close()
    local = search(space, obj, "rcc", trials=6, batch_size=2, runner=InProcessRunner(),
                   seed=0, progress=False, controller_kwargs={"num_initial": 2})
    assert [r["key"] for r in remote.trials] == [r["key"] for r in local.trials]
    for a, b in zip(remote.trials, local.trials):
        assert a["reward"] == pytest.approx(b["reward"], abs=1e-6)
        assert a["shared_layers"] == b["shared_layers"]
