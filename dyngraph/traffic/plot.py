"""Volume/capacity map of a road network drawn from its node coordinates."""

from __future__ import annotations

import os

import numpy as np

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.traffic.network import TrafficNetwork

__all__ = ["plot_network"]


def plot_network(
    network: TrafficNetwork,
    flows: np.ndarray | None = None,
    capacity: np.ndarray | None = None,
    ax=None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    cmap: str = "RdYlGn_r",
    vmax: float | None = None,
    highlight: np.ndarray | None = None,
    label_nodes: bool = True,
):
    """Draw links coloured by volume/capacity (or plain when ``flows`` is None).

    The two directions of a two-way street are drawn side by side (each shifted to the right
    of its travel direction) so both are visible; line width grows with flow.

    Args:
        flows: ``(E,)`` link volumes.
        capacity: ``(E,)`` capacities for the ratio (defaults to the network's).
        ax: a matplotlib axis to draw on; a new figure is made when None.
        path: save the figure there (PNG, PDF, ...) when given.
        highlight: ``(E,)`` boolean mask of links to outline in black (e.g. a design).

    Returns:
        The matplotlib axis.
    """
    if network.coords is None:
        raise ConfigError(f"{network.name} has no node coordinates; load it with a *_node.tntp "
                          "file (TrafficNetwork.from_tntp(..., nodes=...))")
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False) if path is not None else None
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    xy = network.coords
    a, b = xy[network.init], xy[network.term]
    vec = b - a
    length = np.linalg.norm(vec, axis=1, keepdims=True)
    length[length == 0] = 1.0
    normal = np.stack([vec[:, 1], -vec[:, 0]], axis=1) / length  # right of travel direction
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    off = normal * span * 0.006
    shrink = vec * 0.04
    segs = np.stack([a + off + shrink, b + off - shrink], axis=1)

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 8))
    else:
        fig = ax.figure
    if flows is not None:
        f = np.asarray(flows, dtype=np.float64)
        if f.shape != (network.num_links,):
            raise ShapeError(f"flows has shape {f.shape}, expected ({network.num_links},)")
        cap = network.capacity if capacity is None else np.asarray(capacity, dtype=np.float64)
        vc = f / cap
        widths = 1.0 + 5.0 * f / max(f.max(), 1e-12)
        norm = matplotlib.colors.Normalize(vmin=0.0, vmax=vmax or max(float(vc.max()), 1.0))
        lc = LineCollection(segs, array=vc, cmap=cmap, norm=norm, linewidths=widths,
                            capstyle="round", zorder=2)
        ax.add_collection(lc)
        cb = fig.colorbar(lc, ax=ax, shrink=0.7, pad=0.02)
        cb.set_label("volume / capacity")
    else:
        ax.add_collection(LineCollection(segs, colors="0.4", linewidths=1.5, zorder=2))
    if highlight is not None:
        hm = np.asarray(highlight, dtype=bool)
        ax.add_collection(LineCollection(segs[hm], colors="k", linewidths=8.0, alpha=0.35,
                                         zorder=1))
    zone = np.arange(network.num_nodes) < network.num_zones
    ax.scatter(xy[:, 0], xy[:, 1], s=90, c=np.where(zone, "#4c72b0", "#bbbbbb"),
               edgecolors="k", linewidths=0.6, zorder=3)
    if label_nodes and network.num_nodes <= 150:
        for i, (x, y) in enumerate(xy):
            ax.text(x, y, str(i + 1), fontsize=6.5, ha="center", va="center", color="w",
                    zorder=4)
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or network.name)
    if path is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return ax
