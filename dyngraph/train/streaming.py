"""Streaming link prediction for the memory models (TGN, JODIE, DyRep, APAN).

Protocol (TGN / DyGLib): chronological 70/15/15 split with held-out new nodes; every epoch
starts from empty memory and streams the training events in temporal batches (score the batch
against negatives, take a gradient step, then reveal the batch to the model); validation and
test continue the stream. Transductive metrics are over all events of a split, inductive ones
over the events touching a node never seen in training (same pass, so memory has seen every
earlier event). AP and AUC use one negative per positive; MRR ranks each positive against
``mrr_negatives`` negatives (TGB style).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dyngraph.errors import ConfigError
from dyngraph.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from dyngraph.train.optim import LeanAdam

__all__ = [
    "StreamingConfig",
    "LinkPredResult",
    "build_model",
    "make_optimizer",
    "train_epoch",
    "training_loss",
    "evaluate_stream",
    "train_link_prediction",
    "plot_learning_curve",
    "write_report",
    "final_evaluation",
    "node_time_scale",
]


@dataclass
class StreamingConfig:
    """Hyper-parameters of a streaming link-prediction run (defaults: the TGN paper's sizes,
    a learning rate and epoch budget that converge on UCI in a couple of minutes)."""

    model: str = "tgn"
    batch_size: int = 200
    epochs: int = 10
    lr: float = 1e-3
    memory_dim: int = 100
    time_dim: int = 100
    embedding_dim: int = 100
    num_neighbors: int = 10
    heads: int = 2
    dropout: float = 0.1
    patience: int = 3
    negatives: str = "random"
    mrr_negatives: int = 100
    seed: int = 0
    val_ratio: float = 0.15
    test_ratio: float = 0.15
    new_node_ratio: float = 0.1
    progress: bool = True
    #: PRES (Su et al. 2024) for large temporal batches; ``pres_mode`` picks the ablation:
    #: "both" (PRES), "prediction" (PRES-V: prediction-correction only), "coherence"
    #: (PRES-S: memory-coherence loss only)
    pres: bool = False
    pres_mode: str = "both"
    pres_components: int = 2
    pres_gamma: float = 0.1
    pres_beta: float = 0.1

    def model_kwargs(self) -> dict[str, Any]:
        """The model hyper-parameters of this config as keyword arguments for the memory-model
        presets.
        """
        return dict(memory_dim=self.memory_dim, time_dim=self.time_dim,
                    embedding_dim=self.embedding_dim, num_neighbors=self.num_neighbors,
                    heads=self.heads, dropout=self.dropout)


@dataclass
class LinkPredResult:
    """Figures of a run; :meth:`to_dict` is the JSON report."""

    config: dict[str, Any]
    dataset: str
    test: dict[str, float]
    val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_events_per_s: float = 0.0
    epoch_times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain ``dict``: the JSON report."""
        return asdict(self)


def node_time_scale(stream) -> float:
    """Std of the time between consecutive events of the same node (JODIE's Δt normaliser)."""
    if stream.num_events < 2:
        return 1.0
    node = torch.cat([stream.src, stream.dst])
    t = torch.cat([stream.t, stream.t])
    order = torch.argsort(t, stable=True)
    order = order[torch.argsort(node[order], stable=True)]  # by node, then by time
    node, t = node[order], t[order]
    same = node[1:] == node[:-1]
    dt = (t[1:] - t[:-1])[same]
    scale = float(dt.std()) if dt.numel() > 1 else 1.0
    return scale if math.isfinite(scale) and scale > 0 else 1.0


PRES_MODES = ("both", "prediction", "coherence")


def build_model(cfg: StreamingConfig, num_nodes: int, feat_dim: int, time_scale: float = 1.0):
    """Build the preset named by ``cfg.model`` (with PRES attached when ``cfg.pres``)."""
    from dyngraph.nn.memory import build_memory_model

    model = build_memory_model(cfg.model, num_nodes, feat_dim, time_scale=time_scale,
                               **cfg.model_kwargs())
    if cfg.pres:
        from dyngraph.nn.pres import enable_pres

        if cfg.pres_mode not in PRES_MODES:
            raise ConfigError(f"pres_mode must be one of {PRES_MODES}, got {cfg.pres_mode!r}")
        enable_pres(model, num_components=cfg.pres_components, gamma=cfg.pres_gamma,
                    beta=cfg.pres_beta, prediction=cfg.pres_mode != "coherence",
                    coherence=cfg.pres_mode != "prediction")
    return model


