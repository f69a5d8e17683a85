"""GNN surrogate of user-equilibrium link flows (Madadi & Correia 2024, edge-weighted GIN).

Inputs per scenario: OD demand rows as node features (zone ``i`` carries ``demand[i, :]``;
non-zone nodes zeros) and link capacity / free-flow time as edge features. Each layer is a GIN
whose messages are scaled by a positive edge weight computed from the edge features; after
every layer an edge readout maps ``(h_tail, h_head, edge features)`` to a scalar, the readouts
of all layers are summed, and flows are ``ReLU`` of that sum (de-normalised per link).

Beyond the paper (both optional): messages also travel against link direction in a second GIN
per layer (``bidirectional``) — OD demand has to reach links *upstream* of destinations — and
node features may include demand columns (``demand_columns``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing

from dyngraph.bilevel.data import topology_fingerprint
from dyngraph.errors import ConfigError, DataError, ShapeError
from dyngraph.traffic import TrafficNetwork

__all__ = ["EdgeWeightedGINConv", "FlowGNN", "Surrogate", "SurrogateConfig"]


class EdgeWeightedGINConv(MessagePassing):
    r"""GIN convolution with edge-weighted messages.

    .. math::
        \mathbf{h}_i' = \mathrm{MLP}\Big((1 + \epsilon)\,\mathbf{h}_i
            + \sum_{j \to i} w_{ji} \odot \mathbf{h}_j\Big)

    With ``bidirectional=True`` a second sum runs against link direction with its own
    weights, :math:`\sum_{i \to k} w'_{ik} \odot \mathbf{h}_k`, and the MLP reads the
    concatenation ``[(1 + eps) h_i, forward sum, backward sum]``.

    Args:
        in_channels: input node feature size.
        out_channels: output node feature size.
        hidden_channels: width of the two-layer MLP (default ``out_channels``).
        eps: initial :math:`\epsilon`.
        train_eps: learn :math:`\epsilon`.
        bidirectional: also aggregate against link direction.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | None = None,
                 eps: float = 0.0, train_eps: bool = True, bidirectional: bool = False) -> None:
        super().__init__(aggr="add")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bidirectional = bidirectional
        hid = hidden_channels or out_channels
        mult = 3 if bidirectional else 1
        self.mlp = torch.nn.Sequential(torch.nn.Linear(mult * in_channels, hid), torch.nn.ReLU(),
                                       torch.nn.Linear(hid, out_channels))
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.tensor([eps]))
        else:
            self.register_buffer("eps", torch.tensor([eps]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if isinstance(m, torch.nn.Linear):
                m.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                edge_weight_rev: Tensor | None = None) -> Tensor:
        """Args:
            x: ``(N, in_channels)`` node features.
            edge_index: ``(2, E)`` links ``tail -> head``.
            edge_weight: ``(E,)`` or ``(E, in_channels)`` message scales (1 when None).
            edge_weight_rev: the same for messages ``head -> tail`` (bidirectional only).

        Returns:
            ``(N, out_channels)``.
        """
        for w in (edge_weight, edge_weight_rev):
            if w is not None and w.shape[0] != edge_index.shape[1]:
                raise ShapeError(f"edge weight has {w.shape[0]} rows for "
                                 f"{edge_index.shape[1]} edges")
        parts = [(1.0 + self.eps) * x, self.propagate(edge_index, x=x, edge_weight=edge_weight)]
        if self.bidirectional:
            parts.append(self.propagate(edge_index.flip(0), x=x, edge_weight=edge_weight_rev))
        return self.mlp(torch.cat(parts, -1) if self.bidirectional else parts[0] + parts[1])

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        if edge_weight is None:
            return x_j
        return x_j * (edge_weight.unsqueeze(-1) if edge_weight.dim() == 1 else edge_weight)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"bidirectional={self.bidirectional})")


