"""Data-parallel training of the memory models with ``torch.distributed``.

``dyngraph linkpred ... --nproc N`` starts ``N`` processes with torchrun (gloo on CPU, NCCL when
every rank has a GPU); ``--batch-size`` stays the *global* temporal batch.

Memory-consistency rule
-----------------------
Every rank holds a full replica of the model: parameters, node memory, ``last_update``, the
raw-message store and (with PRES) the transition model. For each global temporal batch of
``G`` events (chronological order):

1. every rank reads the whole global batch and draws its negatives from an identically seeded
   sampler, then takes its contiguous chronological slice (rank ``r`` gets events
   ``[r⌈G/N⌉, (r+1)⌈G/N⌉)``);
2. each rank scores its slice: the memory step applies the *pending* messages (stored by
   previous batches, identical on all ranks) of the nodes its slice needs, so a node that
   several ranks need gets the same memory on each of them (same inputs, same weights);
3. the loss of rank ``r`` is weighted by ``n_r N / G`` and gradients are averaged over ranks
   with one all-reduce of a flat buffer (DDP's gradient averaging; done by hand because a batch
   need not touch every parameter, e.g. JODIE's destination RNN, and the memory buffers must
   not be broadcast from rank 0 as DDP does), so every rank takes the same optimizer step;
4. the per-rank memory updates (node ids, new memory, ``last_update``, PRES's before/computed
   memories) are all-gathered; every rank persists their union, taking for a node updated by
   several ranks the copy of the lowest rank, so the replicas stay bit-identical;
5. every rank then observes the whole global batch (stores its events as raw messages).

Scoring, memory and messages are therefore those of one process with temporal batch ``G``
(up to floating-point reassociation): events of the global batch never see each other, exactly
as in the single-process run, and no event influences its own prediction. The
communication per batch is one gradient all-reduce and one all-gather of ``O(G D)`` floats.
Evaluation needs no communication: all ranks hold the same model and memory and run it
identically; rank 0 writes checkpoints and reports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm.auto import tqdm

from dyngraph.errors import BackendError, ConfigError

__all__ = [
    "DistContext",
    "init_distributed",
    "slice_bounds",
    "all_gather_varlen",
    "merge_memory_updates",
    "sync_memory_step",
    "allreduce_gradients",
    "train_epoch_distributed",
    "make_epoch_fn",
    "launch",
]


@dataclass
class DistContext:
    """Rank, world size and process group (``group=None`` with ``world=1``: one process)."""

    rank: int = 0
    world: int = 1
    group: Any = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the process that logs and writes checkpoints)."""
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistContext:
    """Join the process group torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``); a single process when those are absent."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext()
    if not dist.is_available():
        raise BackendError("torch.distributed is not available in this torch build; "
                           "run without --nproc")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), dist.group.WORLD)


def slice_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous chronological slice ``[lo, hi)`` of ``n`` events owned by ``rank``."""
    per = math.ceil(n / world) if n else 0
    lo = min(n, rank * per)
    return lo, min(n, lo + per)


def all_gather_varlen(x: Tensor, ctx: DistContext) -> list[Tensor]:
    """All-gather tensors whose first dimension differs across ranks (rank order)."""
    if ctx.world == 1:
        return [x]
    n = torch.tensor([x.size(0)], dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world)]
    dist.all_gather(sizes, n, group=ctx.group)
    m = int(max(int(s) for s in sizes))
    pad = x.new_zeros((m,) + tuple(x.shape[1:]))
    pad[: x.size(0)] = x
    out = [torch.empty_like(pad) for _ in range(ctx.world)]
    dist.all_gather(out, pad, group=ctx.group)
    return [o[: int(s)] for o, s in zip(out, sizes, strict=True)]


def _pack(upd, dim: int, with_pres: bool) -> Tensor:
    # one float64 block per rank: [n_id, last_update, updated, memory (, prev, computed)];
    # float32 -> float64 -> float32 and ids < 2**53 round-trip exactly
    if upd is None:
        return torch.zeros(0, 3 + dim * (3 if with_pres else 1), dtype=torch.float64)
    cols = [upd.n_id.double().unsqueeze(1), upd.last_update.double().unsqueeze(1),
            upd.updated.double().unsqueeze(1), upd.memory.detach().double()]
    if with_pres:
        cols += [upd.prev.detach().double(), upd.computed.detach().double()]
    return torch.cat(cols, 1)


