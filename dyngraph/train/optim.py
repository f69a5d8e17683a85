"""`LeanAdam`: fused Adam whose step skips torch's per-call bookkeeping.

A TGN training step on CPU is a few milliseconds, and ``torch.optim.Adam(fused=True).step()``
spends about as long re-collecting its parameter, gradient and state lists (and grouping them
by device and dtype) as the fused kernel spends updating ~200k parameters. `LeanAdam` keeps
those lists from its first step and calls the same kernel directly afterwards: the update is
bit-identical to ``torch.optim.Adam(fused=True)`` (tested), state dicts are interchangeable.
"""

from __future__ import annotations

import torch

__all__ = ["LeanAdam"]


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, lr, fused=True, ...)`` with a cached fast path.

    The fast path covers one parameter group without amsgrad, maximize, capturable,
    differentiable or decoupled weight decay and with a float learning rate; anything else, a
    closure, or a change in which parameters have gradients goes through
    :meth:`torch.optim.Adam.step` (which also creates the state on the first step).
    """

    def __init__(self, params, lr: float = 1e-3, **kwargs) -> None:
        self._lean = None
        super().__init__(params, lr=lr, fused=True, **kwargs)

    def add_param_group(self, param_group: dict) -> None:
        """:meth:`torch.optim.Optimizer.add_param_group` (the cached lists are dropped)."""
        self._lean = None
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        """:meth:`torch.optim.Optimizer.load_state_dict`; the state tensors are replaced, so
        the cached lists are dropped."""
        self._lean = None
        super().load_state_dict(state_dict)

    def _simple(self) -> dict | None:
        if len(self.param_groups) != 1:
            return None
        g = self.param_groups[0]
        if (g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"]
                or g.get("decoupled_weight_decay", False) or torch.is_tensor(g["lr"])):
            return None
        return g

    @torch.no_grad()
    def step(self, closure=None):
        """One Adam update, as :meth:`torch.optim.Adam.step` (same arguments and result)."""
        g = self._simple() if closure is None else None
        if g is None:
            self._lean = None
            return super().step(closure)
        params = g["params"]
        grads = [p.grad for p in params]
        present = tuple(gr is not None for gr in grads)
        lean = self._lean
        if lean is None or lean[0] != present:
            super().step()  # creates missing state; then remember the lists
            live = [p for p, has in zip(params, present) if has]
            st = [self.state[p] for p in live]
            self._lean = (present, live, [s["exp_avg"] for s in st],
                          [s["exp_avg_sq"] for s in st], [s["step"] for s in st])
            return None
        _, live, exp_avg, exp_avg_sq, steps = lean
        if len(live) != len(grads):
            grads = [gr for gr in grads if gr is not None]
        beta1, beta2 = g["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(live, grads, exp_avg, exp_avg_sq, [], steps, amsgrad=False,
                           lr=g["lr"], beta1=beta1, beta2=beta2,
                           weight_decay=g["weight_decay"], eps=g["eps"], maximize=False,
                           grad_scale=None, found_inf=None)
        return None
