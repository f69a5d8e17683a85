"""Batched scenario generation: perturbed demand/capacity, solved in vectorised chunks,
streamed to disk, resumable.

Each scenario ``i`` is drawn from its own generator ``default_rng([seed, i])`` so a run gives
the same scenarios however it is chunked, parallelised or resumed. Results go to
``out_dir/chunk_XXXXXX.npz`` (written atomically) next to a ``manifest.json`` that pins the
network and settings; rerunning the same call skips finished chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dyngraph.errors import ConfigError, DataError
from dyngraph.traffic.assignment import METHODS, solve_ue_batch
from dyngraph.traffic.network import TrafficNetwork
from dyngraph.traffic.paths import RoutingGraph

__all__ = ["ScenarioSampler", "run_scenarios", "load_scenarios", "network_fingerprint"]


@dataclass(frozen=True)
class ScenarioSampler:
    """The paper's perturbations (Madadi & Correia 2024): every OD demand scaled by
    ``U(1 - demand_spread, 1 + demand_spread)`` and every link capacity by
    ``1 + k * capacity_step`` with ``k`` uniform on ``capacity_levels``.

    Args:
        demand_spread: half-width of the demand multiplier.
        capacity_levels: integer levels ``k``; ``(-2, ..., 2)`` with step 1/4 gives
            multipliers 0.5..1.5.
        capacity_step: multiplier per level.
        per_od: one demand multiplier per OD pair (True) or one per scenario (False).
        seed: base seed; scenario ``i`` uses ``default_rng([seed, i])``.
    """

    demand_spread: float = 0.2
    capacity_levels: tuple[int, ...] = (-2, -1, 0, 1, 2)
    capacity_step: float = 0.25
    per_od: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.demand_spread < 1:
            raise ConfigError(f"demand_spread must be in [0, 1), got {self.demand_spread}")
        if min(1 + k * self.capacity_step for k in self.capacity_levels) <= 0:
            raise ConfigError("capacity_levels * capacity_step must keep capacities positive")

    def __call__(self, network: TrafficNetwork, indices) -> tuple[np.ndarray, np.ndarray]:
        """Capacities ``(k, E)`` and demands ``(k, Z, Z)`` of scenarios ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        e, z = network.num_links, network.num_zones
        cap = np.empty((idx.size, e))
        dem = np.empty((idx.size, z, z))
        levels = np.asarray(self.capacity_levels, dtype=np.float64)
        for r, i in enumerate(idx):
            rng = np.random.default_rng([self.seed, int(i)])
            k = levels[rng.integers(0, levels.size, e)]
            cap[r] = network.capacity * (1.0 + k * self.capacity_step)
            shape = (z, z) if self.per_od else ()
            f = rng.uniform(1.0 - self.demand_spread, 1.0 + self.demand_spread, shape)
            dem[r] = network.demand * f
        return cap, dem


def network_fingerprint(network: TrafficNetwork) -> str:
    """md5 of the arrays that define the assignment problem (detects a changed network)."""
    h = hashlib.md5()
    for a in (network.init, network.term, network.capacity, network.free_flow_time,
              network.b, network.power, network.demand):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(str(network.first_thru_node).encode())
    return h.hexdigest()


def _chunk_path(out_dir: Path, c: int) -> Path:
    return out_dir / f"chunk_{c:06d}.npz"


def _solve_chunk(network: TrafficNetwork, sampler, lo: int, hi: int, rgap: float, method: str,
                 max_iter: int, block: int | None, path: Path, graph: RoutingGraph | None = None,
                 on_done=None, width: int | None = None) -> int:
    cap, dem = sampler(network, np.arange(lo, hi))
    g = graph or RoutingGraph(network, block=block)
    res = solve_ue_batch(network, capacity=cap, demand=dem, rgap=rgap, method=method,
                         max_iter=max_iter, graph=g, on_done=on_done, width=width)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, index=np.arange(lo, hi), capacity=cap, demand=dem.astype(np.float32),
             flows=res.flows, times=res.times, total_travel_time=res.total_travel_time,
             rgap=res.rgap, iterations=res.iterations, converged=res.converged)
    os.replace(tmp, path)  # atomic: a chunk file exists only when complete
    return hi - lo


def _worker(args) -> int:
    return _solve_chunk(*args)


