"""Search spaces: decisions grouped in action classes, operator registries, the AGNN space.

A :class:`SearchSpace` is an ordered list of :class:`Decision` s (name, action class, choices).
Controllers only see this interface, so any space — the AGNN layer space below, the
NAS-Bench-Graph table space, or one a user writes — can be searched by every controller.
New spaces are made available by name with :func:`register_space`; new operators of the AGNN
space with :func:`register_activation` and :func:`dyngraph.nn.conv.register_attention`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dyngraph.errors import ConfigError
from dyngraph.nas.architecture import Architecture, Scalar
from dyngraph.nn.conv import AGGREGATIONS, ATTENTIONS

__all__ = [
    "Decision",
    "SearchSpace",
    "AGNNSpace",
    "ACTIVATIONS",
    "register_activation",
    "SPACES",
    "register_space",
    "make_space",
]

#: name -> element-wise activation; extended with :func:`register_activation`.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "linear": lambda x: x,
    "softplus": F.softplus,
    "leaky_relu": F.leaky_relu,
    "relu6": F.relu6,
    "elu": F.elu,
}

#: name -> SearchSpace factory; extended with :func:`register_space`.
SPACES: dict[str, Callable[..., SearchSpace]] = {}


def register_activation(name: str) -> Callable[[Callable], Callable]:
    """Decorator adding an activation function to the AGNN space's operator registry."""

    def deco(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        ACTIVATIONS[name] = fn
        return fn

    return deco


def register_space(name: str) -> Callable[[Callable[..., SearchSpace]], Callable]:
    """Decorator registering a search-space factory under ``name`` (see :func:`make_space`)."""

    def deco(factory: Callable[..., SearchSpace]) -> Callable[..., SearchSpace]:
        SPACES[name] = factory
        return factory

    return deco


def make_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build a registered search space by name (see ``SPACES`` and :func:`register_space`).

    Args:
        name: registered space name, e.g. ``"agnn"`` or ``"nasbench-graph"``.
        **kwargs: passed to the space's constructor.

    Raises:
        ConfigError: ``name`` is not registered.
    """
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; registered: {sorted(SPACES)}")
    return SPACES[name](**kwargs)


@dataclass(frozen=True)
class Decision:
    """One categorical decision: its name, the action class it belongs to, its options."""

    name: str
    action_class: str
    choices: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise ConfigError(f"decision {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ConfigError(f"decision {self.name!r} has duplicate choices {self.choices}")


class SearchSpace:
    """A categorical search space.

    Subclasses may override :meth:`canonical` (map equivalent architectures to one
    representative, e.g. unused decisions of inactive layers), :meth:`is_valid` (architectures
    outside the space's support) and :meth:`identity` (what counts as "the same trial").
    Trainable spaces add ``build(arch, in_channels, out_channels)`` and
    ``layer_signatures(...)``; table spaces are evaluated by a table objective.
    """

    name: str = "space"

    def __init__(self, decisions: Sequence[Decision]) -> None:
        names = [d.name for d in decisions]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate decision names in {names}")
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self._by_name = {d.name: d for d in self.decisions}
        classes: list[str] = []
        for d in self.decisions:
            if d.action_class not in classes:
                classes.append(d.action_class)
        self.action_classes: tuple[str, ...] = tuple(classes)

    # -- description -------------------------------------------------------------------------
    def decision(self, name: str) -> Decision:
        """The decision called ``name`` (``KeyError`` if there is none)."""
        return self._by_name[name]

    def decisions_of(self, action_class: str) -> list[Decision]:
        """Decisions of action class ``action_class``, in space order (empty if none)."""
        return [d for d in self.decisions if d.action_class == action_class]

    def config(self) -> dict[str, Any]:
        """JSON description, stored in trial logs to refuse resuming a different search."""
        return {
            "name": self.name,
            "decisions": [[d.name, d.action_class, list(d.choices)] for d in self.decisions],
        }

    def size(self) -> int:
        """Number of architectures: the product of the decisions' choice counts.

        Equivalent (canonicalised) and invalid architectures are counted too.
        """
        n = 1
        for d in self.decisions:
            n *= len(d.choices)
        return n

    # -- architectures -----------------------------------------------------------------------
    def make(self, values: Mapping[str, Scalar]) -> Architecture:
        """Architecture from a mapping (validated, canonicalised)."""
        missing = [d.name for d in self.decisions if d.name not in values]
        extra = set(values) - set(self._by_name)
        if missing or extra:
            raise ConfigError(
                f"space {self.name!r}: missing decisions {missing}, unknown {sorted(extra)}"
            )
        arch = Architecture(self.name, tuple((d.name, values[d.name]) for d in self.decisions))
        self.validate(arch)
        return self.canonical(arch)

    def validate(self, arch: Architecture) -> None:
        """Check that ``arch`` belongs to this space.

        Raises:
            ConfigError: ``arch`` is of another space, has other decisions (or another order), or a
                value outside a decision's choices.
        """
        if arch.space != self.name:
            raise ConfigError(f"architecture of space {arch.space!r} given to {self.name!r}")
        if [k for k in arch] != [d.name for d in self.decisions]:
            raise ConfigError(f"architecture decisions {list(arch)} do not match the space")
        for d in self.decisions:
            if arch[d.name] not in d.choices:
                raise ConfigError(f"{d.name}={arch[d.name]!r} not in {d.choices}")

    def canonical(self, arch: Architecture) -> Architecture:
        """Representative of the architectures equivalent to ``arch`` (here: ``arch`` itself)."""
        return arch

    def is_valid(self, arch: Architecture) -> bool:
        """Whether ``arch`` is in the space's support (here: always ``True``)."""
        return True

    def identity(self, arch: Architecture) -> Hashable:
        """Hashable key of "the same trial" (here: the canonical architecture)."""
        return self.canonical(arch)

    def encode(self, arch: Architecture) -> list[int]:
        """Choice indices of ``arch``, one per decision in space order; inverse of ``decode``."""
        return [d.choices.index(arch[d.name]) for d in self.decisions]

    def decode(self, indices: Sequence[int]) -> Architecture:
        """Canonical architecture from choice indices, one per decision in space order.

        Args:
            indices: index into each decision's ``choices``.

        Returns:
            The canonicalised architecture.
        """
        return self.canonical(
            Architecture(
                self.name,
                tuple((d.name, d.choices[int(i)]) for d, i in zip(self.decisions, indices)),
            )
        )

    def sample(self, rng: random.Random) -> Architecture:
        """Uniform sample over decisions (rejecting invalid architectures)."""
        for _ in range(1000):
            arch = self.decode([rng.randrange(len(d.choices)) for d in self.decisions])
            if self.is_valid(arch):
                return arch
        raise ConfigError(f"space {self.name!r}: could not sample a valid architecture")

    def mutate(
        self, arch: Architecture, rng: random.Random, action_class: str | None = None
    ) -> Architecture:
        """Change one decision (of ``action_class`` if given) to a different value."""
        pool = [
            d
            for d in self.decisions
            if len(d.choices) > 1 and (action_class is None or d.action_class == action_class)
        ]
        if not pool:
            return arch
        for _ in range(100):
            d = rng.choice(pool)
            value = rng.choice([c for c in d.choices if c != arch[d.name]])
            child = self.canonical(arch.replace({d.name: value}))
            if child != self.canonical(arch) and self.is_valid(child):
                return child
        return arch

    def describe(self, arch: Architecture) -> str:
        """Human-readable one-line description of ``arch``."""
        return str(arch)


@register_space("agnn")
class AGNNSpace(SearchSpace):
    """The Auto-GNN layer-wise space (Zhou et al. 2019, Table 1).

    Per layer ``l``: ``attention_l`` (class *attention*), ``aggregation_l`` (*aggregation*),
    ``activation_l`` (*activation*), ``heads_l`` (*heads*) and, except for the output layer,
    ``hidden_l`` (*hidden*); plus ``num_layers`` (*layers*) when several depths are allowed.
    The output layer has ``out_channels`` = number of classes and averages its heads (GraphNAS
    convention). Decisions of layers beyond ``num_layers`` are canonicalised to their first
    choice, so equivalent architectures are equal.
    """

    name = "agnn"

    def __init__(
        self,
        num_layers: Sequence[int] = (2,),
        attention: Sequence[str] = ("const", "gcn", "gat", "sym-gat", "cos", "linear",
                                    "gene-linear"),
        heads: Sequence[int] = (1, 2, 4, 6, 8, 16),
        hidden: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
        aggregation: Sequence[str] = ("sum", "mean", "max"),
        activation: Sequence[str] = ("sigmoid", "tanh", "relu", "linear", "softplus",
                                     "leaky_relu", "relu6", "elu"),
        dropout: float = 0.6,
    ) -> None:
        for a in attention:
            if a not in ATTENTIONS:
                raise ConfigError(f"unknown attention {a!r}; registered: {sorted(ATTENTIONS)}")
        for a in activation:
            if a not in ACTIVATIONS:
                raise ConfigError(f"unknown activation {a!r}; registered: {sorted(ACTIVATIONS)}")
        for a in aggregation:
            if a not in AGGREGATIONS:
                raise ConfigError(f"unknown aggregation {a!r}; use {sorted(AGGREGATIONS)}")
        num_layers = tuple(sorted(int(n) for n in num_layers))
        if not num_layers or num_layers[0] < 1:
            raise ConfigError("num_layers must be positive integers")
        self.num_layers_choices = num_layers
        self.max_layers = num_layers[-1]
        self.dropout = float(dropout)
        decisions: list[Decision] = []
        if len(num_layers) > 1:
            decisions.append(Decision("num_layers", "layers", num_layers))
        for layer in range(self.max_layers):
            decisions += [
                Decision(f"attention_{layer}", "attention", tuple(attention)),
                Decision(f"aggregation_{layer}", "aggregation", tuple(aggregation)),
                Decision(f"activation_{layer}", "activation", tuple(activation)),
                Decision(f"heads_{layer}", "heads", tuple(int(h) for h in heads)),
            ]
            if layer < self.max_layers - 1:
                widths = tuple(int(h) for h in hidden)
                decisions.append(Decision(f"hidden_{layer}", "hidden", widths))
        super().__init__(decisions)

    def config(self) -> dict[str, Any]:
        """The base space description plus the layer ``dropout``."""
        return {**super().config(), "dropout": self.dropout}

    def depth(self, arch: Architecture) -> int:
        """Number of active layers of ``arch`` (``max_layers`` when depth is not searched)."""
        return int(arch["num_layers"]) if "num_layers" in arch else self.max_layers

    def canonical(self, arch: Architecture) -> Architecture:
        """Reset decisions of inactive layers to their first choice.

        Layers at index ``>= depth`` are inactive, and so is ``hidden_{depth-1}`` (that layer is the
        output layer, whose width is the number of classes), so architectures that differ only in
        unused decisions become equal.
        """
        depth = self.depth(arch)
        changes: dict[str, Scalar] = {}
        for d in self.decisions:
            parts = d.name.rsplit("_", 1)
            if len(parts) == 2 and parts[1].isdigit():
                layer = int(parts[1])
                # hidden_{depth-1} is unused: that layer is the output layer
                unused = layer >= depth or (d.action_class == "hidden" and layer == depth - 1)
                if unused:
                    changes[d.name] = d.choices[0]
        return arch.replace(changes) if changes else arch

    def layers(self, arch: Architecture) -> list[dict[str, Any]]:
        """Per-layer settings of the active layers."""
        depth = self.depth(arch)
        out = []
        for layer in range(depth):
            spec = {
                k: arch[f"{k}_{layer}"] for k in ("attention", "aggregation", "activation", "heads")
            }
            spec["hidden"] = None if layer == depth - 1 else arch[f"hidden_{layer}"]
            out.append(spec)
        return out

    def layer_signatures(
        self, arch: Architecture, in_channels: int, out_channels: int
    ) -> list[tuple[Any, ...]]:
        """What makes two layers homogeneous in the constrained-sharing sense: the shape of the
        trainable projection (in, heads, out, concat) plus attention and activation type."""
        sigs = []
        prev = in_channels
        specs = self.layers(arch)
        for i, s in enumerate(specs):
            last = i == len(specs) - 1
            out = out_channels if last else int(s["hidden"])
            sigs.append((prev, int(s["heads"]), out, not last, s["attention"], s["activation"]))
            prev = out if last else out * int(s["heads"])
        return sigs

    def build(self, arch: Architecture, in_channels: int, out_channels: int) -> torch.nn.Module:
        """Trainable model of ``arch``.

        Args:
            arch: an architecture of this space.
            in_channels: input feature size.
            out_channels: number of classes.

        Returns:
            A ``SearchedGNN`` with the space's ``dropout``.

        Raises:
            ConfigError: ``arch`` does not belong to this space.
        """
        from dyngraph.nas.model import SearchedGNN

        self.validate(arch)
        return SearchedGNN(self.layers(arch), in_channels, out_channels, dropout=self.dropout)

    def describe(self, arch: Architecture) -> str:
        """One line per active layer: attention, aggregation, activation, heads and width."""
        lines = []
        for i, s in enumerate(self.layers(arch)):
            width = "classes" if s["hidden"] is None else s["hidden"]
            lines.append(
                f"layer {i}: attention={s['attention']} aggregation={s['aggregation']} "
                f"activation={s['activation']} heads={s['heads']} hidden={width}"
            )
        return "\n".join(lines)


@register_space("agnn-light")
def light_agnn_space(**kwargs: Any) -> AGNNSpace:
    """The AGNN space with widths capped (hidden ≤ 64, heads ≤ 8): same operators, cheaper
    trials; used by the CPU benchmarks where the full space's 16×256-wide layers are too slow."""
    kwargs.setdefault("heads", (1, 2, 4, 6, 8))
    kwargs.setdefault("hidden", (4, 8, 16, 32, 64))
    space = AGNNSpace(**kwargs)
    space.name = "agnn-light"
    return space
