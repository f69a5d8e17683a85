"""GNN surrogate of user-equilibrium link flows (Madadi & Correia 2024, edge-weighted GIN).

Inputs per scenario: OD demand rows as node features (zone ``i`` carries ``demand[i, :]``;
non-zone nodes zeros) and link capacity / free-flow time as edge features. Each layer is a GIN
whose messages are scaled by a positive edge weight computed from the edge features; after
every layer an edge readout maps ``(h_tail, h_head, edge features)`` to a scalar, the readouts
of all layers are summed, and flows are ``ReLU`` of that sum (de-normalised per link).

Beyond the paper (all optional; :meth:`SurrogateConfig.paper` switches them off): messages
also travel against link direction in a second GIN per layer (``bidirectional``) — OD demand
has to reach links *upstream* of destinations —, node features include demand columns
(``demand_columns``), and two physics-carrying inputs make the learning problem much easier:

* ``route_features`` — the demand projected on the links through an OD-to-link route split
  (:func:`route_split`) gives a base flow per link; it, its v/c and its BPR delay are edge
  features, and the network predicts the standardised correction of the base flow.
* ``global_linear`` — a learned linear link-to-link sensitivity (every link's flow responds
  to every link's capacity, which a few local message-passing layers see only partly),
  initialised by ridge least squares; its prediction feeds the GNN's edge features.
* ``global_hidden`` — an MLP on the same global inputs (all links' capacity ratios and
  route-split flows) added to the linear sensitivity: the capacity-to-flow map is
  piecewise smooth (UE route sets switch), global, and learnable by a plain MLP given enough
  solved scenarios (they are cheap: ~5 ms each).

The default is that global model alone (``layers=0``: no message passing). On held-out Sioux
Falls scenarios (``benchmarks/surrogate_accuracy.py``), trained on 100k solved scenarios, it
reaches 99.5% TTT accuracy and link-flow R² 0.9945 (0.993 with 50k, ~0.98 with 10k: the
model is data-limited, and scenarios are cheap), against 93.5% / 0.85 for the paper preset
and 98.1% / 0.974 for route features + linear sensitivity + a 2-layer GIN trained on 10k.

:meth:`Surrogate.forward_flows` runs a batched dense path (:meth:`FlowGNN.forward_dense`,
identical to PyG message passing on the disjoint union, tested) since all scenarios share one
small topology.
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
from dyngraph.traffic import RoutingGraph, TrafficNetwork, all_or_nothing

__all__ = ["EdgeWeightedGINConv", "FlowGNN", "Surrogate", "SurrogateConfig", "route_split"]


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
        """Re-initialise the MLP's linear layers and reset ``eps`` to its initial value."""
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

    def forward_dense(self, x: Tensor, src: Tensor, dst: Tensor, edge_weight: Tensor,
                      edge_weight_rev: Tensor | None = None) -> Tensor:
        """The same layer for ``S`` graphs sharing one topology, without scatter/gather of
        per-edge messages when weights are scalars (a batched ``(S, N, N)`` weighted
        adjacency times ``x``) — the surrogate's fast path.

        Args:
            x: ``(S, N, in_channels)``.
            src, dst: ``(E,)`` link tails and heads (shared by all graphs).
            edge_weight: ``(S, E)`` or ``(S, E, in_channels)``.
            edge_weight_rev: the same for messages ``head -> tail`` (bidirectional only).

        Returns:
            ``(S, N, out_channels)``.
        """
        parts = [(1.0 + self.eps) * x, _dense_aggregate(x, src, dst, edge_weight)]
        if self.bidirectional:
            parts.append(_dense_aggregate(x, dst, src, edge_weight_rev))
        return self.mlp(torch.cat(parts, -1) if self.bidirectional else parts[0] + parts[1])

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """Message ``w_ji * h_j`` of each edge ``j -> i``.

        Args:
            x_j: ``(E, in_channels)`` source features.
            edge_weight: ``(E,)`` or ``(E, in_channels)`` scales, or ``None`` (unscaled).

        Returns:
            ``(E, in_channels)`` messages.
        """
        if edge_weight is None:
            return x_j
        return x_j * (edge_weight.unsqueeze(-1) if edge_weight.dim() == 1 else edge_weight)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"bidirectional={self.bidirectional})")


