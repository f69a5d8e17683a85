r"""PRES: prediction-correction and memory coherence for large temporal batches.

Su, Zou & Wu, "PRES: Toward Scalable Memory-Based Dynamic Graph Neural Networks", ICLR 2024.

Events of one temporal batch are processed in parallel, so a node's memory is computed from
stale inputs (*temporal discontinuity*); the larger the batch, the noisier the memory the model
trains on. PRES (PREdict-to-Smooth) has two parts, usable with every memory preset:

**Prediction-correction.** Each node ``i`` keeps a model of its own memory *transitions*
:math:`\delta_i = s_i^{new} - s_i^{old}`, a ``K``-component diagonal Gaussian mixture

.. math::
    p(\delta_i) = \textstyle\sum_k \pi_{ik}\, \mathcal N(\delta_i;\, \mu_{ik},
    \operatorname{diag}\sigma^2_{ik}),

fitted by maximum likelihood to the transitions the node has gone through (online EM on the
mixture's sufficient statistics; for ``K = 1`` this *is* the exact MLE, running mean and
variance). When a batch updates the memory, the *prediction*
:math:`\hat s_i = s_i^{old} + \mathbb E[\delta_i] = s_i^{old} + \sum_k \pi_{ik}\mu_{ik}`
(the minimum-mean-square-error prediction under the mixture) is fused with the memory the
updater computed, :math:`\tilde s_i`:

.. math::
    s_i^{new} = \gamma\, \hat s_i + (1 - \gamma)\, \tilde s_i
             = s_i^{old} + (1-\gamma)\,\tilde\delta_i + \gamma\,\mathbb E[\delta_i],

i.e. the measured transition is shrunk toward the node's typical transition, which damps the
noise a stale batch adds (the correction step of a filter with a fixed gain). ``γ`` is a
learnable scalar (``γ = sigmoid(θ)``, trained by the task loss through the fused memory) or
fixed. The fused memory is what is persisted and used by later batches, and the mixture is
then updated with the *measured* transition :math:`\tilde\delta_i` (the measurement, not the
fused estimate, so the predictor cannot feed on its own output).

**Memory coherence.** The paper's convergence bound improves with the coherence between the
gradient computed from stale memory and from up-to-date memory; its surrogate objective keeps
a node's memory from swinging within an update:

.. math::
    \mathcal L_{coh} = \frac1{|U|}\sum_{i\in U} \big(1 - \cos(\tilde s_i, s_i^{old})\big),

over the nodes ``U`` updated in the batch (with non-zero old memory), added to the task loss
with weight ``β``. :math:`\tilde s_i` carries the autograd graph of the message function,
aggregator, updater and time encoder, so the term has a real gradient.

Differences from the released code (jwsu825/MDGNN_BS), which are bugs there: the mixture
predictor is actually used (there it is never called), counts are incremented and every
division is guarded (there ``count`` stays 0 and the predictor divides by it), the fused memory
is persisted (there it only feeds the current batch), and the coherence term is not detached.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyngraph.errors import ConfigError, ShapeError
from dyngraph.nn.memory.state import NodeBuffers

__all__ = [
    "GaussianMixtureTransition",
    "PRES",
    "gmm_log_prob",
    "fuse_memory",
    "memory_coherence_loss",
    "coherence_terms",
    "enable_pres",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------- pure functions
def gmm_log_prob(x: Tensor, log_pi: Tensor, mu: Tensor, var: Tensor) -> Tensor:
    r"""Per-component joint log density :math:`\log\pi_k + \log\mathcal N(x;\mu_k,\sigma^2_k)`.

    ``x``: ``[n, D]``; ``log_pi``: ``[n, K]``; ``mu``, ``var``: ``[n, K, D]`` -> ``[n, K]``.
    ``logsumexp`` over the last axis gives the mixture log-likelihood.
    """
    diff = x.unsqueeze(1) - mu
    ll = -0.5 * ((diff * diff) / var + var.log() + _LOG_2PI).sum(-1)
    return log_pi + ll


def fuse_memory(predicted: Tensor, computed: Tensor, gamma: Tensor | float,
                mask: Tensor | None = None) -> Tensor:
    r"""Correction step :math:`s = \gamma \hat s + (1-\gamma) \tilde s` on the rows in ``mask``
    (``[n]`` bool; other rows keep ``computed``). ``predicted``, ``computed``: ``[n, D]``."""
    fused = computed + gamma * (predicted - computed)
    if mask is None:
        return fused
    return torch.where(mask.unsqueeze(-1), fused, computed)


def coherence_terms(new: Tensor, old: Tensor, mask: Tensor | None = None
                    ) -> tuple[Tensor, Tensor]:
    r"""Per-row :math:`1 - \cos(s^{new}_i, s^{old}_i)` over the rows in ``mask`` whose old
    memory is non-zero (the cosine is undefined for a fresh node); returns ``(terms [m],
    keep [n] bool)``. ``new`` keeps its autograd graph; ``old`` is treated as a constant."""
    old = old.detach()
    keep = old.abs().sum(-1) > 0
    if mask is not None:
        keep = keep & mask
    cos = F.cosine_similarity(new[keep], old[keep], dim=-1, eps=1e-8)
    return 1.0 - cos, keep


def memory_coherence_loss(new: Tensor, old: Tensor, mask: Tensor | None = None) -> Tensor:
    r""":math:`\mathrm{mean}_i\,(1 - \cos(s^{new}_i, s^{old}_i))` over the rows of
    :func:`coherence_terms`; zero (with a graph) when no row qualifies."""
    terms, _ = coherence_terms(new, old, mask)
    if terms.numel() == 0:
        return new.sum() * 0.0
    return terms.mean()


# ---------------------------------------------------------------------- transition model
class GaussianMixtureTransition(NodeBuffers):
    r"""Per-node diagonal Gaussian mixture over memory transitions, fitted online by EM.

    Sufficient statistics per node ``i`` and component ``k``: :math:`S^0_{ik}=\sum_t r_{tk}`,
    :math:`S^1_{ik}=\sum_t r_{tk}\delta_t`, :math:`S^2_{ik}=\sum_t r_{tk}\delta_t^2` with
    responsibilities :math:`r_{tk}\propto\pi_k\mathcal N(\delta_t;\mu_k,\sigma_k^2)` computed
    with the parameters current when :math:`\delta_t` arrives (incremental EM, Neal & Hinton
    1998). Parameters: :math:`\pi_k = S^0_k/\sum_j S^0_j`, :math:`\mu_k = S^1_k/S^0_k`,
    :math:`\sigma^2_k = (S^2_k - S^0_k\mu_k^2 + \bar v)/(S^0_k + 1)` (MAP with one
    pseudo-observation at the node's pooled variance :math:`\bar v`, floored at
    :math:`\sigma^2_{min}`). A node's first ``K`` transitions each seed one component (a
    symmetric start would never separate them).

    The mixture's mean :math:`\sum_k\pi_k\mu_k = \sum_k S^1_k / \sum_k S^0_k` is the
    sample mean of the node's transitions *whatever* the responsibilities, so the predictor
    of :class:`PRES` (the mixture mean) equals that of a single Gaussian fitted by maximum
    likelihood; the components matter for the likelihood and the predictive variance.

    Args:
        num_nodes: ``N`` (grows with :meth:`grow`); dim: memory dimension ``D``;
        num_components: ``K``; var_floor: :math:`\sigma^2_{min}` (keeps densities finite).
    """

    def __init__(self, num_nodes: int, dim: int, num_components: int = 2,
                 var_floor: float = 1e-4) -> None:
        super().__init__()
        if num_components < 1 or dim < 1 or var_floor <= 0:
            raise ConfigError(f"need num_components >= 1, dim >= 1, var_floor > 0; got "
                              f"{num_components}, {dim}, {var_floor}")
        self.dim, self.num_components, self.var_floor = dim, num_components, var_floor
        k = num_components
        self.register_buffer("s0", torch.zeros(num_nodes, k, dtype=torch.float64))
        self.register_buffer("s1", torch.zeros(num_nodes, k, dim, dtype=torch.float64))
        self.register_buffer("s2", torch.zeros(num_nodes, k, dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(num_nodes, dtype=torch.long))

    _BUFFERS = ("s0", "s1", "s2", "count")

    @property
    def num_nodes(self) -> int:
        """Number of node slots tracked."""
        return self.count.numel()

    def params(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log_pi [n, K], mu [n, K, D], var [n, K, D])`` (float64) of ``nodes``; unused
        components get ``log_pi = -inf``."""
        s0, s1, s2 = self.s0[nodes], self.s1[nodes], self.s2[nodes]
        w = s0.clamp(min=1e-12).unsqueeze(-1)
        mu = s1 / w
        # MAP variance with one pseudo-observation at the node's pooled variance: without it a
        # freshly seeded component has zero spread, never wins a responsibility and the
        # mixture collapses onto one component; its weight fades as data accumulate
        n_tot = s0.sum(-1).clamp(min=1e-12).unsqueeze(-1)
        m_tot = s1.sum(1) / n_tot
        v_pool = (s2.sum(1) / n_tot - m_tot * m_tot).clamp(min=self.var_floor).unsqueeze(1)
        scatter = (s2 - s1 * mu).clamp(min=0.0)
        var = ((scatter + v_pool) / (w + 1.0)).clamp(min=self.var_floor)
        tot = s0.sum(-1, keepdim=True)
        log_pi = torch.where(s0 > 0, (s0 / tot.clamp(min=1e-12)).log(),
                             torch.full_like(s0, -math.inf))
        return log_pi, mu, var

    def log_likelihood(self, nodes: Tensor, x: Tensor) -> Tensor:
        """Mixture log-likelihood ``[n]`` of transitions ``x`` ``[n, D]`` of ``nodes``."""
        log_pi, mu, var = self.params(nodes)
        return torch.logsumexp(gmm_log_prob(x.double(), log_pi, mu, var), dim=-1)

    def predict(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""``(mean [n, D], var [n, D], valid [n])``: the mixture's mean
        :math:`\sum_k\pi_k\mu_k` and variance of ``nodes``' next transition; ``valid`` is
        False for nodes without any observed transition (mean 0 there)."""
        log_pi, mu, var = self.params(nodes)
        pi = log_pi.exp().unsqueeze(-1)
        mean = (pi * mu).sum(1)
        second = (pi * (var + mu * mu)).sum(1)
        valid = self.count[nodes] > 0
        mean = torch.where(valid.unsqueeze(-1), mean, torch.zeros_like(mean))
        return mean, (second - mean * mean).clamp(min=0.0), valid

    @torch.no_grad()
    def update(self, nodes: Tensor, x: Tensor) -> None:
        """Add one observed transition ``x[j]`` ``[n, D]`` for each (unique) node ``nodes[j]``."""
        if nodes.numel() == 0:
            return
        if x.dim() != 2 or x.shape != (nodes.numel(), self.dim):
            raise ShapeError(f"transitions must be [{nodes.numel()}, {self.dim}], got "
                             f"{tuple(x.shape)}")
        x = x.detach().double()
        k = self.num_components
        cnt = self.count[nodes]
        seeding = cnt < k
        resp = torch.zeros(nodes.numel(), k, dtype=torch.float64, device=x.device)
        if bool(seeding.any()):
            rows = seeding.nonzero().view(-1)
            resp[rows, cnt[rows]] = 1.0
        if bool((~seeding).any()):
            rows = (~seeding).nonzero().view(-1)
            log_pi, mu, var = self.params(nodes[rows])
            resp[rows] = torch.softmax(gmm_log_prob(x[rows], log_pi, mu, var), dim=-1)
        r = resp.unsqueeze(-1)
        self.s0[nodes] += resp
        self.s1[nodes] += r * x.unsqueeze(1)
        self.s2[nodes] += r * (x * x).unsqueeze(1)
        self.count[nodes] += 1

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, dim={self.dim}, "
                f"num_components={self.num_components}")


# ---------------------------------------------------------------------- PRES
class PRES(nn.Module):
    r"""PRES for a :class:`~dyngraph.nn.memory.MemoryModel` (attach with :func:`enable_pres`).

    Args:
        num_nodes: ``N``; memory_dim: ``D``.
        num_components: ``K`` of the per-node transition mixture.
        gamma: fusion weight :math:`\gamma` (initial value when learnable), in ``[0, 1)``.
        learn_gamma: train :math:`\gamma = \mathrm{sigmoid}(\theta)` with the task loss.
        beta: weight :math:`\beta` of the memory-coherence loss.
        prediction: use prediction-correction (off: PRES-S ablation, coherence only).
        coherence: add the coherence loss (off: PRES-V ablation, prediction only).
        var_floor: variance floor of the mixture.
    """

    def __init__(self, num_nodes: int, memory_dim: int, num_components: int = 2,
                 gamma: float = 0.1, learn_gamma: bool = True, beta: float = 0.1,
                 prediction: bool = True, coherence: bool = True,
                 var_floor: float = 1e-4) -> None:
        super().__init__()
        if not 0.0 <= gamma < 1.0:
            raise ConfigError(f"PRES gamma must be in [0, 1), got {gamma}")
        if beta < 0:
            raise ConfigError(f"PRES beta must be >= 0, got {beta}")
        self.prediction, self.coherence = prediction, coherence
        self.beta, self.learn_gamma, self.gamma_init = beta, learn_gamma, gamma
        self.transition = GaussianMixtureTransition(num_nodes, memory_dim, num_components,
                                                    var_floor)
        logit = math.log(gamma / (1 - gamma)) if gamma > 0 else -math.inf
        if learn_gamma:
            self.gamma_logit = nn.Parameter(torch.tensor(max(logit, -20.0)))
        else:
            self.register_buffer("gamma_logit", torch.tensor(logit))

    @property
    def gamma(self) -> Tensor:
        r"""The learned fusion weight :math:`\gamma = \sigma(\text{gamma\_logit}) \in (0, 1)`
        (scalar tensor).
        """
        return torch.sigmoid(self.gamma_logit)

    def reset_parameters(self) -> None:
        r"""Set :math:`\gamma` back to ``gamma_init`` and reset the transition statistics."""
        logit = math.log(self.gamma_init / (1 - self.gamma_init)) if self.gamma_init > 0 \
            else -20.0
        with torch.no_grad():
            self.gamma_logit.fill_(logit)
        self.reset()

    def reset(self) -> None:
        """Forget all transitions (every epoch starts from empty memory, so does the model)."""
        self.transition.reset()

    def grow(self, num_nodes: int) -> None:
        """Make room for node ids ``< num_nodes`` in the transition model."""
        self.transition.grow(num_nodes)

    def forward(self, n_id: Tensor, prev: Tensor, computed: Tensor,
                updated: Tensor) -> Tensor:
        r"""Prediction-correction for nodes ``n_id`` ``[n]``: ``prev`` ``[n, D]`` memory before
        the update, ``computed`` ``[n, D]`` the updater's result, ``updated`` ``[n]`` rows that
        were updated. Returns the fused memory ``[n, D]`` (= ``computed`` where not updated,
        where the node has no transition history yet, or with ``prediction=False``)."""
        if not self.prediction or n_id.numel() == 0:
            return computed
        mean, _, valid = self.transition.predict(n_id)
        predicted = prev.detach() + mean.to(computed.dtype)
        return fuse_memory(predicted, computed, self.gamma.to(computed.dtype), updated & valid)

    @torch.no_grad()
    def observe(self, nodes: Tensor, prev: Tensor, computed: Tensor) -> None:
        """Maximum-likelihood update of the transition model with the measured transitions
        ``computed - prev`` of ``nodes`` (unique)."""
        if self.prediction:
            self.transition.update(nodes, computed.detach() - prev.detach())

    def loss(self, prev: Tensor, computed: Tensor, updated: Tensor) -> Tensor:
        r""":math:`\beta\,\mathcal L_{coh}` over the updated rows (0 when ``coherence=False``)."""
        if not self.coherence or self.beta == 0:
            return computed.sum() * 0.0
        return self.beta * memory_coherence_loss(computed, prev, updated)

    def extra_repr(self) -> str:
        return (f"components={self.transition.num_components}, gamma={float(self.gamma):.3f}"
                f"{' (learnable)' if self.learn_gamma else ''}, beta={self.beta}, "
                f"prediction={self.prediction}, coherence={self.coherence}")


def enable_pres(model: nn.Module, **kwargs) -> PRES:
    """Build a :class:`PRES` sized for ``model`` (a ``MemoryModel``), attach it and return it.
    ``kwargs`` go to :class:`PRES`."""
    if not hasattr(model, "set_pres"):
        raise ConfigError(f"PRES needs a memory model (MemoryModel), got "
                          f"{type(model).__name__}")
    pres = PRES(model.num_nodes, model.memory_dim, **kwargs)
    device = model.state.memory.device
    model.set_pres(pres.to(device))
    return pres