def merge_memory_updates(blocks: list[Tensor], dim: int, with_pres: bool):
    """Union of per-rank packed memory updates; a node present in several keeps the row of
    the lowest rank. Returns a :class:`~dyngraph.nn.memory.MemoryUpdate`."""
    from dyngraph.nn.memory import MemoryUpdate

    allb = torch.cat(blocks, 0)
    ids = allb[:, 0].long()
    uniq, inv = torch.unique(ids, return_inverse=True)
    pos = torch.arange(ids.numel())
    first = torch.full((uniq.numel(),), ids.numel(), dtype=torch.long)
    first = first.scatter_reduce(0, inv, pos, reduce="amin")
    rows = allb[first]
    mem = rows[:, 3:3 + dim].float()
    prev = comp = None
    if with_pres:
        prev = rows[:, 3 + dim:3 + 2 * dim].float()
        comp = rows[:, 3 + 2 * dim:3 + 3 * dim].float()
    return MemoryUpdate(uniq, mem, rows[:, 1], rows[:, 2] > 0.5, prev, comp)


@torch.no_grad()
def sync_memory_step(model, ctx: DistContext) -> None:
    """Steps 4 of the consistency rule: gather every rank's memory update of the last
    ``forward`` and persist their union on every rank (then ``model.observe`` the global
    batch). With one process this is ``model.persist(model._ctx)``."""
    upd = model._ctx
    model._ctx = None
    with_pres = model.pres is not None
    if ctx.world == 1:
        if upd is not None:
            model.persist(upd)
        return
    blocks = all_gather_varlen(_pack(upd, model.memory_dim, with_pres), ctx)
    if sum(b.size(0) for b in blocks) == 0:
        return
    model.persist(merge_memory_updates(blocks, model.memory_dim, with_pres))


def allreduce_gradients(params: list[torch.nn.Parameter], ctx: DistContext) -> None:
    """Average gradients over ranks with one all-reduce of a flat buffer. A parameter that no
    rank's slice touched keeps ``grad=None`` (so the optimizer skips it, as one process would);
    one touched only by some ranks counts zeros for the others."""
    if ctx.world == 1:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params]
                     + [torch.tensor([float(p.grad is not None) for p in params],
                                     dtype=params[0].dtype if params else torch.float32)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=ctx.group)
    touched = flat[-len(params):] > 0
    flat = flat[:-len(params)] / ctx.world
    off = 0
    for p, used in zip(params, touched.tolist(), strict=True):
        n = p.numel()
        if used:
            g = flat[off:off + n].view_as(p)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
        else:
            p.grad = None
        off += n


def train_epoch_distributed(model, stream, index, sampler, optimizer, batch_size: int,
                            progress: bool = False, desc: str = "train", *,
                            ctx: DistContext | None = None) -> dict[str, float]:
    """One data-parallel pass over ``stream`` from empty memory; ``batch_size`` is the global
    temporal batch. Same contract as :func:`dyngraph.train.streaming.train_epoch` (mean loss
    over all ranks' events, seconds, global events/second)."""
    from dyngraph.train.streaming import training_loss

    ctx = ctx or DistContext()
    model.train()
    model.reset_state()
    model.set_graph(index, stream.msg)
    params = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros(2, dtype=torch.float64)
    start = time.perf_counter()
    nb = math.ceil(stream.num_events / batch_size)
    for batch in tqdm(stream.batches(batch_size), total=nb, desc=desc, leave=False,
                      disable=not (progress and ctx.is_main), mininterval=1.0):
        g = batch.num_events
        if g == 0:
            continue
        neg = sampler.sample(batch, 1)  # identical on every rank (same seed, same calls)
        lo, hi = slice_bounds(g, ctx.rank, ctx.world)
        mine = batch[lo:hi]
        optimizer.zero_grad(set_to_none=True)
        if hi > lo:
            pos_out, neg_out = model(mine.src, mine.dst, mine.t, neg[lo:hi])
        else:
            model._ctx = None
        if ctx.world == 1:
            loss = training_loss(model, pos_out, neg_out)
            loss.backward()
        else:
            loss = _rank_loss(model, pos_out if hi > lo else None,
                              neg_out if hi > lo else None, (hi - lo) / g, ctx)
        if hi > lo:
            total += torch.tensor([float(loss.detach()) * (hi - lo) if ctx.world == 1 else
                                   float(loss.detach()) * g / ctx.world, hi - lo],
                                  dtype=torch.float64)
        allreduce_gradients(params, ctx)
        optimizer.step()
        sync_memory_step(model, ctx)
        model.observe(batch.src, batch.dst, batch.t, batch.msg)
    if ctx.world > 1:
        dist.all_reduce(total, group=ctx.group)
    secs = time.perf_counter() - start
    n = float(total[1])
    return {"loss": float(total[0]) / max(n, 1.0), "seconds": secs,
            "events_per_s": n / max(secs, 1e-9)}


