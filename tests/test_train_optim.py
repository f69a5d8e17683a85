"""LeanAdam against torch.optim.Adam(fused=True): the same update, bit for bit."""

import copy

import pytest
import torch

from dyngraph.train.optim import LeanAdam


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, 5, generator=g).requires_grad_(), torch.randn(5, generator=g)
            .requires_grad_(), torch.randn(3, 3, dtype=torch.float64, generator=g)
            .requires_grad_()]


def _grads(step, params, skip=None):
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(params):
        p.grad = None if i == skip else torch.randn(p.shape, dtype=p.dtype, generator=g)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_lean_adam_matches_fused_adam(weight_decay):
    a, b = _params(0), _params(0)
    ref = torch.optim.Adam(a, lr=1e-2, fused=True, weight_decay=weight_decay)
    lean = LeanAdam(b, lr=1e-2, weight_decay=weight_decay)
    for step in range(12):
        skip = 1 if step in (4, 5) else None  # a parameter without gradient for two steps
        if step == 8:  # a scheduler changing the learning rate
            for opt in (ref, lean):
                opt.param_groups[0]["lr"] = 3e-3
        _grads(step, a, skip)
        _grads(step, b, skip)
        ref.step()
        lean.step()
        for p, q in zip(a, b):
            assert torch.equal(p, q)
    sa, sb = ref.state_dict(), lean.state_dict()
    for k in sa["state"]:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa["state"][k][name], sb["state"][k][name])


def test_lean_adam_state_dict_round_trip_and_fallbacks():
    a, b = _params(1), _params(1)
    ref = torch.optim.Adam(a, lr=1e-2, fused=True)
    lean = LeanAdam(b, lr=1e-2)
    for step in range(3):
        _grads(step, a)
        _grads(step, b)
        ref.step()
        lean.step()
    # load a different state (as when resuming from a checkpoint): the cached lists must go
    c = _params(2)
    other = torch.optim.Adam(c, lr=1e-2, fused=True)
    for step in range(50, 53):
        _grads(step, c)
        other.step()
    for opt in (ref, lean):
        opt.load_state_dict(copy.deepcopy(other.state_dict()))
    for step in range(3, 6):
        _grads(step, a)
        _grads(step, b)
        ref.step()
        lean.step()
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # a closure takes torch's path and still returns the loss
    loss = lean.step(lambda: torch.tensor(1.5))
    assert float(loss) == 1.5