class _EdgeReadout(torch.nn.Module):
    """``MLP([h_tail, h_head, e])`` computed as ``relu(A h_tail + B h_head + C e) -> 1``; the
    first linear map is applied to nodes before gathering, which is ~3x cheaper than on the
    concatenation per link."""

    def __init__(self, hidden: int, edge_in: int) -> None:
        super().__init__()
        self.src = torch.nn.Linear(hidden, hidden)
        self.dst = torch.nn.Linear(hidden, hidden, bias=False)
        self.edge = torch.nn.Linear(edge_in, hidden, bias=False)
        self.out = torch.nn.Linear(hidden, 1)

    def reset_parameters(self) -> None:
        for m in (self.src, self.dst, self.edge, self.out):
            m.reset_parameters()

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, e: Tensor) -> Tensor:
        z = self.src(h)[src] + self.dst(h)[dst] + self.edge(e)
        return self.out(torch.relu(z)).squeeze(-1)


class FlowGNN(torch.nn.Module):
    """Stack of edge-weighted GIN layers with a per-layer edge readout, summed.

    Args:
        node_in: node feature size.
        edge_in: edge feature size.
        hidden: hidden width.
        layers: number of message-passing layers.
        bidirectional: messages also travel against link direction.
        channel_weights: edge weights per channel (``(E, hidden)``) instead of a scalar.
    """

    def __init__(self, node_in: int, edge_in: int, hidden: int = 64, layers: int = 4,
                 bidirectional: bool = True, channel_weights: bool = True,
                 global_context: bool = False) -> None:
        super().__init__()
        self.hidden, self.num_layers, self.bidirectional = hidden, layers, bidirectional
        self.global_context = global_context
        wdim = (hidden if channel_weights else 1) * (2 if bidirectional else 1)
        self.encode = torch.nn.Linear(node_in, hidden)
        self.weight = torch.nn.ModuleList(torch.nn.Linear(edge_in, wdim) for _ in range(layers))
        self.conv = torch.nn.ModuleList(EdgeWeightedGINConv(hidden, hidden,
                                                            bidirectional=bidirectional)
                                        for _ in range(layers))
        self.readout = torch.nn.ModuleList(_EdgeReadout(hidden, edge_in) for _ in range(layers))
        if global_context:
            self.context = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden)
                                               for _ in range(layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encode.reset_parameters()
        for m in (*self.weight, *self.conv, *self.readout,
                  *(self.context if self.global_context else ())):
            m.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                batch_size: int = 1) -> Tensor:
        """Args:
            x: ``(N, node_in)``; edge_index: ``(2, E)``; edge_attr: ``(E, edge_in)``.
            batch_size: number of equally sized graphs stacked in ``x`` (global context).

        Returns:
            ``(E,)`` summed edge readouts (normalised flows; the caller de-normalises and
            applies ReLU).
        """
        h = torch.relu(self.encode(x))
        src, dst = edge_index
        out = x.new_zeros(edge_index.shape[1])
        for k in range(self.num_layers):
            w = torch.nn.functional.softplus(self.weight[k](edge_attr))
            wf, wb = w.chunk(2, dim=-1) if self.bidirectional else (w, None)
            if wf.shape[-1] == 1:
                wf = wf.squeeze(-1)
                wb = wb.squeeze(-1) if wb is not None else None
            h = torch.relu(self.conv[k](h, edge_index, wf, wb)) + h  # residual
            if self.global_context:
                # every node hears a summary of its whole graph: UE route choice is global
                g = h.view(batch_size, -1, self.hidden).mean(1, keepdim=True)
                h = h + torch.relu(self.context[k](g)).expand(
                    batch_size, h.shape[0] // batch_size, -1).reshape(h.shape)
            out = out + self.readout[k](h, src, dst, edge_attr)
        return out

    def __repr__(self) -> str:
        return (f"FlowGNN(hidden={self.hidden}, layers={self.num_layers}, "
                f"bidirectional={self.bidirectional})")


@dataclass
class SurrogateConfig:
    """Architecture of a :class:`Surrogate` (stored in its checkpoints)."""

    hidden: int = 64
    layers: int = 4
    bidirectional: bool = True
    channel_weights: bool = True
    demand_columns: bool = True
    node_embedding: int = 0
    link_embedding: int = 0
    global_context: bool = False
    seed: int = 0


class Surrogate:
    """A trained map ``(capacity, demand) -> UE link flows`` for one network.

    Args:
        network: the network (fixes topology, free-flow times, BPR parameters).
        config: architecture.

    The normalisation statistics are set from training data by
    :func:`dyngraph.bilevel.train_surrogate`; before that the base network sets them.
    """

    def __init__(self, network: TrafficNetwork, config: SurrogateConfig | None = None) -> None:
        self.network = network
        self.config = config or SurrogateConfig()
        self.fingerprint = topology_fingerprint(network)
        z, n = network.num_zones, network.num_nodes
        cfg = self.config
        self.node_in = z * (2 if cfg.demand_columns else 1)
        torch.manual_seed(cfg.seed)
        self.model = FlowGNN(self.node_in + cfg.node_embedding, 3 + cfg.link_embedding,
                             cfg.hidden, cfg.layers, cfg.bidirectional, cfg.channel_weights,
                             cfg.global_context)
        # Learned node / link identities: the surrogate is tied to one network anyway, so
        # position-aware features cost nothing in generality and speed up learning.
        if cfg.node_embedding:
            self.model.node_identity = torch.nn.Parameter(0.1 * torch.randn(n, cfg.node_embedding))
        if cfg.link_embedding:
            self.model.link_identity = torch.nn.Parameter(
                0.1 * torch.randn(network.num_links, cfg.link_embedding))
        e = network.num_links
        self._src = torch.as_tensor(network.init, dtype=torch.long)
        self._dst = torch.as_tensor(network.term, dtype=torch.long)
        self._fft = torch.as_tensor(network.free_flow_time, dtype=torch.float32)
        self._b = torch.as_tensor(network.b, dtype=torch.float32)
        self._p = torch.as_tensor(network.power, dtype=torch.float32)
        self.stats = {
            "cap_base": torch.as_tensor(network.capacity, dtype=torch.float32),
            "cap_scale": float(np.mean(network.capacity)),
            "fft_scale": float(np.mean(network.free_flow_time)) or 1.0,
            "demand_scale": float(network.demand.max()) or 1.0,
            "flow_mu": torch.zeros(e),
            "flow_sd": torch.full((e,), float(network.total_demand) / max(e, 1)),
        }
        self._cache: dict[int, Tensor] = {}
        self.n_nodes = n

    # ------------------------------------------------------------------ checks
    def check_network(self, network: TrafficNetwork) -> None:
        """Raise :class:`ConfigError` unless ``network`` has this surrogate's topology."""
        fp = topology_fingerprint(network)
        if fp != self.fingerprint:
            raise ConfigError(
                f"this surrogate was trained on {self.network.name} (fingerprint "
                f"{self.fingerprint[:12]}) but the problem's network {network.name} has "
                f"fingerprint {fp[:12]}: links, zones, free-flow times or BPR parameters "
                "differ; train a surrogate on this network")

    def set_flow_stats(self, flows: np.ndarray) -> None:
        """Per-link target normalisation from training flows ``(S, E)``."""
        f = torch.as_tensor(np.asarray(flows), dtype=torch.float32)
        self.stats["flow_mu"] = f.mean(0)
        self.stats["flow_sd"] = f.std(0).clamp_min(1e-3 * float(f.std()) + 1e-6)

    # ------------------------------------------------------------------ features
    def _batched_edge_index(self, s: int) -> Tensor:
        ei = self._cache.get(s)
        if ei is None:
            off = (torch.arange(s) * self.n_nodes).repeat_interleave(self._src.numel())
            ei = torch.stack([self._src.repeat(s) + off, self._dst.repeat(s) + off])
            self._cache = {s: ei}  # keep one size: batches repeat the same size
        return ei

    def features(self, capacity, demand) -> tuple[Tensor, Tensor, Tensor]:
        """``(x (S*N, F), edge_index (2, S*E), edge_attr (S*E, 3))`` for scenarios.

        ``capacity`` is ``(S, E)``; ``demand`` is ``(S, Z, Z)`` or ``(Z, Z)`` shared.
        """
        cap = torch.as_tensor(np.asarray(capacity), dtype=torch.float32)
        if cap.dim() == 1:
            cap = cap[None]
        s, e = cap.shape
        if e != self.network.num_links:
            raise ShapeError(f"capacity has {e} links, the network {self.network.num_links}")
        if not torch.isfinite(cap).all() or (cap <= 0).any():
            raise DataError("capacity must be finite and positive")
        dem = torch.as_tensor(np.asarray(demand), dtype=torch.float32)
        z = self.network.num_zones
        if dem.shape[-2:] != (z, z):
            raise ShapeError(f"demand has shape {tuple(dem.shape)}, expected (S, {z}, {z})")
        if dem.dim() == 2:
            dem = dem.expand(s, z, z)
        if dem.shape[0] != s:
            raise ShapeError(f"{dem.shape[0]} demand matrices for {s} capacity rows")
        dem = dem / self.stats["demand_scale"]
        feats = [dem, dem.transpose(1, 2)] if self.config.demand_columns else [dem]
        xz = torch.cat(feats, dim=-1)
        x = xz.new_zeros(s, self.n_nodes, self.node_in)  # non-zone nodes: no demand
        x[:, :z] = xz
        ea = torch.stack([cap / self.stats["cap_scale"],
                          self._fft.expand(s, e) / self.stats["fft_scale"],
                          cap / self.stats["cap_base"]], dim=-1)
        node_id = getattr(self.model, "node_identity", None)
        if node_id is not None:
            x = torch.cat([x, node_id.expand(s, -1, -1)], -1)
        link_id = getattr(self.model, "link_identity", None)
        if link_id is not None:
            ea = torch.cat([ea, link_id.expand(s, -1, -1)], -1)
        return (x.reshape(s * self.n_nodes, -1), self._batched_edge_index(s),
                ea.reshape(s * e, -1))

    def forward_flows(self, capacity, demand) -> Tensor:
        """Differentiable ``(S, E)`` predicted flows (model in its current mode)."""
        x, ei, ea = self.features(capacity, demand)
        s = ea.shape[0] // self.network.num_links
        raw = self.model(x, ei, ea, batch_size=s).view(s, self.network.num_links)
        return torch.relu(self.stats["flow_mu"] + self.stats["flow_sd"] * raw)

    def ttt_from_flows(self, flows: Tensor, capacity: Tensor) -> Tensor:
        """``(S,)`` ``sum_e v t(v)`` under BPR (torch, differentiable)."""
        t = self._fft * (1.0 + self._b * (flows / capacity) ** self._p)
        return (flows * t).sum(-1)

    @torch.no_grad()
    def predict_flows(self, capacity, demand=None, batch_size: int = 1024) -> np.ndarray:
        """``(S, E)`` predicted UE flows (``demand`` defaults to the network's)."""
        dem = self.network.demand if demand is None else np.asarray(demand)
        cap = np.asarray(capacity, dtype=np.float64)
        cap = cap[None] if cap.ndim == 1 else cap
        self.model.eval()
        out = []
        for lo in range(0, cap.shape[0], batch_size):
            d = dem if dem.ndim == 2 else dem[lo:lo + batch_size]
            out.append(self.forward_flows(cap[lo:lo + batch_size], d).numpy())
        return np.concatenate(out).astype(np.float64)

    def predict_ttt(self, capacity, demand=None, batch_size: int = 1024) -> np.ndarray:
        """``(S,)`` total travel time of the predicted flows."""
        cap = np.asarray(capacity, dtype=np.float64)
        cap = cap[None] if cap.ndim == 1 else cap
        f = self.predict_flows(cap, demand, batch_size)
        net = self.network
        t = net.free_flow_time * (1.0 + net.b * (f / cap) ** net.power)
        return (f * t).sum(-1)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict:
        return {"config": asdict(self.config), "fingerprint": self.fingerprint,
                "network_name": self.network.name, "model": self.model.state_dict(),
                "stats": self.stats}

    def load_state(self, state: dict) -> None:
        if state["fingerprint"] != self.fingerprint:
            raise ConfigError(
                f"checkpoint was trained on {state.get('network_name')} (fingerprint "
                f"{state['fingerprint'][:12]}), not on {self.network.name} (fingerprint "
                f"{self.fingerprint[:12]}); load it with the network it was trained on")
        self.model.load_state_dict(state["model"])
        self.stats = dict(state["stats"])

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike, network: TrafficNetwork) -> Surrogate:
        """Load a saved surrogate; ``network`` must be the one it was trained on."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no surrogate checkpoint there; train one first "
                            "(dyngraph.bilevel.train_surrogate or `dyngraph design`)")
        state = torch.load(p, map_location="cpu", weights_only=False)
        if "surrogate" in state:  # a training checkpoint
            state = state["surrogate"]
        s = cls(network, SurrogateConfig(**state["config"]))
        s.load_state(state)
        return s

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"Surrogate({self.network.name}, {self.model!r}, params={n})"
