"""``search(...)``: run a controller against an objective with a trial/time budget, log every
trial, resume from the log, and retrain the winner over several seeds."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from dyngraph.errors import ConfigError
from dyngraph.nas.architecture import Architecture
from dyngraph.nas.controllers import Controller, Proposal, make_controller
from dyngraph.nas.log import TrialLog
from dyngraph.nas.runners import InProcessRunner
from dyngraph.nas.sharing import ParameterBank
from dyngraph.nas.space import SearchSpace

__all__ = ["search", "SearchResult", "retrain"]


@dataclass
class SearchResult:
    """All trials of a search (log records, in order) and the best architecture."""

    space: SearchSpace
    trials: list[dict[str, Any]]
    controller: str
    sharing: bool
    elapsed: float = 0.0
    replayed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def _best_index(self, n: int | None = None) -> int:
        recs = self.trials[: n if n is not None else len(self.trials)]
        if not recs:
            raise ConfigError("no trial has finished yet")
        return max(range(len(recs)), key=lambda i: (recs[i]["reward"], -i))

    @property
    def best(self) -> Architecture:
        """Architecture of the highest-reward trial (the earliest on ties)."""
        return Architecture.from_dict(self.trials[self._best_index()]["arch"])

    @property
    def best_reward(self) -> float:
        """Reward of the highest-reward trial."""
        return float(self.trials[self._best_index()]["reward"])

    def best_after(self, n: int) -> dict[str, Any]:
        """Record of the best (by reward) trial among the first ``n``."""
        return self.trials[self._best_index(n)]

    def top(self, k: int, n: int | None = None) -> list[dict[str, Any]]:
        """Records of the ``k`` best distinct architectures among the first ``n`` trials, by
        reward (earliest first on ties)."""
        recs = self.trials[: n if n is not None else len(self.trials)]
        order = sorted(range(len(recs)), key=lambda i: (-recs[i]["reward"], i))
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i in order:
            key = Architecture.from_dict(recs[i]["arch"]).key
            if key not in seen:
                seen.add(key)
                out.append(recs[i])
            if len(out) == k:
                break
        return out

    def curve(self) -> list[float]:
        """Best reward so far after each trial."""
        out, best = [], -math.inf
        for r in self.trials:
            best = max(best, r["reward"])
            out.append(best)
        return out

    def trials_per_minute(self) -> float:
        """Throughput: trials per minute of summed trial time (``inf`` if that is 0)."""
        secs = sum(r["seconds"] for r in self.trials)
        return 60.0 * len(self.trials) / secs if secs > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON summary: controller, sharing, trial count, best architecture, reward and
        metrics, the best-so-far curve, throughput, plus ``extra``.
        """
        best = self.best_after(len(self.trials))
        return {
            "controller": self.controller,
            "sharing": self.sharing,
            "num_trials": len(self.trials),
            "best": best["arch"],
            "best_reward": best["reward"],
            "best_metrics": best.get("metrics", {}),
            "curve": self.curve(),
            "trials_per_minute": self.trials_per_minute(),
            **self.extra,
        }


def _record_to_proposal(rec: dict[str, Any]) -> Proposal:
    parent = Architecture.from_dict(rec["parent"]) if rec.get("parent") else None
    info: dict[str, Any] = {"child_idx": rec["child_idx"]} if rec.get("child_idx") else {}
    if rec.get("positions") is not None:
        info["positions"] = rec["positions"]
    return Proposal(Architecture.from_dict(rec["arch"]), parent, rec.get("action_class"), info)