def make_optimizer(model, lr: float) -> torch.optim.Optimizer:
    """Adam over ``model``'s parameters; the fused (single-kernel) implementation when every
    parameter is on the CPU or a CUDA device (one call instead of ~10 small ops per parameter
    tensor, ~0.5 ms per TGN step on CPU; same update rule), as :class:`LeanAdam`, which also
    skips torch's per-step list building."""
    params = list(model.parameters())
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                                 for p in params)
    try:
        return LeanAdam(params, lr=lr) if fused else torch.optim.Adam(params, lr=lr)
    except (RuntimeError, TypeError):  # an older torch without fused CPU Adam
        return torch.optim.Adam(params, lr=lr)


def training_loss(model, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Task loss (BCE on positive and negative logits) plus the model's auxiliary loss
    (PRES's memory-coherence term when PRES is on)."""
    loss = _loss(pos, neg)
    if getattr(model, "pres", None) is None and hasattr(model, "set_pres"):
        return loss  # a memory model without PRES: its auxiliary loss is zero
    aux = getattr(model, "auxiliary_loss", None)
    return loss + aux() if aux is not None else loss


class _LinkBCE(torch.autograd.Function):
    # mean BCE of positive logits (target 1) plus that of negative logits (target 0) as one
    # autograd node: softplus(-x) and softplus(x), gradients sigmoid(x) - 1 and sigmoid(x)
    @staticmethod
    def forward(ctx, pos, neg):
        ctx.save_for_backward(pos, neg)
        return F.softplus(-pos).mean() + F.softplus(neg).mean()

    @staticmethod
    def backward(ctx, g):
        pos, neg = ctx.saved_tensors
        g_pos = g_neg = None
        if ctx.needs_input_grad[0]:
            g_pos = (torch.sigmoid(pos) - 1.0).mul_(g / pos.numel())
        if ctx.needs_input_grad[1]:
            g_neg = torch.sigmoid(neg).mul_(g / neg.numel())
        return g_pos, g_neg


def _loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``BCE(pos, 1) + BCE(neg, 0)`` (means over each), one autograd node."""
    if pos.numel() == 0 or neg.numel() == 0 or not pos.is_floating_point():
        return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
                + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
    return _LinkBCE.apply(pos, neg)


def train_epoch(model, stream, index, sampler, optimizer, batch_size: int,
                progress: bool = False, desc: str = "train") -> dict[str, float]:
    """One pass over ``stream`` from empty memory (TGN's Algorithm 1). Returns mean loss,
    seconds and events/second."""
    model.train()
    model.reset_state()
    model.set_graph(index, stream.msg)
    total, n = 0.0, 0
    start = time.perf_counter()
    nb = math.ceil(stream.num_events / batch_size)
    for batch in tqdm(stream.batches(batch_size), total=nb, desc=desc, leave=False,
                      disable=not progress, mininterval=1.0):
        if batch.num_events == 0:
            continue
        neg = sampler.sample(batch, 1)
        optimizer.zero_grad(set_to_none=True)
        pos_out, neg_out = model(batch.src, batch.dst, batch.t, neg)
        loss = training_loss(model, pos_out, neg_out)
        loss.backward()
        optimizer.step()
        model.observe(batch.src, batch.dst, batch.t, batch.msg)
        total += float(loss.detach()) * batch.num_events
        n += batch.num_events
    secs = time.perf_counter() - start
    return {"loss": total / max(n, 1), "seconds": secs, "events_per_s": n / max(secs, 1e-9)}


@torch.no_grad()
def evaluate_stream(model, stream, index, sampler, batch_size: int, *,
                    mrr_negatives: int = 0, inductive_mask: torch.Tensor | None = None,
                    progress: bool = False, desc: str = "eval") -> dict[str, float]:
    """Stream ``stream`` through the model (score each batch, then reveal it), continuing from
    the current memory. Returns ``ap``, ``auc`` (one negative per event; ``ind_ap``/``ind_auc``
    over events in ``inductive_mask``) and, when ``mrr_negatives > 0``, ``mrr``."""
    from dyngraph.metrics import average_precision, mrr, roc_auc

    model.eval()
    model.set_graph(index, None if stream.msg is None else stream.msg)
    k = max(1, mrr_negatives)
    pos_all, neg_all, mrr_pos, mrr_neg = [], [], [], []
    nb = math.ceil(stream.num_events / batch_size)
    for batch in tqdm(stream.batches(batch_size), total=nb, desc=desc, leave=False,
                      disable=not progress, mininterval=1.0):
        if batch.num_events == 0:
            continue
        neg = sampler.sample(batch, k)
        pos_out, neg_out = model(batch.src, batch.dst, batch.t, neg)
        model.observe(batch.src, batch.dst, batch.t, batch.msg)
        pos_all.append(pos_out)
        neg_all.append(neg_out[:, 0])
        if mrr_negatives > 0:
            mrr_pos.append(pos_out)
            mrr_neg.append(neg_out)
    if not pos_all:
        return {"ap": float("nan"), "auc": float("nan")}
    pos, neg = torch.cat(pos_all), torch.cat(neg_all)
    out = _ap_auc(pos, neg, average_precision, roc_auc)
    if inductive_mask is not None and bool(inductive_mask.any()):
        m = inductive_mask.to(pos.device)
        ind = _ap_auc(pos[m], neg[m], average_precision, roc_auc)
        out.update(ind_ap=ind["ap"], ind_auc=ind["auc"])
    if mrr_negatives > 0:
        out["mrr"] = float(mrr(torch.cat(mrr_pos), torch.cat(mrr_neg)))
    return out


def _ap_auc(pos, neg, average_precision, roc_auc) -> dict[str, float]:
    scores = torch.cat([pos, neg]).sigmoid().double()
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).double()
    return {"ap": float(average_precision(scores, labels)), "auc": float(roc_auc(scores, labels))}


def _samplers(cfg: StreamingConfig, split):
    from dyngraph.data import RandomNegativeSampler, make_negative_sampler

    train_pool = torch.unique(split.train.dst) if split.train.num_events else split.full.dst_pool()
    train_s = RandomNegativeSampler(train_pool, seed=cfg.seed)
    val_s = make_negative_sampler(cfg.negatives, split, seed=cfg.seed + 1)
    test_s = make_negative_sampler(cfg.negatives, split, seed=cfg.seed + 2)
    return train_s, val_s, test_s


def train_link_prediction(split, cfg: StreamingConfig, *, checkpoint_dir: str | None = None,
                          resume: bool = False, dataset: str = "",
                          log=print, epoch_fn=None,
                          write_checkpoints: bool = True) -> tuple[Any, LinkPredResult]:
    """Train ``cfg.model`` on ``split.train`` with early stopping on validation AP, then test.

    Checkpoints every epoch into ``checkpoint_dir`` (``last.pt``); ``resume=True`` continues
    from it bit-for-bit (model, optimizer, RNG, early-stopping state, history).
    ``epoch_fn`` replaces :func:`train_epoch` (same signature; the data-parallel trainer of
    :mod:`dyngraph.train.distributed` passes its own); ``write_checkpoints=False`` reads but
    never writes checkpoints (ranks other than 0).
    Returns ``(model with the best weights, LinkPredResult)``.
    """
    epoch_fn = train_epoch if epoch_fn is None else epoch_fn
    from dyngraph.data import TemporalNeighborIndex

    if cfg.batch_size < 1 or cfg.epochs < 0:
        raise ConfigError(f"batch_size must be >= 1 and epochs >= 0, got {cfg.batch_size}, "
                          f"{cfg.epochs}")
    if split.train.num_events == 0:
        raise ConfigError("the training split is empty; use a longer stream or smaller "
                          "val/test ratios")
    torch.manual_seed(cfg.seed)
    full = split.full
    model = build_model(cfg, full.num_nodes, full.msg_dim, node_time_scale(split.train))
    optimizer = make_optimizer(model, cfg.lr)
    train_index = TemporalNeighborIndex(split.train)
    full_index = TemporalNeighborIndex(full)
    train_s, val_s, test_s = _samplers(cfg, split)

    start_epoch, best_ap, best_epoch, bad = 1, -math.inf, 0, 0
    best_state: dict[str, Any] | None = None
    history: list[dict[str, float]] = []
    if resume:
        if checkpoint_dir is None:
            raise ConfigError("--resume needs --checkpoint-dir")
        ck = load_checkpoint(checkpoint_dir)
        diff = _config_diff(ck["config"], asdict(cfg))
        if diff:
            raise ConfigError(f"checkpoint in {checkpoint_dir} was written with different "
                              f"settings ({diff}); resume with the same options")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        restore_rng_state(ck["rng"])
        start_epoch = ck["epoch"] + 1
        best_ap, best_epoch, bad = ck["best_ap"], ck["best_epoch"], ck["bad_epochs"]
        best_state, history = ck["best_state"], ck["history"]
        log(f"resumed from epoch {ck['epoch']} ({checkpoint_dir})")

    for epoch in range(start_epoch, cfg.epochs + 1):
        if bad >= cfg.patience:
            break
        train_s.reset(cfg.seed * 100_003 + epoch)
        stats = epoch_fn(model, split.train, train_index, train_s, optimizer,
                         cfg.batch_size, cfg.progress, desc=f"epoch {epoch}")
        val_s.reset()
        t0 = time.perf_counter()
        val = evaluate_stream(model, split.val, full_index, val_s, cfg.batch_size,
                              progress=cfg.progress, desc="val")
        rec = {"epoch": epoch, "loss": stats["loss"], "val_ap": val["ap"],
               "val_auc": val["auc"], "train_seconds": stats["seconds"],
               "eval_seconds": time.perf_counter() - t0,
               "train_events_per_s": stats["events_per_s"]}
        if getattr(model, "pres", None) is not None:
            rec["pres_gamma"] = float(model.pres.gamma.detach())
        history.append(rec)
        if val["ap"] > best_ap:
            best_ap, best_epoch, bad = val["ap"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        log(f"epoch {epoch:3d}  loss {stats['loss']:.4f}  val AP {val['ap']:.4f}  "
            f"AUC {val['auc']:.4f}  {stats['events_per_s']:,.0f} events/s  "
            f"({stats['seconds']:.1f}s train)")
        if checkpoint_dir is not None and write_checkpoints:
            save_checkpoint({
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": capture_rng_state(), "best_ap": best_ap, "best_epoch": best_epoch,
                "bad_epochs": bad, "best_state": best_state, "history": history,
                "config": asdict(cfg),
            }, checkpoint_dir)
        if bad >= cfg.patience:
            log(f"early stop: no validation improvement for {cfg.patience} epochs")
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    val, test = final_evaluation(model, split, cfg, train_index, full_index, val_s, test_s)
    eps = [h["train_events_per_s"] for h in history]
    result = LinkPredResult(
        config=asdict(cfg), dataset=dataset or getattr(full, "name", ""), test=test, val=val,
        history=history, best_epoch=best_epoch,
        train_events_per_s=float(sorted(eps)[len(eps) // 2]) if eps else 0.0,
        epoch_times=[h["train_seconds"] for h in history],
    )
    return model, result


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple]:
    # the epoch budget and progress display may change between runs, nothing else; a key
    # missing from an older checkpoint means the field's default
    defaults = asdict(StreamingConfig())
    return {k: (old.get(k, defaults.get(k)), v) for k, v in new.items()
            if k not in ("epochs", "progress") and old.get(k, defaults.get(k)) != v}


@torch.no_grad()
def final_evaluation(model, split, cfg: StreamingConfig, train_index, full_index,
                     val_s, test_s) -> tuple[dict[str, float], dict[str, float]]:
    """Replay the training stream into fresh memory, then evaluate validation and test."""
    from dyngraph.data import RandomNegativeSampler

    model.eval()
    model.reset_state()
    warm = RandomNegativeSampler(split.full.dst_pool(), seed=cfg.seed)
    evaluate_stream(model, split.train, train_index, warm, cfg.batch_size,
                    progress=cfg.progress, desc="replay train")
    val_s.reset()
    val = evaluate_stream(model, split.val, full_index, val_s, cfg.batch_size,
                          inductive_mask=split.val_inductive, progress=cfg.progress,
                          desc="val")
    test_s.reset()
    test = evaluate_stream(model, split.test, full_index, test_s, cfg.batch_size,
                           mrr_negatives=cfg.mrr_negatives, inductive_mask=split.test_inductive,
                           progress=cfg.progress, desc="test")
    return val, test


def plot_learning_curve(history: list[dict[str, float]], path: str | Path,
                        title: str = "") -> Path:
    """Training loss and validation AP per epoch, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ep = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6, 4))
    ax1.plot(ep, [h["loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(ep, [h["val_ap"] for h in history], "s-", color="tab:red", label="val AP")
    ax2.set_ylabel("validation AP", color="tab:red")
    ax1.set_title(title or "learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(result: LinkPredResult, path: str | Path) -> Path:
    """Write the JSON report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2, default=float))
    return path