def _rank_loss(model, pos, neg, share: float, ctx: DistContext) -> Tensor:
    """This rank's part of the global-batch loss, scaled so that averaging gradients over
    ranks gives the gradient of the single-process loss at the global batch: the task loss
    (a mean over events) weighted by the rank's share of events, and PRES's coherence loss
    (a mean over the batch's updated nodes) summed over the nodes this rank owns -- a node
    several ranks updated belongs to the lowest of them -- and divided by the global count."""
    from dyngraph.nn.pres import coherence_terms
    from dyngraph.train.streaming import _loss

    loss = _loss(pos, neg) * (share * ctx.world) if pos is not None else None
    pres, upd = model.pres, model._ctx
    if pres is not None and pres.coherence and pres.beta > 0:
        if upd is not None and upd.computed is not None:
            terms, keep = coherence_terms(upd.computed, upd.prev, upd.updated)
            ids = upd.n_id[keep]
        else:
            terms, ids = None, torch.zeros(0, dtype=torch.long)
        per_rank = all_gather_varlen(ids, ctx)
        lower = torch.cat(per_rank[:ctx.rank]) if ctx.rank else ids.new_zeros(0)
        total = torch.unique(torch.cat(per_rank)).numel()
        if terms is not None and terms.numel() and total:
            owned = ~torch.isin(ids, lower)
            aux = pres.beta * ctx.world * terms[owned].sum() / total
            loss = aux if loss is None else loss + aux
    if loss is not None and loss.requires_grad:
        loss.backward()
    return loss if loss is not None else torch.zeros(())


def make_epoch_fn(ctx: DistContext):
    """:func:`train_epoch_distributed` bound to ``ctx``, with ``train_epoch``'s signature."""

    def epoch_fn(model, stream, index, sampler, optimizer, batch_size, progress=False,
                 desc="train"):
        return train_epoch_distributed(model, stream, index, sampler, optimizer, batch_size,
                                       progress, desc, ctx=ctx)

    return epoch_fn


# ---------------------------------------------------------------------- launching
def launch(args: argparse.Namespace, nproc: int) -> dict[str, Any]:
    """Run ``dyngraph linkpred`` with the parsed ``args`` on ``nproc`` local processes through
    torchrun; returns rank 0's report dict."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    with tempfile.TemporaryDirectory(prefix="dyngraph-ddp-") as tmp:
        spec = Path(tmp) / "args.json"
        out = Path(tmp) / "report.json"
        opts = {k: v for k, v in vars(args).items() if k != "func"}
        opts["nproc"] = 1  # workers never launch again
        spec.write_text(json.dumps({"args": opts, "report": str(out)}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "dyngraph.train.distributed", str(spec)]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, int(getattr(args, "threads", 1) or 1))))
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise BackendError(f"distributed run failed (exit code {proc.returncode}); the "
                               "workers' output above says why. Retry with --nproc 1 to rule "
                               "out the launcher")
        return json.loads(out.read_text())


def _worker(spec_path: str) -> int:
    from dyngraph.train.cli import run_linkpred

    spec = json.loads(Path(spec_path).read_text())
    args = argparse.Namespace(**spec["args"])
    ctx = init_distributed()
    try:
        report = run_linkpred(args, dist_ctx=ctx)
        if ctx.is_main:
            Path(spec["report"]).write_text(json.dumps(report, default=float))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1]))
