"""Training and evaluation of a :class:`~dyngraph.bilevel.Surrogate` (checkpoint + resume)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from dyngraph.bilevel.data import ScenarioSet, generate_scenarios
from dyngraph.bilevel.surrogate import Surrogate, SurrogateConfig
from dyngraph.errors import ConfigError, DataError
from dyngraph.traffic.network import TrafficNetwork

__all__ = ["TrainConfig", "SurrogateMetrics", "FittedSurrogate", "train_surrogate",
           "evaluate_surrogate", "fit_surrogate"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_surrogate`.

    Args:
        epochs: passes over the training set.
        batch_size: scenarios per step.
        lr: Adam learning rate (cosine-decayed to ``lr * lr_min_ratio``).
        weight_decay: AdamW weight decay.
        ttt_weight: weight of the relative total-travel-time error in the loss (the GA ranks
            designs by TTT, so it is trained on directly as well as on flows).
        patience: stop after this many epochs without validation improvement (0: never).
        seed: shuffling seed.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    lr_min_ratio: float = 0.02
    weight_decay: float = 1e-4
    ttt_weight: float = 0.1
    patience: int = 0
    seed: int = 0


@dataclass
class SurrogateMetrics:
    """Accuracy on a scenario set.

    ``ttt_accuracy`` = 1 - mean |TTT_pred - TTT_true| / TTT_true (the paper's measure);
    ``flow_r2`` = 1 - SS_res / SS_tot over all (scenario, link) flows.
    """

    n: int
    ttt_accuracy: float
    ttt_mape: float
    flow_r2: float
    flow_mae: float
    ms_per_scenario: float

    def __str__(self) -> str:
        return (f"n={self.n}: TTT accuracy {100 * self.ttt_accuracy:.2f}%, flow R2 "
                f"{self.flow_r2:.4f}, flow MAE {self.flow_mae:.1f}, "
                f"{self.ms_per_scenario:.3f} ms/scenario")


@dataclass
class TrainHistory:
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_ttt_accuracy: list = field(default_factory=list)
    val_flow_r2: list = field(default_factory=list)
    seconds: list = field(default_factory=list)


def _loss(s: Surrogate, cap: torch.Tensor, dem, flows: torch.Tensor, ttt: torch.Tensor,
          ttt_weight: float) -> torch.Tensor:
    pred = s.forward_flows(cap, dem)
    sd = s.stats["flow_sd"]
    loss = (((pred - flows) / sd) ** 2).mean()
    if ttt_weight > 0:
        # clamped: an untrained surrogate (e.g. fine-tuned during a refresh) can be off by
        # orders of magnitude, and a squared 1e12 would overflow the gradient norm
        rel = ((s.ttt_from_flows(pred, cap) - ttt) / ttt).clamp(-1.0, 1.0)
        loss = loss + ttt_weight * (rel ** 2).mean() * 1e2
    return loss


@torch.no_grad()
def evaluate_surrogate(surrogate: Surrogate, data: ScenarioSet,
                       batch_size: int = 1024) -> SurrogateMetrics:
    """TTT accuracy, link-flow R² and inference time per scenario on ``data``."""
    if data.fingerprint != surrogate.fingerprint:
        raise ConfigError("scenarios and surrogate belong to different networks")
    if len(data) == 0:
        raise DataError("no scenarios to evaluate on")
    t0 = time.perf_counter()
    pred = surrogate.predict_flows(data.capacity, data.demand, batch_size=batch_size)
    dt = time.perf_counter() - t0
    net = surrogate.network
    t = net.free_flow_time * (1.0 + net.b * (pred / data.capacity) ** net.power)
    ttt = (pred * t).sum(-1)
    rel = np.abs(ttt - data.total_travel_time) / data.total_travel_time
    y = data.flows
    r2 = 1.0 - float(((pred - y) ** 2).sum()) / float(((y - y.mean()) ** 2).sum())
    return SurrogateMetrics(n=len(data), ttt_accuracy=float(1 - rel.mean()),
                            ttt_mape=float(rel.mean()), flow_r2=r2,
                            flow_mae=float(np.abs(pred - y).mean()),
                            ms_per_scenario=1e3 * dt / len(data))


def train_surrogate(
    surrogate: Surrogate,
    train: ScenarioSet,
    val: ScenarioSet | None = None,
    config: TrainConfig | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    set_stats: bool = True,
    max_seconds: float | None = None,
) -> TrainHistory:
    """Fit ``surrogate`` to ``train`` (MSE on per-link standardised flows + a TTT term).

    Args:
        val: scored every epoch; the best-validation weights are kept (by TTT accuracy).
        checkpoint: file written after every epoch (model, optimiser, scheduler, history,
            best weights); with ``resume`` an existing one is continued.
        set_stats: set the flow normalisation from ``train`` (False when fine-tuning).
        max_seconds: stop after this wall time (the checkpoint lets a later call resume).

    Returns:
        The training history.
    """
    cfg = config or TrainConfig()
    if train.fingerprint != surrogate.fingerprint:
        raise ConfigError("training scenarios were solved on another network than the "
                          "surrogate's; generate scenarios on this network")
    if len(train) == 0:
        raise DataError("empty training set")
    ck = Path(checkpoint) if checkpoint is not None else None
    opt = torch.optim.AdamW(surrogate.model.parameters(), lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(train) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(cfg.epochs * steps_per_epoch, 1), eta_min=cfg.lr * cfg.lr_min_ratio)
    hist = TrainHistory()
    start, best, best_state, bad = 0, -np.inf, None, 0
    if ck is not None and resume and ck.is_file():
        st = torch.load(ck, map_location="cpu", weights_only=False)
        if st["config"] != asdict(cfg):
            raise ConfigError(f"{ck} was written with other training settings; pass the same "
                              "TrainConfig to resume, or resume=False / another checkpoint")
        surrogate.load_state(st["surrogate"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        hist = TrainHistory(**st["history"])
        start, best, best_state, bad = st["epoch"], st["best"], st["best_state"], st["bad"]
    elif set_stats:
        surrogate.fit_stats(train)

    cap_all = torch.as_tensor(train.capacity, dtype=torch.float32)
    dem_all = torch.as_tensor(train.demand, dtype=torch.float32)
    flow_all = torch.as_tensor(train.flows, dtype=torch.float32)
    ttt_all = torch.as_tensor(train.total_travel_time, dtype=torch.float32)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(start):  # same shuffles as an uninterrupted run
        torch.randperm(len(train), generator=gen)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc="surrogate", unit="epoch")
    t_start = time.perf_counter()
    try:
        for ep in range(start, cfg.epochs):
            surrogate.model.train()
            perm = torch.randperm(len(train), generator=gen)
            tot, t0 = 0.0, time.perf_counter()
            for lo in range(0, len(train), cfg.batch_size):
                idx = perm[lo:lo + cfg.batch_size]
                loss = _loss(surrogate, cap_all[idx], dem_all[idx], flow_all[idx],
                             ttt_all[idx], cfg.ttt_weight)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(surrogate.model.parameters(), 5.0)
                opt.step()
                sched.step()
                tot += float(loss.detach()) * len(idx)
            hist.epoch.append(ep + 1)
            hist.train_loss.append(tot / len(train))
            hist.seconds.append(time.perf_counter() - t0)
            if val is not None and len(val):
                m = evaluate_surrogate(surrogate, val)
                hist.val_ttt_accuracy.append(m.ttt_accuracy)
                hist.val_flow_r2.append(m.flow_r2)
                score = m.ttt_accuracy + m.flow_r2
                if score > best:
                    best, bad = score, 0
                    best_state = {k: v.clone() for k, v in
                                  surrogate.model.state_dict().items()}
                else:
                    bad += 1
            if bar is not None:
                bar.update(1)
                post = {"loss": f"{hist.train_loss[-1]:.4g}"}
                if hist.val_ttt_accuracy:
                    post.update(ttt=f"{100 * hist.val_ttt_accuracy[-1]:.2f}%",
                                r2=f"{hist.val_flow_r2[-1]:.4f}")
                bar.set_postfix(post)
            if ck is not None:
                _save_checkpoint(ck, surrogate, opt, sched, hist, ep + 1, best, best_state,
                                 bad, cfg)
            if cfg.patience and bad >= cfg.patience:
                break
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                break
    finally:
        if bar is not None:
            bar.close()
    finished = len(hist.epoch) >= cfg.epochs or bool(cfg.patience and bad >= cfg.patience)
    if finished and best_state is not None:
        surrogate.model.load_state_dict(best_state)
    return hist


def _save_checkpoint(path: Path, s: Surrogate, opt, sched, hist: TrainHistory, epoch: int,
                     best: float, best_state, bad: int, cfg: TrainConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"surrogate": s.state(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "history": asdict(hist), "epoch": epoch,
                "best": best, "best_state": best_state, "bad": bad, "config": asdict(cfg)}, tmp)
    os.replace(tmp, path)


@dataclass
class FittedSurrogate:
    """What :func:`fit_surrogate` produced: the trained surrogate, where it was saved, the
    scenario splits (``train`` doubles as the replay set of a refresh) and held-out metrics."""

    surrogate: Surrogate
    path: Path
    train: ScenarioSet
    val: ScenarioSet
    test: ScenarioSet
    metrics: SurrogateMetrics
    history: TrainHistory


def fit_surrogate(
    network: TrafficNetwork,
    scenarios: int,
    cache: str | os.PathLike,
    config: SurrogateConfig | None = None,
    train_config: TrainConfig | None = None,
    test_fraction: float = 0.1,
    val_fraction: float = 0.05,
    n_jobs: int = 1,
    progress: bool = True,
) -> FittedSurrogate:
    """Solve scenarios, train a surrogate and save it — the whole lower-level pipeline.

    Every stage resumes from ``cache``: solved scenarios are streamed to
    ``cache/scenarios``, training checkpoints every epoch to ``cache/surrogate_checkpoint.pt``,
    and the result is written to ``cache/surrogate.pt``. Re-running the same call after an
    interruption (or with more epochs) continues instead of starting over.

    Args:
        network: the road network (scenarios perturb its demand and capacities with the
            paper's ranges, see :func:`~dyngraph.bilevel.generate_scenarios`).
        scenarios: how many scenarios to solve exactly (all are reused on a re-run).
        cache: folder for scenarios, checkpoint and the trained surrogate.
        config: surrogate architecture (default :class:`SurrogateConfig`).
        train_config: training hyper-parameters (default :class:`TrainConfig`); its ``seed``
            also fixes the train/val/test split.
        n_jobs: processes solving scenarios.

    Returns:
        :class:`FittedSurrogate` with the surrogate, its path, the splits and the held-out
        metrics.
    """
    cache = Path(cache)
    tc = train_config or TrainConfig()
    data = generate_scenarios(network, scenarios, cache / "scenarios", n_jobs=n_jobs,
                              progress=progress)
    train, val, test = data.split(test_fraction, val_fraction, seed=tc.seed)
    sur = Surrogate(network, config or SurrogateConfig(seed=tc.seed))
    hist = train_surrogate(sur, train, val, tc, checkpoint=cache / "surrogate_checkpoint.pt",
                           progress=progress)
    path = sur.save(cache / "surrogate.pt")
    return FittedSurrogate(sur, path, train, val, test, evaluate_surrogate(sur, test), hist)
