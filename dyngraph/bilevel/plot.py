"""Pictures of a design search: the network with the chosen links, and best TTT over time."""

from __future__ import annotations

import os

import numpy as np

from dyngraph.bilevel.optimizer import SurrogateOptimizer
from dyngraph.bilevel.problem import NetworkDesignProblem
from dyngraph.errors import ConfigError

__all__ = ["plot_design", "plot_search_history"]


def plot_design(problem: NetworkDesignProblem, design, flows: np.ndarray | None = None,
                ax=None, path: str | os.PathLike | None = None, title: str | None = None):
    """The network (from node coordinates) coloured by v/c under the design's capacities,
    with the links the design changes outlined."""
    from dyngraph.traffic import plot_network

    cap = problem.capacities(design)[0]
    return plot_network(problem.network, flows, capacity=cap, ax=ax, path=path,
                        highlight=problem.changed_links(design),
                        title=title or f"{problem.network.name}: {problem.kind} design")


def plot_search_history(optimizers: dict[str, SurrogateOptimizer], ax=None,
                        path: str | os.PathLike | None = None, optimum: float | None = None):
    """Best fitness of each search over wall time (one line per optimizer)."""
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not optimizers:
        raise ConfigError("no searches to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, opt in optimizers.items():
        if not opt.history:
            raise ConfigError(f"search {name!r} has no history; run it first")
        h = np.asarray(opt.history)
        ax.step(h[:, 0], h[:, 3], where="post", label=name)
    if optimum is not None:
        ax.axhline(optimum, color="k", ls="--", lw=1, label="true optimum")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("best total travel time (search fitness)")
    ax.legend()
    ax.grid(alpha=0.3)
    if path is not None:
        ax.figure.savefig(path, dpi=150, bbox_inches="tight")
    return ax
