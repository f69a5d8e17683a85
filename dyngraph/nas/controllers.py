"""Search controllers with an ask/tell interface.

``ask()`` returns a :class:`Proposal`; after evaluation ``tell(proposal, reward)``. Controllers
are deterministic given their seed and the sequence of rewards, which is what makes a search
resumable: replaying the logged rewards brings a fresh controller to the same state.
"""

from __future__ import annotations

import abc
import math
import random
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

from dyngraph.errors import ConfigError
from dyngraph.nas._threads import torch_threads
from dyngraph.nas.architecture import Architecture
from dyngraph.nas.space import SearchSpace

__all__ = [
    "Proposal",
    "Controller",
    "RandomSearch",
    "RegularizedEvolution",
    "ReinforcedConservativeController",
    "CONTROLLERS",
    "make_controller",
]


@dataclass
class Proposal:
    """An architecture to evaluate, with how it was obtained (for learning and sharing)."""

    arch: Architecture
    parent: Architecture | None = None
    action_class: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Controller(abc.ABC):
    """Base: bookkeeping of evaluated / pending architectures and the best so far."""

    name = "controller"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.history: list[tuple[Architecture, float]] = []
        self.seen: set[Hashable] = set()
        self.best: tuple[Architecture, float] | None = None

    def is_new(self, arch: Architecture) -> bool:
        return self.space.identity(arch) not in self.seen

    def _mark(self, arch: Architecture) -> None:
        self.seen.add(self.space.identity(arch))

    def _random_new(self) -> Architecture:
        arch = self.space.sample(self.rng)
        for _ in range(200):
            if self.is_new(arch):
                break
            arch = self.space.sample(self.rng)
        return arch

    @abc.abstractmethod
    def ask(self) -> Proposal:
        """Next architecture to evaluate (marked as seen immediately, so batches differ)."""

    def tell(self, proposal: Proposal, reward: float) -> None:
        if not math.isfinite(reward):
            raise ConfigError(f"reward must be finite, got {reward}")
        self._mark(proposal.arch)
        self.history.append((proposal.arch, float(reward)))
        if self.best is None or reward > self.best[1]:
            self.best = (proposal.arch, float(reward))
        self._learn(proposal, float(reward))

    def _learn(self, proposal: Proposal, reward: float) -> None:  # noqa: B027
        """Controller-specific update (default: none — e.g. random search learns nothing)."""


class RandomSearch(Controller):
    """Uniform sampling without repeats (the baseline every NAS method must beat)."""

    name = "random"

    def ask(self) -> Proposal:
        arch = self._random_new()
        self._mark(arch)
        return Proposal(arch)


class RegularizedEvolution(Controller):
    """Aging evolution (Real et al. 2019): tournament of ``sample_size`` from the ``population``
    most recent architectures, mutate one decision of the winner, discard the oldest."""

    name = "evolution"

    def __init__(
        self, space: SearchSpace, seed: int = 0, population: int = 20, sample_size: int = 5
    ) -> None:
        super().__init__(space, seed)
        if not 1 <= sample_size <= population:
            raise ConfigError("need 1 <= sample_size <= population")
        self.population_size = population
        self.sample_size = sample_size
        self.population: deque[tuple[Architecture, float]] = deque()

    def ask(self) -> Proposal:
        if len(self.population) < self.population_size:
            arch = self._random_new()
            self._mark(arch)
            return Proposal(arch)
        contenders = self.rng.sample(list(self.population), self.sample_size)
        parent = max(contenders, key=lambda t: t[1])[0]
        child = parent
        for _ in range(50):
            child = self.space.mutate(parent, self.rng)
            if self.is_new(child):
                break
        if not self.is_new(child):
            child = self._random_new()
        self._mark(child)
        return Proposal(child, parent=parent)

    def _learn(self, proposal: Proposal, reward: float) -> None:
        self.population.append((proposal.arch, reward))
        if len(self.population) > self.population_size:
            self.population.popleft()