def _dense_aggregate(x: Tensor, src: Tensor, dst: Tensor, w: Tensor | None) -> Tensor:
    """``out[s, i] = sum_{e: dst_e = i} w[s, e] * x[s, src_e]`` for ``x`` ``(S, N, C)``."""
    s, n, c = x.shape
    if w is None:
        w = x.new_ones(s, src.numel())
    if w.dim() == 2:
        a = x.new_zeros(s, n * n).index_add_(1, dst * n + src, w).view(s, n, n)
        return torch.bmm(a, x)
    return x.new_zeros(s, n, c).index_add_(1, dst, x[:, src] * w)


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
        # works for flat (N, H) / (E, F) and batched (S, N, H) / (S, E, F) inputs
        z = self.src(h).index_select(-2, src) + self.dst(h).index_select(-2, dst) + self.edge(e)
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
        """Re-initialise the encoder and every layer's edge weights, convolution, readout
        and (with ``global_context``) context projection.
        """
        self.encode.reset_parameters()
        for m in (*self.weight, *self.conv, *self.readout,
                  *(self.context if self.global_context else ())):
            m.reset_parameters()

    def _edge_weights(self, k: int, edge_attr: Tensor) -> tuple[Tensor, Tensor | None]:
        """Layer ``k``'s positive message weights (forward, backward direction or ``None``);
        shared by the sparse and the dense path so both scale messages identically."""
        w = torch.nn.functional.softplus(self.weight[k](edge_attr))
        wf, wb = w.chunk(2, dim=-1) if self.bidirectional else (w, None)
        if wf.shape[-1] == 1:
            wf = wf.squeeze(-1)
            wb = wb.squeeze(-1) if wb is not None else None
        return wf, wb

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
            wf, wb = self._edge_weights(k, edge_attr)
            h = torch.relu(self.conv[k](h, edge_index, wf, wb)) + h  # residual
            if self.global_context:
                # every node hears a summary of its whole graph: UE route choice is global
                g = h.view(batch_size, -1, self.hidden).mean(1, keepdim=True)
                h = h + torch.relu(self.context[k](g)).expand(
                    batch_size, h.shape[0] // batch_size, -1).reshape(h.shape)
            out = out + self.readout[k](h, src, dst, edge_attr)
        return out

    def forward_dense(self, x: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        """Batched fast path for ``S`` graphs of one topology (equal to :meth:`forward` on
        their disjoint union).

        Args:
            x: ``(S, N, node_in)``; src, dst: ``(E,)``; edge_attr: ``(S, E, edge_in)``.

        Returns:
            ``(S, E)`` summed edge readouts.
        """
        if x.shape[0] > 1 and x.stride(0) == 0:  # one node input shared by all graphs
            h = torch.relu(self.encode(x[:1])).expand(x.shape[0], -1, -1)
        else:
            h = torch.relu(self.encode(x))
        out = x.new_zeros(edge_attr.shape[:2])
        for k in range(self.num_layers):
            wf, wb = self._edge_weights(k, edge_attr)
            h = torch.relu(self.conv[k].forward_dense(h, src, dst, wf, wb)) + h
            if self.global_context:
                h = h + torch.relu(self.context[k](h.mean(1, keepdim=True)))
            out = out + self.readout[k](h, src, dst, edge_attr)
        return out

    def __repr__(self) -> str:
        return (f"FlowGNN(hidden={self.hidden}, layers={self.num_layers}, "
                f"bidirectional={self.bidirectional})")


@dataclass
class SurrogateConfig:
    """Architecture of a :class:`Surrogate` (stored in its checkpoints).

    The defaults are the improved surrogate; :meth:`paper` is Madadi & Correia's (2024)
    edge-weighted GIN (scalar edge weights, messages along link direction only, demand rows
    as node features, flows standardised per link).

    Args:
        hidden, layers: width and depth of the GIN (``layers=0``: no message passing; the
            global linear + MLP model alone, which needs ``global_linear``).
        bidirectional: messages also travel against link direction.
        channel_weights: one edge weight per channel instead of a scalar.
        demand_columns: zone nodes also carry their demand *column* (trips arriving).
        route_features: physics features. The demand of each scenario is projected onto the
            links through an OD-to-link route-split matrix (the average all-or-nothing
            incidence under the UE link times of training scenarios), giving a "base-route
            flow" per link; it, its volume/capacity ratio and the BPR delay it would cause
            are edge features, and the network predicts the per-link standardised
            *correction* of that flow (route shifts caused by the capacities).
        global_linear: a learned link-to-link linear sensitivity (flows respond to every
            link's capacity, not only to nearby ones — the linearised UE response): a linear
            map from all links' capacity ratios and route-split flows to every link's flow,
            initialised by least squares on the training data. Its prediction is added to the
            GNN's output and fed to the GNN as edge features (flow, v/c, BPR delay), so the
            GNN learns the non-linear, local correction. Needs ``route_features``.
        global_hidden: width of an MLP on the same inputs (standardised) added to the linear
            sensitivity (0: linear only). It learns the non-linear global response (route
            switches as capacities change); it starts at the least-squares fit (zero output
            layer). It needs many training scenarios (tens of thousands; they are cheap to
            solve) and is then the most accurate surrogate here.
        global_layers: hidden layers of that MLP (GELU).
        node_embedding, link_embedding: learned per-node / per-link identity features.
        global_context: every layer adds a pooled graph summary to each node.
        seed: initialisation seed.
    """

    hidden: int = 32
    layers: int = 0
    bidirectional: bool = True
    channel_weights: bool = False
    demand_columns: bool = True
    route_features: bool = True
    global_linear: bool = True
    global_hidden: int = 512
    global_layers: int = 2
    node_embedding: int = 0
    link_embedding: int = 0
    global_context: bool = False
    seed: int = 0

    @classmethod
    def paper(cls, hidden: int = 64, layers: int = 4, seed: int = 0) -> SurrogateConfig:
        """Madadi & Correia (2024): scalar edge weights, forward messages, demand rows."""
        return cls(hidden=hidden, layers=layers, bidirectional=False, channel_weights=False,
                   demand_columns=False, route_features=False, global_linear=False,
                   global_hidden=0, seed=seed)


def route_split(network: TrafficNetwork, link_time: np.ndarray,
                graph: RoutingGraph | None = None) -> np.ndarray:
    """``(Z * Z, E)`` share of each OD pair's trips on each link: the all-or-nothing
    incidence of the OD pair's shortest path under each row of ``link_time`` ``(K, E)``,
    averaged over the ``K`` rows. With UE link times of varied scenarios the average is a
    route split that spreads each OD pair over the paths UE actually uses."""
    t = np.atleast_2d(np.asarray(link_time, dtype=np.float64))
    if t.shape[1] != network.num_links or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise DataError(f"link_time must be finite, >= 0 and (K, {network.num_links})")
    z = network.num_zones
    o, d = np.nonzero(~np.eye(z, dtype=bool))
    one = np.zeros((o.size, z, z))
    one[np.arange(o.size), o, d] = 1.0  # one scenario per OD pair, unit demand
    g = graph or RoutingGraph(network)
    out = np.zeros((z * z, network.num_links))
    reach = network.demand > 0  # pairs without demand may lack a path; they carry nothing
    keep = reach[o, d]
    for row in t:
        f, _ = all_or_nothing(network, np.broadcast_to(row, (int(keep.sum()), t.shape[1])),
                              one[keep], g)
        out[o[keep] * z + d[keep]] += f
    return out / t.shape[0]


class Surrogate:
    """A trained map ``(capacity, demand) -> UE link flows`` for one network.

    Args:
        network: the network (fixes topology, free-flow times, BPR parameters).
        config: architecture.

    The normalisation statistics (and, with ``route_features``, the route split) are set
    from training data by :meth:`fit_stats` (called by :func:`dyngraph.bilevel.train_surrogate`);
    before that the base network sets them (route split from free-flow shortest paths).
    """

    def __init__(self, network: TrafficNetwork, config: SurrogateConfig | None = None) -> None:
        self.network = network
        self.config = config or SurrogateConfig()
        self.fingerprint = topology_fingerprint(network)
        z, n = network.num_zones, network.num_nodes
        cfg = self.config
        self.node_in = z * (2 if cfg.demand_columns else 1)
        self.edge_in = 3 + (3 if cfg.route_features else 0)
        torch.manual_seed(cfg.seed)
        self.model = FlowGNN(self.node_in + cfg.node_embedding, self.edge_in + cfg.link_embedding,
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
        if cfg.global_linear and not cfg.route_features:
            raise ConfigError("global_linear needs route_features=True")
        if cfg.layers < 0 or (cfg.layers == 0 and not cfg.global_linear):
            raise ConfigError(f"layers={cfg.layers}: use layers >= 1, or layers=0 (no GIN) "
                              "together with global_linear=True")
        if cfg.global_linear:
            self.model.global_linear = torch.nn.Linear(3 * e, e)
            torch.nn.init.zeros_(self.model.global_linear.weight)
            torch.nn.init.zeros_(self.model.global_linear.bias)
            if cfg.global_hidden:
                if cfg.global_layers < 1:
                    raise ConfigError("global_layers must be >= 1 when global_hidden > 0")
                mods, width = [], 3 * e
                for _ in range(cfg.global_layers):
                    mods += [torch.nn.Linear(width, cfg.global_hidden), torch.nn.GELU()]
                    width = cfg.global_hidden
                mods.append(torch.nn.Linear(width, e))
                self.model.global_mlp = torch.nn.Sequential(*mods)
                torch.nn.init.zeros_(mods[-1].weight)  # starts at the least-squares fit
                torch.nn.init.zeros_(mods[-1].bias)
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
        if cfg.route_features:
            self.stats["route"] = torch.as_tensor(
                route_split(network, network.free_flow_time[None]), dtype=torch.float32)
            self.stats["route_scale"] = torch.ones(e)
        if cfg.global_linear and cfg.global_hidden:
            self.stats["global_mu"] = torch.zeros(3 * e)  # MLP input standardisation
            self.stats["global_sd"] = torch.ones(3 * e)
        self._cache: dict[int, Tensor] = {}
        self._demand_cache: dict[bytes, tuple] = {}  # cleared whenever stats change
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

    def set_flow_stats(self, flows: np.ndarray, base: np.ndarray | None = None) -> None:
        """Per-link target normalisation from training flows ``(S, E)``; with ``base``
        (the route-split flows of the same scenarios) the target is ``flows - base``."""
        self._demand_cache = {}
        f = torch.as_tensor(np.asarray(flows), dtype=torch.float32)
        if base is not None:
            f = f - torch.as_tensor(np.asarray(base), dtype=torch.float32)
        self.stats["flow_mu"] = f.mean(0)
        self.stats["flow_sd"] = f.std(0).clamp_min(1e-3 * float(f.std()) + 1e-6)

    def fit_stats(self, data, route_scenarios: int = 32) -> None:
        """Set every data-dependent statistic from a :class:`ScenarioSet`: the route split
        (from the UE link times of up to ``route_scenarios`` of its scenarios) and the flow
        normalisation."""
        if not self.config.route_features:
            self.set_flow_stats(data.flows)
            return
        net = self.network
        k = min(route_scenarios, len(data))
        v, c = data.flows[:k], data.capacity[:k]
        t = net.free_flow_time * (1.0 + net.b * (v / c) ** net.power)
        self.stats["route"] = torch.as_tensor(route_split(net, t), dtype=torch.float32)
        self._demand_cache = {}
        base = self._route_flows(torch.as_tensor(data.demand, dtype=torch.float32))
        self.stats["route_scale"] = base.std(0).clamp_min(1.0) + base.mean(0).abs()
        self.set_flow_stats(data.flows, base.numpy())
        if self.config.global_linear:
            # least-squares start of the linear sensitivity, on the standardised target
            cap = torch.as_tensor(data.capacity, dtype=torch.float32)
            g = self._global_inputs(cap, base)
            y = (torch.as_tensor(data.flows, dtype=torch.float32) - base
                 - self.stats["flow_mu"]) / self.stats["flow_sd"]
            a = torch.cat([g, torch.ones(g.shape[0], 1)], 1).double()
            ridge = 1e-3 * len(data) * torch.eye(a.shape[1], dtype=torch.float64)
            w = torch.linalg.solve(a.T @ a + ridge, a.T @ y.double()).float()
            with torch.no_grad():
                self.model.global_linear.weight.copy_(w[:-1].T)
                self.model.global_linear.bias.copy_(w[-1])
            if self.config.global_hidden:
                self.stats["global_mu"] = g.mean(0)
                self.stats["global_sd"] = g.std(0).clamp_min(1e-6)

    def _global_inputs(self, cap: Tensor, base: Tensor) -> Tensor:
        """``(S, 3E)`` inputs of the linear sensitivity: capacity ratios, their inverses and
        the scaled route-split flows of every link."""
        r = cap / self.stats["cap_base"]
        return torch.cat([r, 1.0 / r, base.expand_as(cap) / self.stats["route_scale"]], -1)

    def _route_flows(self, dem: Tensor) -> Tensor:
        """``(S, E)`` flows of demand ``(S, Z, Z)`` on the route split."""
        return dem.reshape(dem.shape[0], -1) @ self.stats["route"]

    # ------------------------------------------------------------------ features
    def _batched_edge_index(self, s: int) -> Tensor:
        ei = self._cache.get(s)
        if ei is None:
            off = (torch.arange(s) * self.n_nodes).repeat_interleave(self._src.numel())
            ei = torch.stack([self._src.repeat(s) + off, self._dst.repeat(s) + off])
            self._cache = {s: ei}  # keep one size: batches repeat the same size
        return ei

    def _demand_inputs(self, dem: Tensor) -> tuple[Tensor, Tensor | None]:
        """Node features ``(D, N, F)`` and route-split flows ``(D, E)`` of demands."""
        z = self.network.num_zones
        dn = dem / self.stats["demand_scale"]
        feats = [dn, dn.transpose(1, 2)] if self.config.demand_columns else [dn]
        xz = torch.cat(feats, dim=-1)
        x = xz.new_zeros(dem.shape[0], self.n_nodes, self.node_in)  # non-zone nodes: 0
        x[:, :z] = xz
        base = self._route_flows(dem) if self.config.route_features else None
        return x, base

    def _inputs(self, capacity, demand) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Batched ``(x (S, N, F), edge_attr (S, E, Fe), base flows (S, E), linear
        sensitivity output (S, E))``."""
        cap = torch.as_tensor(np.asarray(capacity) if not isinstance(capacity, Tensor)
                              else capacity, dtype=torch.float32)
        if cap.dim() == 1:
            cap = cap[None]
        s, e = cap.shape
        if e != self.network.num_links:
            raise ShapeError(f"capacity has {e} links, the network {self.network.num_links}")
        if not torch.isfinite(cap).all() or (cap <= 0).any():
            raise DataError("capacity must be finite and positive")
        dem = torch.as_tensor(np.asarray(demand) if not isinstance(demand, Tensor) else demand,
                              dtype=torch.float32)
        z = self.network.num_zones
        if dem.shape[-2:] != (z, z):
            raise ShapeError(f"demand has shape {tuple(dem.shape)}, expected (S, {z}, {z})")
        shared = dem.dim() == 2  # one demand for all (design search): compute once
        dem = dem[None] if shared else dem
        if not shared and dem.shape[0] != s:
            raise ShapeError(f"{dem.shape[0]} demand matrices for {s} capacity rows")
        key = dem.numpy().tobytes() if shared and not dem.requires_grad else None
        hit = self._demand_cache.get(key) if key is not None else None
        if hit is None:
            hit = self._demand_inputs(dem)
            if key is not None:
                self._demand_cache = {key: hit}  # a search reuses one demand every call
        x, base0 = hit
        x = x.expand(s, -1, -1)
        cols = [cap / self.stats["cap_scale"], self._fft.expand(s, e) / self.stats["fft_scale"],
                cap / self.stats["cap_base"]]
        lin = cap.new_zeros(s, e)  # standardised prediction of the linear sensitivity
        if self.config.route_features:
            base = base0.expand(s, e)
            guess = base
            if self.config.global_linear:
                g = self._global_inputs(cap, base)
                lin = self.model.global_linear(g)
                if self.config.global_hidden:
                    gz = (g - self.stats["global_mu"]) / self.stats["global_sd"]
                    lin = lin + self.model.global_mlp(gz)
                guess = torch.relu(base + self.stats["flow_mu"] + self.stats["flow_sd"] * lin)
            vc = guess / cap
            cols += [guess / self.stats["route_scale"], vc,
                     torch.log1p(self._b * vc.clamp_max(10.0) ** self._p)]
        else:
            base = cap.new_zeros(s, e)
        ea = torch.stack(cols, dim=-1)
        node_id = getattr(self.model, "node_identity", None)
        if node_id is not None:
            x = torch.cat([x, node_id.expand(s, -1, -1)], -1)
        link_id = getattr(self.model, "link_identity", None)
        if link_id is not None:
            ea = torch.cat([ea, link_id.expand(s, -1, -1)], -1)
        return x, ea, base, lin

    def features(self, capacity, demand) -> tuple[Tensor, Tensor, Tensor]:
        """``(x (S*N, F), edge_index (2, S*E), edge_attr (S*E, Fe))``: the scenarios as one
        disjoint-union PyG graph (``capacity`` ``(S, E)``; ``demand`` ``(S, Z, Z)`` or a
        shared ``(Z, Z)``)."""
        x, ea, _, _ = self._inputs(capacity, demand)
        s = x.shape[0]
        return (x.reshape(s * self.n_nodes, -1), self._batched_edge_index(s),
                ea.reshape(s * self.network.num_links, -1))

    def forward_flows(self, capacity, demand, dense: bool = True) -> Tensor:
        """Differentiable ``(S, E)`` predicted flows (model in its current mode).

        ``dense`` uses :meth:`FlowGNN.forward_dense` (same result as the PyG path on the
        disjoint union, several times faster for this small fixed topology)."""
        x, ea, base, lin = self._inputs(capacity, demand)
        s, e = ea.shape[:2]
        if self.config.layers == 0:  # global model only, no message passing
            raw = torch.zeros_like(lin)
        elif dense:
            raw = self.model.forward_dense(x, self._src, self._dst, ea)
        else:
            raw = self.model(x.reshape(s * self.n_nodes, -1), self._batched_edge_index(s),
                             ea.reshape(s * e, -1), batch_size=s).view(s, e)
        return torch.relu(base + self.stats["flow_mu"] + self.stats["flow_sd"] * (raw + lin))

    def ttt_from_flows(self, flows: Tensor, capacity: Tensor) -> Tensor:
        """``(S,)`` ``sum_e v t(v)`` under BPR (torch, differentiable)."""
        t = self._fft * (1.0 + self._b * (flows / capacity) ** self._p)
        return (flows * t).sum(-1)

    @torch.inference_mode()
    def predict_flows(self, capacity, demand=None, batch_size: int = 1024) -> np.ndarray:
        """``(S, E)`` predicted UE flows (``demand`` defaults to the network's)."""
        dem = self.network.demand if demand is None else np.asarray(demand)
        cap = np.asarray(capacity, dtype=np.float64)
        cap = cap[None] if cap.ndim == 1 else cap
        if self.model.training:  # eval() walks every submodule: skip when already set
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
        """Checkpoint dict: config, network fingerprint and name, model weights and the
        normalisation statistics.
        """
        return {"config": asdict(self.config), "fingerprint": self.fingerprint,
                "network_name": self.network.name, "model": self.model.state_dict(),
                "stats": self.stats}

    def load_state(self, state: dict) -> None:
        """Restore model weights and statistics from a ``state()`` checkpoint.

        Raises:
            ConfigError: the checkpoint was trained on another network (fingerprint mismatch).
        """
        if state["fingerprint"] != self.fingerprint:
            raise ConfigError(
                f"checkpoint was trained on {state.get('network_name')} (fingerprint "
                f"{state['fingerprint'][:12]}), not on {self.network.name} (fingerprint "
                f"{self.fingerprint[:12]}); load it with the network it was trained on")
        self.model.load_state_dict(state["model"])
        self.stats = dict(state["stats"])
        self._demand_cache = {}

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``state()`` to ``path`` atomically (temporary file, then rename).

        Returns:
            The written path.
        """
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
        cfg = dict(state["config"])
        cfg.setdefault("route_features", False)  # checkpoints from before route features
        cfg.setdefault("global_linear", False)
        cfg.setdefault("global_hidden", 0)
        cfg.setdefault("global_layers", 1)
        s = cls(network, SurrogateConfig(**cfg))
        s.load_state(state)
        return s

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"Surrogate({self.network.name}, {self.model!r}, params={n})"
