"""Implicit graph layers: Convergent Graph Solver (CGS) and Implicit GNN (IGNN).

Both compute a fixed point of a contracting map on the graph with :mod:`dyngraph.solvers` and
differentiate it implicitly, so training memory does not depend on the number of iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn._implicit_utils import expand_heads, project_rows_l1, softmax_with_sink
from dyngraph.solvers import (
    LINEAR_METHODS,
    SolverReport,
    SparseMatrix,
    implicit_fixed_point,
    linear_fixed_point,
    spectral_radius,
)

__all__ = ["CGS", "ConvergentGraphSolver", "IGNN"]


def _mlp(sizes: list[int], act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()


def _check_graph(x: Tensor, edge_index: Tensor, name: str) -> int:
    if x.dim() != 2:
        raise ShapeError(f"{name}: x must be [N, F], got {tuple(x.shape)}.")
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
        raise ShapeError(
            f"{name}: edge_index must be a LongTensor [2, E], got {tuple(edge_index.shape)} "
            f"{edge_index.dtype}."
        )
    return x.size(0)


class CGS(nn.Module):
    r"""Convergent Graph Solver (Park, Choo & Park, ICLR 2022), with sparse transitions.

    For every head m = 1..M, input-dependent transition weights and bias

    .. math::
        s^m_{ji} = \phi_A([x_j, x_i, e_{ji}])_m,\quad c^m_i = \phi_S(x_i)_m,\quad
        A^m_{ij} = \frac{\exp s^m_{ji}}{\exp c^m_i + \sum_{k \to i} \exp s^m_{ki}},\quad
        B^m = \phi_B(X)_m \in \mathbb{R}^{N \times d}

    define the linear fixed-point equation, solved exactly (direct) or iteratively,

    .. math::
        H^m = \gamma A^m H^m + B^m \quad\Longleftrightarrow\quad H^m = (I - \gamma A^m)^{-1} B^m,

    and the decoder reads :math:`y_i = \phi_D([H^1_i, \dots, H^M_i, x_i])`.

    **Contraction by construction.** Each row of :math:`A^m` is non-negative and sums to
    :math:`1 - \sigma^m_i < 1` (the "sink" logit :math:`c_i` takes the rest, which lets rows
    differ per node, as in a leaky diffusion), so :math:`\|\gamma A^m\|_\infty \le \gamma < 1`.
    The map :math:`H \mapsto \gamma A^m H + B^m` is then a contraction in the max-row norm and,
    by Banach's theorem, has exactly one fixed point for *every* input graph, which Picard
    iteration reaches at rate γ and :math:`I - \gamma A^m` is invertible (its spectrum lies in
    the disc of radius γ around 1). Gradients follow from the implicit function theorem:
    with :math:`G = (I - \gamma A)^{-\top} \partial L/\partial H`,
    :math:`\partial L / \partial B = G` and :math:`\partial L/\partial A_{ij} = \gamma G_i H_j`
    on the edges only — A is never densified (the reference implementation builds a dense
    N×N×M tensor).

    Args:
        in_channels: node feature size F.
        hidden_channels: state size d per head.
        out_channels: decoder output size (``None``: return the states [N, M·d]).
        edge_dim: edge feature size (0: no edge features).
        num_heads: M.
        gamma: contraction factor γ ∈ (0, 1).
        mlp_channels: hidden width of φ_A, φ_S, φ_B and φ_D.
        solver: method of :func:`dyngraph.solvers.solve_linear` (``"auto"``: direct up to
            50k unknowns, else GMRES; also ``"anderson"``, ``"picard"``, ...).
        tol, rtol, max_iter: tolerances of iterative methods (forward and adjoint).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int | None = None,
        *,
        edge_dim: int = 0,
        num_heads: int = 4,
        gamma: float = 0.95,
        mlp_channels: int = 64,
        solver: str = "auto",
        tol: float = 0.0,
        rtol: float = 1e-8,
        max_iter: int = 1000,
    ) -> None:
        super().__init__()
        if not 0.0 < gamma < 1.0:
            raise ConfigError(f"CGS: gamma must be in (0, 1) for a contraction, got {gamma}.")
        if solver not in LINEAR_METHODS:
            raise ConfigError(f"CGS: unknown solver {solver!r}; choose from {LINEAR_METHODS}.")
        if min(in_channels, hidden_channels, num_heads, mlp_channels) < 1 or edge_dim < 0:
            raise ConfigError("CGS: channel sizes and num_heads must be positive.")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.edge_dim = out_channels, edge_dim
        self.num_heads, self.gamma = num_heads, float(gamma)
        self.solver, self.tol, self.rtol, self.max_iter = solver, tol, rtol, max_iter
        h = mlp_channels
        self.edge_mlp = _mlp([2 * in_channels + edge_dim, h, num_heads])
        self.sink_mlp = _mlp([in_channels, h, num_heads])
        self.bias_mlp = _mlp([in_channels, h, num_heads * hidden_channels])
        self.decoder = (
            _mlp([num_heads * hidden_channels + in_channels, h, out_channels])
            if out_channels is not None
            else None
        )
        self.last_report: SolverReport | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every ``nn.Linear`` submodule (encoder, the contraction's maps, decoder).
        """
        _reset(self)

    def transition(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None
    ) -> Tensor:
        """Normalised per-head transition weights A^m_{ij} on the edges, [E, M] (without γ)."""
        N = _check_graph(x, edge_index, "CGS")
        src, dst = edge_index
        feats = [x.index_select(0, src), x.index_select(0, dst)]
        if self.edge_dim:
            if edge_attr is None or edge_attr.shape != (edge_index.size(1), self.edge_dim):
                got = None if edge_attr is None else tuple(edge_attr.shape)
                raise ShapeError(
                    f"CGS: edge_attr must be [E, {self.edge_dim}] = "
                    f"[{edge_index.size(1)}, {self.edge_dim}], got {got}."
                )
            feats.append(edge_attr)
        logits = self.edge_mlp(torch.cat(feats, 1))
        return softmax_with_sink(logits, self.sink_mlp(x), dst, N)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None
    ) -> Tensor:
        """Args:
            x: node features [N, F].
            edge_index: [2, E], messages flow source → target.
            edge_attr: edge features [E, edge_dim] (when ``edge_dim > 0``).

        Returns:
            [N, out_channels] (or the fixed-point states [N, M·d] without a decoder).
            ``self.last_report`` holds the forward solve's report.
        """
        N = x.size(0)
        w = self.transition(x, edge_index, edge_attr)  # [E, M]
        M, d = self.num_heads, self.hidden_channels
        B = self.bias_mlp(x).view(N, M, d).permute(1, 0, 2).reshape(M * N, d)
        big_ei, big_w, NM = expand_heads(edge_index, w, N)
        H, self.last_report = linear_fixed_point(
            big_ei, big_w, B, self.gamma, num_nodes=NM, method=self.solver, tol=self.tol,
            rtol=self.rtol, max_iter=self.max_iter, return_report=True,
        )
        H = H.view(M, N, d).permute(1, 0, 2).reshape(N, M * d)
        if self.decoder is None:
            return H
        return self.decoder(torch.cat([H, x], 1))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"{self.out_channels}, edge_dim={self.edge_dim}, heads={self.num_heads}, "
            f"gamma={self.gamma}, solver={self.solver!r})"
        )


ConvergentGraphSolver = CGS

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": torch.relu, "tanh": torch.tanh}


class IGNN(nn.Module):
    r"""Implicit graph neural network layer (Gu, Chang, Zhu, Sojoudi & El Ghaoui, NeurIPS 2020).

    Node states are the fixed point of

    .. math::
        H = \phi\big(\hat A\, H\, W^\top + X\,\Omega^\top + b\big),

    (the paper's :math:`X = \phi(W X A + B U)` written node-major), with φ a component-wise
    non-expansive activation (ReLU, tanh). It is well posed — unique fixed point, reached by
    fixed-point iteration — when :math:`\lambda_{pf}(|W| \otimes |\hat A|) =
    \lambda_{pf}(|W|)\,\lambda_{pf}(|\hat A|) < 1`. Since :math:`\lambda_{pf}(|W|) \le
    \|W\|_\infty`, every forward projects W (in place, rows onto an ℓ1 ball) onto

    .. math::
        \{ W : \|W\|_\infty \le \kappa / \lambda_{pf}(\hat A) \},\qquad \kappa < 1,

    which guarantees the condition. Gradients come from the implicit function theorem
    (:func:`dyngraph.solvers.implicit_fixed_point`), not from unrolled iterations.

    Args:
        in_channels: input feature size F.
        hidden_channels: state size m.
        kappa: κ ∈ (0, 1), the well-posedness margin.
        activation: ``"relu"`` (paper), ``"tanh"`` or a callable non-expansive map.
        normalize: use the GCN-normalised adjacency D^{-1/2}(A + I)D^{-1/2} (λ_pf = 1 for
            undirected graphs); otherwise A is taken as given by ``edge_weight``.
        solver: ``"anderson"``, ``"picard"`` or ``"broyden"``.
        tol, rtol, max_iter: stopping rule of the forward and adjoint solves.
        raise_on_failure: raise :class:`~dyngraph.errors.ConvergenceError` when a solve misses
            its tolerance (default); ``False`` keeps the best iterate (e.g. early training).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        *,
        kappa: float = 0.95,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        normalize: bool = True,
        solver: str = "anderson",
        tol: float = 0.0,
        rtol: float = 1e-6,
        max_iter: int = 300,
        raise_on_failure: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < kappa < 1.0:
            raise ConfigError(f"IGNN: kappa must be in (0, 1), got {kappa}.")
        if isinstance(activation, str) and activation not in _ACTIVATIONS:
            raise ConfigError(f"IGNN: activation must be one of {sorted(_ACTIVATIONS)}.")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.kappa, self.normalize = float(kappa), normalize
        self.activation = activation
        self._act = _ACTIVATIONS[activation] if isinstance(activation, str) else activation
        self.solver, self.tol, self.rtol, self.max_iter = solver, tol, rtol, max_iter
        self.raise_on_failure = raise_on_failure
        self.weight = nn.Parameter(torch.empty(hidden_channels, hidden_channels))
        self.omega = nn.Linear(in_channels, hidden_channels)
        self.last_report: SolverReport | None = None
        self._pf_cache: tuple[tuple, float] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialise ``W`` ``[hidden, hidden]`` uniformly in :math:`\pm 1/\sqrt{hidden}` and
        :math:`\Omega`, and drop the cached projection.
        """
        bound = 1.0 / self.hidden_channels**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.omega.reset_parameters()
        self._pf_cache = None

    def _adjacency(
        self, edge_index: Tensor, edge_weight: Tensor | None, N: int
    ) -> tuple[SparseMatrix, float]:
        if self.normalize:
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, N, add_self_loops=True, dtype=self.weight.dtype
            )
        elif edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=self.weight.dtype)
        A = SparseMatrix(edge_index, edge_weight.to(self.weight.dtype), N)
        key = (N, edge_index.size(1), int(edge_index.sum()), float(edge_weight.abs().sum()))
        if self._pf_cache is None or self._pf_cache[0] != key:
            self._pf_cache = (key, spectral_radius(A, tol=1e-6))
        return A, self._pf_cache[1]

    @torch.no_grad()
    def project_(self, lambda_pf: float) -> None:
        """Project W in place onto ‖W‖∞ ≤ κ / λ_pf (no-op when already inside)."""
        W = project_rows_l1(self.weight, self.kappa / max(lambda_pf, 1e-12))
        if W is not self.weight:  # copying a no-op would still bump the version counter
            self.weight.copy_(W)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Args:
            x: node features [N, F].
            edge_index: [2, E] (source → target); edge_weight: [E] or None.

        Returns:
            fixed-point states H [N, hidden_channels]; ``self.last_report`` has the solve's
            report (its ``backward`` field is filled in by the backward pass).
        """
        N = _check_graph(x, edge_index, "IGNN")
        A, lam = self._adjacency(edge_index, edge_weight, N)
        self.project_(lam)
        U = self.omega(x)
        W = self.weight

        def f(h: Tensor) -> Tensor:
            return self._act(A.matmul(h) @ W.T + U)

        H, self.last_report = implicit_fixed_point(
            f, torch.zeros_like(U), solver=self.solver, tol=self.tol, rtol=self.rtol,
            max_iter=self.max_iter, raise_on_failure=self.raise_on_failure, return_report=True,
        )
        return H

    def __repr__(self) -> str:
        act = self.activation if isinstance(self.activation, str) else "custom"
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"kappa={self.kappa}, activation={act}, solver={self.solver!r})"
        )