class _ClassPolicy(torch.nn.Module):
    """RNN policy of one action class: reads the whole decision sequence (teacher-forcing the
    decisions of other classes from the parent) and samples only its own class's decisions."""

    def __init__(self, space: SearchSpace, action_class: str, hidden: int) -> None:
        super().__init__()
        self.sizes = [len(d.choices) for d in space.decisions]
        self.mine = [d.action_class == action_class for d in space.decisions]
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.embed = torch.nn.Embedding(self.offsets[-1] + 1, hidden)  # last row: start token
        self.cell = torch.nn.LSTMCell(hidden, hidden)
        self.heads = torch.nn.ModuleDict(
            {str(t): torch.nn.Linear(hidden, s) for t, s in enumerate(self.sizes) if self.mine[t]}
        )
        self.hidden = hidden

    def forward(
        self,
        parent: list[int],
        child: list[int] | None,
        generator: torch.Generator | None,
        temperature: float,
        tanh_c: float,
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        h = torch.zeros(1, self.hidden)
        c = torch.zeros(1, self.hidden)
        inp = self.embed.weight[-1:].clone()
        out = list(parent)
        logp = torch.zeros(())
        ent = torch.zeros(())
        for t in range(len(self.sizes)):
            h, c = self.cell(inp, (h, c))
            if self.mine[t]:
                logits = self.heads[str(t)](h).squeeze(0) / temperature
                logits = tanh_c * torch.tanh(logits)
                lp = torch.log_softmax(logits, -1)
                if child is None:
                    a = int(torch.multinomial(lp.exp(), 1, generator=generator))
                else:
                    a = child[t]
                out[t] = a
                logp = logp + lp[a]
                ent = ent - (lp.exp() * lp).sum()
            inp = self.embed.weight[self.offsets[t] + out[t]].unsqueeze(0)
        return out, logp, ent


class ReinforcedConservativeController(Controller):
    """The reinforced conservative controller (RCC) of Auto-GNN.

    * **Conservative explorer**: every child is derived from the best architecture found so
      far (after ``num_initial`` random architectures seed the search).
    * **Guided architecture modifier**: one RNN policy per action class proposes new values
      for its class given the parent's other decisions; the class to change is chosen from
      the policies' decision entropies (``guide="entropy"``: sample with probability
      ``softmax(H_s)``; ``"max-entropy"``: the most uncertain class). Only that class changes —
      the "small step".
    * **Policy gradient**: REINFORCE on the chosen class's policy with reward = validation
      accuracy of the child, an exponential-moving-average baseline and an entropy bonus;
      advantages are divided by a running standard deviation so that the small accuracy
      differences between neighbouring architectures give usable gradients.

    Args:
        space: any :class:`SearchSpace`.
        seed: seeds sampling and policy initialisation.
        num_initial: random architectures evaluated before the explorer starts.
        hidden: LSTM width of each class policy.
        lr: Adam learning rate of the policies.
        baseline_decay: EMA decay of the reward baseline.
        entropy_weight: entropy bonus.
        guide: ``"entropy"`` or ``"max-entropy"``.
        temperature, tanh_c: logit temperature and tanh clipping (as in ENAS / GraphNAS).
        max_retries: resamples when a proposal was already evaluated.
    """

    name = "rcc"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        num_initial: int = 5,
        hidden: int = 64,
        lr: float = 3.5e-3,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        guide: str = "entropy",
        temperature: float = 5.0,
        tanh_c: float = 2.5,
        max_retries: int = 20,
    ) -> None:
        super().__init__(space, seed)
        if guide not in ("entropy", "max-entropy"):
            raise ConfigError(f"guide must be 'entropy' or 'max-entropy', got {guide!r}")
        if num_initial < 1:
            raise ConfigError("num_initial must be >= 1")
        self.num_initial = num_initial
        self.guide = guide
        self.temperature = temperature
        self.tanh_c = tanh_c
        self.max_retries = max_retries
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.policies = torch.nn.ModuleDict(
                {
                    c: _ClassPolicy(space, c, hidden)
                    for c in space.action_classes
                    if any(len(d.choices) > 1 for d in space.decisions_of(c))
                }
            )
        if not self.policies:
            raise ConfigError("search space has no decision with more than one choice")
        self.optim = torch.optim.Adam(self.policies.parameters(), lr=lr)
        self.baseline: float | None = None
        self.adv_var = 0.0
        self._issued = 0

    def _propose_from(self, parent: Architecture) -> Proposal:
        pidx = self.space.encode(parent)
        classes = list(self.policies)
        with torch.no_grad(), torch_threads(1):
            samples = [
                self.policies[c](pidx, None, self.gen, self.temperature, self.tanh_c)
                for c in classes
            ]
        ents = torch.stack([s[2] for s in samples])
        if self.guide == "max-entropy":
            k = int(ents.argmax())
        else:
            k = int(torch.multinomial(torch.softmax(ents, 0), 1, generator=self.gen))
        child = self.space.decode(samples[k][0])
        return Proposal(
            child,
            parent=parent,
            action_class=classes[k],
            info={"entropy": [round(float(e), 4) for e in ents], "child_idx": samples[k][0]},
        )

    def ask(self) -> Proposal:
        self._issued += 1
        if self.best is None or self._issued <= self.num_initial:
            arch = self._random_new()
            self._mark(arch)
            return Proposal(arch)
        parent = self.best[0]
        prop = None
        for _ in range(self.max_retries):
            prop = self._propose_from(parent)
            if self.is_new(prop.arch) and self.space.is_valid(prop.arch):
                break
            prop = None
        if prop is None:
            # the policies keep proposing visited children: fall back to a random one-class
            # step from the parent (still conservative), then to a random architecture
            arch = parent
            for _ in range(50):
                arch = self.space.mutate(parent, self.rng)
                if self.is_new(arch):
                    break
            prop = Proposal(arch, parent=parent) if self.is_new(arch) else Proposal(
                self._random_new()
            )
        self._mark(prop.arch)
        return prop

    def _learn(self, proposal: Proposal, reward: float) -> None:
        if proposal.action_class is None or proposal.parent is None:
            return
        if proposal.action_class not in self.policies:
            return
        if self.baseline is None:
            self.baseline = reward
        adv = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self.adv_var = self.baseline_decay * self.adv_var + (1 - self.baseline_decay) * adv * adv
        scaled = adv / (math.sqrt(self.adv_var) + 1e-3)
        pidx = self.space.encode(proposal.parent)
        cidx = proposal.info.get("child_idx") or self.space.encode(proposal.arch)
        policy = self.policies[proposal.action_class]
        with torch_threads(1):
            _, logp, ent = policy(pidx, list(cidx), None, self.temperature, self.tanh_c)
            loss = -(scaled * logp) - self.entropy_weight * ent
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()


CONTROLLERS: dict[str, type[Controller]] = {
    "rcc": ReinforcedConservativeController,
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
}


def make_controller(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Controller:
    if name not in CONTROLLERS:
        raise ConfigError(f"unknown controller {name!r}; use one of {sorted(CONTROLLERS)}")
    return CONTROLLERS[name](space, seed=seed, **kwargs)
