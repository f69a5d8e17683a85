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
        """Whether no architecture with the same ``space.identity`` was proposed or evaluated."""
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
        """Report the reward of an evaluated proposal.

        Records it in ``history``, updates ``best`` and runs the controller's learning step.

        Args:
            proposal: a proposal returned by ``ask``.
            reward: its reward (higher is better).

        Raises:
            ConfigError: ``reward`` is NaN or infinite.
        """
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
        """A uniformly sampled architecture not proposed before (when one is found)."""
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
        """Next architecture: random until the population is full, then a mutated
        tournament winner (a random new architecture if mutation keeps hitting seen ones).
        """
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
    decisions of other classes from the parent) and samples only its own class's decisions —
    or, with ``positions``, only that subset of them (the rest are copied from the parent)."""

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

    def positions(self) -> list[int]:
        """Decision indices this policy may change (those with more than one choice)."""
        return [t for t, m in enumerate(self.mine) if m and self.sizes[t] > 1]

    def forward(
        self,
        parent: list[int],
        child: list[int] | None,
        generator: torch.Generator | None,
        temperature: float,
        tanh_c: float,
        positions: list[int] | None = None,
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Sample (``child=None``) or score ``child``: ``(decisions, log-prob, entropy)`` of the
        sampled positions."""
        active = set(self.positions() if positions is None else positions)
        h = torch.zeros(1, self.hidden)
        c = torch.zeros(1, self.hidden)
        inp = self.embed.weight[-1:].clone()
        out = list(parent)
        logp = torch.zeros(())
        ent = torch.zeros(())
        for t in range(len(self.sizes)):
            h, c = self.cell(inp, (h, c))
            if t in active:
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

    * **Conservative explorer**: every child is derived from one of the ``top_k`` best
      architectures found so far (uniformly; ``top_k=1`` is the paper's "best so far"), after
      ``num_initial`` random architectures seed the search. With probability ``epsilon(t)``
      (linearly decaying from ``explore[0]`` to ``explore[1]`` over ``explore[2]`` proposals)
      a random architecture is proposed instead, so a search stuck around a noisy early
      optimum still sees the rest of the space.
    * **Guided architecture modifier**: one RNN policy per action class proposes new values
      for its class given the parent's other decisions; the class to change is chosen from
      the policies' decision entropies (``guide="entropy"``: sample with probability
      ``softmax(H_s)``; ``"max-entropy"``: the most uncertain class). Only that class changes —
      the "small step" — and at most ``max_changes`` of its decisions (chosen at random;
      ``None``: all of them) are resampled, the others are kept from the parent.
    * **Policy gradient**: REINFORCE on the chosen class's policy with an entropy bonus; the
      advantage is the child's reward minus a baseline — an exponential moving average of
      rewards (``baseline="ema"``) or the parent's reward (``"parent"``: "did this
      modification help?") — divided by a running standard deviation, so that the small
      accuracy differences between neighbouring architectures give usable gradients.

    Args:
        space: any :class:`SearchSpace`.
        seed: seeds sampling and policy initialisation.
        num_initial: random architectures evaluated before the explorer starts.
        top_k: size of the pool of best architectures a parent is drawn from.
        max_changes: decisions of the chosen class resampled per step (``None``: all).
        explore: ``(start, end, steps)`` of the random-proposal probability schedule.
        baseline: ``"ema"`` or ``"parent"``.
        hidden: LSTM width of each class policy.
        lr: Adam learning rate of the policies.
        baseline_decay: EMA decay of the reward baseline and of the advantage variance.
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
        num_initial: int = 10,
        top_k: int = 5,
        max_changes: int | None = 1,
        explore: tuple[float, float, int] = (0.2, 0.0, 100),
        baseline: str = "parent",
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
        if baseline not in ("ema", "parent"):
            raise ConfigError(f"baseline must be 'ema' or 'parent', got {baseline!r}")
        if num_initial < 1 or top_k < 1:
            raise ConfigError("num_initial and top_k must be >= 1")
        if max_changes is not None and max_changes < 1:
            raise ConfigError("max_changes must be >= 1 or None")
        if len(explore) != 3 or not (0 <= explore[0] <= 1 and 0 <= explore[1] <= 1):
            raise ConfigError("explore must be (start, end, steps) with probabilities in [0, 1]")
        self.num_initial = num_initial
        self.top_k = top_k
        self.max_changes = max_changes
        self.explore = (float(explore[0]), float(explore[1]), max(int(explore[2]), 1))
        self.baseline_kind = baseline
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
        self._rewards: dict[Architecture, float] = {}

    def epsilon(self, step: int) -> float:
        """Probability of a random proposal at explorer step ``step`` (0-based)."""
        start, end, steps = self.explore
        return start + (end - start) * min(step / steps, 1.0)

    def top(self) -> list[tuple[Architecture, float]]:
        """The ``top_k`` best (architecture, reward) so far, best first."""
        return sorted(self.history, key=lambda t: -t[1])[: self.top_k]

    def _positions(self, policy: _ClassPolicy) -> list[int]:
        pos = policy.positions()
        if self.max_changes is None or len(pos) <= self.max_changes:
            return pos
        return sorted(self.rng.sample(pos, self.max_changes))

    def _propose_from(self, parent: Architecture) -> Proposal:
        pidx = self.space.encode(parent)
        classes = list(self.policies)
        with torch.no_grad(), torch_threads(1):
            samples = []
            for c in classes:
                pos = self._positions(self.policies[c])
                out = self.policies[c](pidx, None, self.gen, self.temperature, self.tanh_c, pos)
                samples.append((*out, pos))
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
            info={
                "entropy": [round(float(e), 4) for e in ents],
                "child_idx": samples[k][0],
                "positions": samples[k][3],
            },
        )

    def ask(self) -> Proposal:
        """Next architecture: random during the initial phase or with probability
        ``epsilon(t)``; otherwise a child of a parent drawn from the ``top`` pool, with one
        action class changed by its policy (falling back to a random one-decision mutation,
        then to a random architecture, when the policies only propose already-seen children).
        """
        self._issued += 1
        step = self._issued - 1 - self.num_initial
        if self.best is None or step < 0 or self.rng.random() < self.epsilon(step):
            arch = self._random_new()
            self._mark(arch)
            return Proposal(arch)
        pool = self.top()
        parent = pool[self.rng.randrange(len(pool))][0]
        prop = None
        for _ in range(self.max_retries):
            prop = self._propose_from(parent)
            if self.is_new(prop.arch) and self.space.is_valid(prop.arch):
                break
            prop = None
        if prop is None:
            # the policies keep proposing visited children: fall back to a random one-decision
            # step from a pool parent (still conservative), then to a random architecture
            for cand, _ in pool:
                for _ in range(30):
                    arch = self.space.mutate(cand, self.rng)
                    if self.is_new(arch):
                        prop = Proposal(arch, parent=cand)
                        break
                if prop is not None:
                    break
            if prop is None:
                prop = Proposal(self._random_new())
        self._mark(prop.arch)
        return prop

    def _learn(self, proposal: Proposal, reward: float) -> None:
        self._rewards[proposal.arch] = reward
        if proposal.action_class is None or proposal.parent is None:
            return
        if proposal.action_class not in self.policies:
            return
        if self.baseline_kind == "parent" and proposal.parent in self._rewards:
            ref = self._rewards[proposal.parent]
        else:
            ref = reward if self.baseline is None else self.baseline
        adv = reward - ref
        if self.baseline is None:
            self.baseline = reward
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self.adv_var = self.baseline_decay * self.adv_var + (1 - self.baseline_decay) * adv * adv
        scaled = adv / (math.sqrt(self.adv_var) + 1e-3)
        pidx = self.space.encode(proposal.parent)
        cidx = proposal.info.get("child_idx") or self.space.encode(proposal.arch)
        positions = proposal.info.get("positions")
        if positions is None:
            # replayed from a log: score exactly the decisions that differ from the parent
            # (the others were copied), or the whole class if none differs after
            # canonicalisation
            diff = [t for t, (a, b) in enumerate(zip(pidx, cidx)) if a != b]
            mine = self.policies[proposal.action_class].positions()
            positions = [t for t in diff if t in mine] or mine
        policy = self.policies[proposal.action_class]
        with torch_threads(1):
            _, logp, ent = policy(
                pidx, list(cidx), None, self.temperature, self.tanh_c, list(positions)
            )
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
    """Build a registered search controller by name (see ``CONTROLLERS``).

    Args:
        name: ``"rcc"`` (reinforced conservative controller), ``"random"`` or
            ``"evolution"`` (regularised evolution), or any other registered name.
        space: the search space the controller proposes architectures from.
        seed: seed of the controller's own random generator (reproducible proposals).
        **kwargs: passed to the controller's constructor.

    Raises:
        ConfigError: ``name`` is not registered.
    """
    if name not in CONTROLLERS:
        raise ConfigError(f"unknown controller {name!r}; use one of {sorted(CONTROLLERS)}")
    return CONTROLLERS[name](space, seed=seed, **kwargs)