def run_scenarios(
    network: TrafficNetwork,
    n: int,
    out_dir: str | os.PathLike,
    sampler: ScenarioSampler | None = None,
    rgap: float = 1e-4,
    method: str = "bfw",
    max_iter: int = 20_000,
    chunk_size: int = 256,
    block: int | None = None,
    n_jobs: int = 1,
    resume: bool = True,
    progress: bool = True,
    width: int | None = 128,
) -> Path:
    """Solve ``n`` perturbed scenarios and stream them to ``out_dir``.

    Args:
        sampler: any picklable callable ``(network, indices) -> (capacity (k, E),
            demand (k, Z, Z))``; default :class:`ScenarioSampler` (the paper's ranges).
        chunk_size: scenarios solved together in one vectorised batch and stored per file.
        block: scenarios per block-diagonal Dijkstra call (default: by network size).
        n_jobs: worker processes (each solves whole chunks).
        resume: skip chunks already on disk (the manifest must match); with False an
            existing non-empty run directory is an error.
        width: scenarios of a chunk iterating together (see :func:`solve_ue_batch`; the
            results do not depend on it).

    Returns:
        ``out_dir``; read the results with :func:`load_scenarios`.
    """
    if method not in METHODS:
        raise ConfigError(f"method {method!r} unknown; use one of {METHODS}")
    if n < 1 or chunk_size < 1 or n_jobs < 1:
        raise ConfigError("n, chunk_size and n_jobs must be >= 1")
    sampler = sampler or ScenarioSampler()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "network": network.name,
        "fingerprint": network_fingerprint(network),
        "num_links": network.num_links,
        "num_zones": network.num_zones,
        "n": int(n),
        "chunk_size": int(chunk_size),
        "rgap": float(rgap),
        "method": method,
        "sampler": (asdict(sampler) if isinstance(sampler, ScenarioSampler)
                    else repr(sampler)),
    }
    mpath = out / "manifest.json"
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        old["sampler"] = _jsonable(old.get("sampler"))
        if not resume:
            raise ConfigError(f"{out} already holds a run; pass resume=True or a new out_dir")
        if old != _jsonable(manifest):
            diff = sorted(k for k in manifest if old.get(k) != _jsonable(manifest)[k])
            raise ConfigError(f"{mpath} was written with different settings ({diff}); use a "
                              "new out_dir or the original settings to resume")
    else:
        mpath.write_text(json.dumps(manifest, indent=1))

    chunks = [(c, lo, min(lo + chunk_size, n)) for c, lo in enumerate(range(0, n, chunk_size))]
    todo = [t for t in chunks if not _chunk_path(out, t[0]).is_file()]
    done0 = n - sum(hi - lo for _, lo, hi in todo)
    bar = _progress(n, done0, progress)
    try:
        if n_jobs == 1:
            g = RoutingGraph(network, block=block)
            for c, lo, hi in todo:
                _solve_chunk(network, sampler, lo, hi, rgap, method, max_iter, block,
                             _chunk_path(out, c), graph=g, on_done=bar.update, width=width)
        else:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                futs = [pool.submit(_worker, (network, sampler, lo, hi, rgap, method, max_iter,
                                              block, _chunk_path(out, c), None, None, width))
                        for c, lo, hi in todo]
                for f in as_completed(futs):
                    bar.update(f.result())
    finally:
        bar.close()
    return out


def _jsonable(x):
    return json.loads(json.dumps(x))


class _NoBar:
    def update(self, k: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="UE scenarios", unit="scen")


def load_scenarios(out_dir: str | os.PathLike, allow_partial: bool = False) -> dict:
    """Concatenate the chunks of a :func:`run_scenarios` directory, ordered by index.

    Returns a dict of arrays (``index, capacity, demand, flows, times, total_travel_time,
    rgap, iterations, converged``) plus ``manifest``.
    """
    out = Path(out_dir)
    mpath = out / "manifest.json"
    if not mpath.is_file():
        raise DataError(f"{out}: no manifest.json; not a run_scenarios directory")
    manifest = json.loads(mpath.read_text())
    files = sorted(out.glob("chunk_[0-9]*[0-9].npz"))
    if not files:
        raise DataError(f"{out}: no finished chunks yet")
    parts: dict[str, list[np.ndarray]] = {}
    for f in files:
        with np.load(f) as z:
            for k in z.files:
                parts.setdefault(k, []).append(z[k])
    data = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.argsort(data["index"])
    data = {k: v[order] for k, v in data.items()}
    if not allow_partial and data["index"].size != manifest["n"]:
        raise DataError(f"{out}: {data['index'].size} of {manifest['n']} scenarios finished; "
                        "rerun run_scenarios to resume, or pass allow_partial=True")
    data["manifest"] = manifest
    return data