def search(
    space: SearchSpace,
    objective: Callable[..., Any],
    controller: str | Controller = "rcc",
    *,
    trials: int = 200,
    time_budget: float | None = None,
    sharing: bool = True,
    log: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int = 0,
    batch_size: int = 1,
    runner: Any = None,
    progress: bool = True,
    controller_kwargs: dict[str, Any] | None = None,
    bank_capacity: int = 5,
    verify_shared: int = 5,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search ``space`` for the architecture of highest reward under ``objective``.

    Args:
        space: the search space.
        objective: ``objective(space, arch, init_state=, seed=, keep_state=) -> TrialResult``
            (e.g. :class:`~dyngraph.nas.objective.NodeClassificationObjective` or
            :class:`~dyngraph.nas.nasbench.NasBenchGraphObjective`).
        controller: ``"rcc"``, ``"random"``, ``"evolution"`` or a :class:`Controller`.
        trials: total number of trials (including those already in the log).
        time_budget: stop asking for new trials after this many seconds of this call.
        sharing: constrained parameter sharing (only where the objective supports it).
        log: JSON-lines trial log; with ``resume`` an existing log is replayed (the controller
            is brought to the logged state without re-running any trial) and the search
            continues. Weights of the parameter bank are not logged: after a resume, children
            whose parent was trained before the interruption train from scratch.
        seed: seeds the controller and each trial (trial ``i`` uses ``seed * 100003 + i``).
        batch_size: trials asked and evaluated together (parallel on a :class:`RayRunner`).
        runner: :class:`~dyngraph.nas.runners.InProcessRunner` (default) or ``RayRunner``.
        bank_capacity: architectures whose trained weights are kept for sharing (the best
            ones; at least the RCC's ``top_k`` so every parent it picks can pass weights on).
        verify_shared: a child trained from inherited weights whose reward would rank among
            the best ``verify_shared`` rewards so far is trained again from scratch and that
            reward is the one the controller sees and the log keeps (``metrics.shared_reward``
            keeps the fine-tuned one). Inherited weights make children look better or worse
            than they are; without this check, a child that only shines with its parent's
            weights can become the search's winner and then disappoint when retrained.
            ``0`` disables the check.
        on_trial: called with each new log record (e.g. to stop a search from outside).
    """
    if trials < 0 or batch_size < 1:
        raise ConfigError("trials must be >= 0 and batch_size >= 1")
    ctrl = (
        controller
        if isinstance(controller, Controller)
        else make_controller(controller, space, seed=seed, **(controller_kwargs or {}))
    )
    use_sharing = bool(sharing and getattr(objective, "supports_sharing", False))
    bank = ParameterBank(enabled=use_sharing, capacity=bank_capacity)
    runner = runner or InProcessRunner()
    describe = getattr(objective, "describe", None)
    header = {
        "space": space.config(),
        "controller": ctrl.name,
        "seed": seed,
        "sharing": use_sharing,
        **({"verify_shared": int(verify_shared)} if use_sharing else {}),
        "batch_size": batch_size,
        "objective": describe() if callable(describe) else type(objective).__name__,
    }
    tlog = TrialLog(log) if log is not None else None
    records: list[dict[str, Any]] = []
    if tlog is not None and tlog.exists():
        found, records = tlog.read()
        if resume:
            tlog.repair()
        if not resume:
            raise ConfigError(f"{tlog.path} exists; pass resume=True or a new log path")
        if found is None:
            raise ConfigError(f"{tlog.path} has no header line; not a dyngraph trial log")
        TrialLog.check_compatible(found, header)
    elif tlog is not None:
        tlog.start(header)

    # replay: bring the controller to the logged state, in the logged batch structure
    replayed = 0
    mismatches = 0
    while replayed < len(records):
        batch = records[replayed : replayed + batch_size]
        props = [ctrl.ask() for _ in batch]
        for p, rec in zip(props, batch):
            logged = _record_to_proposal(rec)
            if p.arch != logged.arch:
                mismatches += 1
                p = logged
            ctrl.tell(p, float(rec["reward"]))
        replayed += len(batch)

    in_ch = getattr(objective, "in_channels", 0)
    out_ch = getattr(objective, "num_classes", 0)
    t0 = time.perf_counter()
    wall0 = records[-1]["wall"] if records else 0.0
    bar = tqdm(
        total=trials, initial=len(records), disable=not progress, desc=f"search[{ctrl.name}]"
    )
    try:
        while len(records) < trials:
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                break
            k = min(batch_size, trials - len(records))
            props = [ctrl.ask() for _ in range(k)]
            tasks, shared = [], []
            for j, p in enumerate(props):
                state, layers = bank.inherit(space, p.parent, p.arch, in_ch, out_ch)
                shared.append(layers if state is not None else [])
                tasks.append((space, p.arch, state, seed * 100003 + len(records) + j, use_sharing))
            t_batch = time.perf_counter()
            results = runner.map(objective, tasks)
            if use_sharing and verify_shared > 0:
                results = _verify(objective, runner, tasks, results, shared, records,
                                  verify_shared)
            batch_secs = time.perf_counter() - t_batch
            for p, res, layers in zip(props, results, shared):
                ctrl.tell(p, float(res.reward))
                bank.store(p.arch, res.reward, res.state)
                rec = {
                    "trial": len(records),
                    "arch": p.arch.to_dict(),
                    "key": p.arch.key,
                    "parent": p.parent.to_dict() if p.parent is not None else None,
                    "action_class": p.action_class,
                    "child_idx": p.info.get("child_idx"),
                    "positions": p.info.get("positions"),
                    "reward": float(res.reward),
                    "metrics": res.metrics,
                    "shared_layers": layers,
                    "seconds": float(res.metrics.get("seconds", batch_secs / len(props))),
                    "wall": wall0 + time.perf_counter() - t0,
                }
                records.append(rec)
                if tlog is not None:
                    tlog.append(rec)
                bar.update(1)
                bar.set_postfix(best=f"{max(r['reward'] for r in records):.4f}")
                if on_trial is not None:
                    on_trial(rec)
    finally:
        bar.close()
    return SearchResult(
        space,
        records,
        ctrl.name,
        use_sharing,
        elapsed=time.perf_counter() - t0,
        replayed=replayed,
        extra={"replay_mismatches": mismatches},
    )


def _verify(objective, runner, tasks, results, shared, records, top: int) -> list[Any]:
    """Re-train from scratch the shared children whose reward would enter the top ``top``."""
    rewards = sorted((r["reward"] for r in records), reverse=True)
    bar = rewards[top - 1] if len(rewards) >= top else -math.inf
    idx = [j for j, (res, layers) in enumerate(zip(results, shared))
           if layers and res.reward > bar]
    if not idx:
        return results
    again = runner.map(objective, [(*tasks[j][:2], None, *tasks[j][3:]) for j in idx])
    results = list(results)
    for j, res in zip(idx, again):
        old = results[j]
        res.metrics["shared_reward"] = float(old.reward)
        res.metrics["shared_seconds"] = float(old.metrics.get("seconds", 0.0))
        res.metrics["seconds"] = float(res.metrics.get("seconds", 0.0)) + float(
            old.metrics.get("seconds", 0.0))
        results[j] = res
    return results


def retrain(
    space: SearchSpace,
    arch: Architecture,
    objective: Callable[..., Any],
    seeds: int = 10,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``arch`` from scratch with ``seeds`` different seeds; test/val accuracy stats."""
    tests, vals = [], []
    for s in tqdm(range(seeds), disable=not progress, desc="retrain"):
        res = objective(space, arch, init_state=None, seed=s, keep_state=False)
        tests.append(float(res.metrics.get("test_acc", float("nan"))))
        vals.append(float(res.metrics.get("val_acc", res.reward)))
    sd = statistics.stdev if len(tests) > 1 else (lambda _: 0.0)
    return {
        "arch": arch.to_dict(),
        "test_mean": statistics.fmean(tests),
        "test_std": sd(tests),
        "val_mean": statistics.fmean(vals),
        "val_std": sd(vals),
        "test": tests,
        "val": vals,
    }


def select_final(
    space: SearchSpace,
    result: SearchResult,
    objective: Callable[..., Any],
    top_k: int = 5,
    seeds: int = 3,
    n: int | None = None,
    retrain_fn: Callable[..., dict[str, Any]] | None = None,
) -> tuple[Architecture, list[dict[str, Any]]]:
    """Pick the final architecture among the search's ``top_k`` by repeated validation.

    One search trial is one noisy training run, so the single highest reward is biased
    upwards (the winner's curse; on Cora's 500 validation nodes many architectures tie). The
    ``top_k`` distinct architectures of the first ``n`` trials are retrained from scratch with
    ``seeds`` seeds and the one with the best mean **validation** accuracy wins (test
    accuracy is never looked at).

    Args:
        retrain_fn: ``(space, arch, objective, seeds) -> retrain stats``; defaults to
            :func:`retrain` (pass a caching wrapper to reuse earlier retrains).

    Returns:
        The chosen architecture and the candidates' retrain stats, best first.
    """
    if top_k < 1 or seeds < 1:
        raise ConfigError(f"top_k and seeds must be >= 1, got {top_k} and {seeds}")
    fn = retrain_fn or (lambda sp, a, obj, s: retrain(sp, a, obj, seeds=s))
    stats = []
    for rec in result.top(top_k, n):
        arch = Architecture.from_dict(rec["arch"])
        rt = dict(fn(space, arch, objective, seeds))
        rt["search_reward"] = float(rec["reward"])
        rt["trial"] = rec["trial"]
        stats.append((arch, rt))
    stats.sort(key=lambda ar: (-ar[1]["val_mean"], ar[1]["trial"]))
    return stats[0][0], [rt for _, rt in stats]
