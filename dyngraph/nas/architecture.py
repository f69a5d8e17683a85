"""``Architecture``: an immutable, hashable, JSON-serialisable point of a search space."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dyngraph.errors import ConfigError

__all__ = ["Architecture", "Scalar"]

Scalar = int | float | str | bool | None
_SCALARS = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class Architecture:
    """An ordered assignment ``decision name -> value`` in the search space ``space``.

    Equality and hashing use the space name and all (name, value) pairs, so two architectures
    are equal exactly when they make the same decisions. :attr:`key` is a stable short digest
    (same across processes and Python versions) used in logs.
    """

    space: str
    choices: tuple[tuple[str, Scalar], ...]

    def __post_init__(self) -> None:
        names = set()
        for item in self.choices:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ConfigError(f"choices must be (name, value) pairs, got {item!r}")
            if not isinstance(item[1], _SCALARS):
                raise ConfigError(
                    f"decision {item[0]!r} has non-scalar value {item[1]!r}; "
                    "use int/float/str/bool/None so the architecture stays serialisable"
                )
            if item[0] in names:
                raise ConfigError(f"decision {item[0]!r} appears twice")
            names.add(item[0])

    @classmethod
    def from_mapping(cls, space: str, values: Mapping[str, Scalar]) -> Architecture:
        """Architecture of space ``space`` from a ``name -> value`` mapping, in its order.

        Args:
            space: name of the search space.
            values: decision values; keys are converted to ``str``.

        Returns:
            The architecture (not validated against the space; see ``SearchSpace.make``).
        """
        return cls(space, tuple((str(k), v) for k, v in values.items()))

    def __getitem__(self, name: str) -> Scalar:
        for k, v in self.choices:
            if k == name:
                return v
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self.choices)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.choices)

    def get(self, name: str, default: Scalar = None) -> Scalar:
        """Value of decision ``name``, or ``default`` when the architecture has no such decision."""
        try:
            return self[name]
        except KeyError:
            return default

    def values(self) -> dict[str, Scalar]:
        """The decisions as a new ``{name: value}`` dict, in decision order."""
        return dict(self.choices)

    def replace(self, changes: Mapping[str, Scalar]) -> Architecture:
        """A copy with some decisions changed (unknown names are an error)."""
        unknown = set(changes) - set(self)
        if unknown:
            raise ConfigError(f"unknown decisions {sorted(unknown)} for space {self.space!r}")
        return Architecture(self.space, tuple((k, changes.get(k, v)) for k, v in self.choices))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"space": ..., "choices": {name: value}}``; inverse of ``from_dict``."""
        return {"space": self.space, "choices": dict(self.choices)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Architecture:
        """Architecture from a ``to_dict`` result.

        Args:
            d: mapping with keys ``"space"`` and ``"choices"``.

        Raises:
            ConfigError: ``d`` is not a serialised architecture.
        """
        try:
            return cls.from_mapping(d["space"], d["choices"])
        except (KeyError, TypeError) as e:
            raise ConfigError(
                f"not a serialised Architecture (need 'space' and 'choices'): {d!r}"
            ) from e

    def to_json(self) -> str:
        """Compact JSON string of ``to_dict()``; inverse of ``from_json``."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> Architecture:
        """Architecture from a ``to_json`` string.

        Raises:
            ConfigError: the JSON is not a serialised architecture.
        """
        return cls.from_dict(json.loads(s))

    @property
    def key(self) -> str:
        """Stable 16-hex digest of the architecture (independent of ``PYTHONHASHSEED``)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.choices)
        return f"{self.space}[{inner}]"
