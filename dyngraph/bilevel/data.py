"""Solved UE scenarios as training data for the surrogate.

A :class:`ScenarioSet` holds, for ``S`` scenarios of one network, the inputs (link capacities,
OD demand) and the exact UE link flows. It is made by :func:`generate_scenarios` (which
streams batched solves to disk through :func:`dyngraph.traffic.run_scenarios`, resumable), read
back with :meth:`ScenarioSet.from_dir`, split reproducibly, and extended with exact solves of
designs during surrogate refresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dyngraph.errors import DataError, ShapeError
from dyngraph.traffic import (
    ScenarioSampler,
    TrafficNetwork,
    load_scenarios,
    network_fingerprint,
    run_scenarios,
)

__all__ = ["ScenarioSet", "generate_scenarios", "topology_fingerprint"]


def topology_fingerprint(network: TrafficNetwork) -> str:
    """md5 of what a surrogate cannot generalise over: links, zones, free-flow times and BPR
    parameters. Capacities and demand are surrogate *inputs*, so they are left out."""
    import hashlib

    h = hashlib.md5()
    for a in (network.init, network.term, network.free_flow_time, network.b, network.power):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update(f"{network.num_nodes}/{network.num_zones}/{network.first_thru_node}".encode())
    return h.hexdigest()


@dataclass
class ScenarioSet:
    """Scenarios of one network.

    Attributes:
        capacity: ``(S, E)`` link capacities.
        demand: ``(S, Z, Z)`` OD demand.
        flows: ``(S, E)`` UE link flows.
        total_travel_time: ``(S,)`` ``sum v t(v)``.
        fingerprint: :func:`topology_fingerprint` of the network they were solved on.
    """

    capacity: np.ndarray
    demand: np.ndarray
    flows: np.ndarray
    total_travel_time: np.ndarray
    fingerprint: str

    def __post_init__(self) -> None:
        s = self.capacity.shape[0]
        if self.capacity.ndim != 2 or self.flows.shape != self.capacity.shape:
            raise ShapeError(f"capacity {self.capacity.shape} and flows {self.flows.shape} "
                             "must both be (S, E)")
        if self.demand.ndim != 3 or self.demand.shape[0] != s:
            raise ShapeError(f"demand has shape {self.demand.shape}, expected ({s}, Z, Z)")
        if self.total_travel_time.shape != (s,):
            raise ShapeError(f"total_travel_time has shape {self.total_travel_time.shape}, "
                             f"expected ({s},)")
        for nm in ("capacity", "demand", "flows", "total_travel_time"):
            if not np.all(np.isfinite(getattr(self, nm))):
                raise DataError(f"ScenarioSet.{nm} holds NaN/inf; re-solve those scenarios")

    def __len__(self) -> int:
        return int(self.capacity.shape[0])

    @classmethod
    def from_dir(cls, path: str | os.PathLike, network: TrafficNetwork,
                 allow_partial: bool = True, converged_only: bool = True) -> ScenarioSet:
        """Read a :func:`generate_scenarios` / ``run_scenarios`` directory."""
        d = load_scenarios(path, allow_partial=allow_partial)
        if d["manifest"]["fingerprint"] != network_fingerprint(network):
            raise DataError(f"{path} was solved on another network (fingerprint "
                            f"{d['manifest']['fingerprint']}); pass the network it was made "
                            "from or regenerate the scenarios")
        keep = d["converged"] if converged_only else np.ones(d["index"].size, bool)
        return cls(capacity=d["capacity"][keep], demand=d["demand"][keep].astype(np.float32),
                   flows=d["flows"][keep], total_travel_time=d["total_travel_time"][keep],
                   fingerprint=topology_fingerprint(network))

    def subset(self, idx) -> ScenarioSet:
        """Scenarios selected by ``idx`` (integer indices or a boolean mask over ``S``)."""
        idx = np.asarray(idx)
        return ScenarioSet(self.capacity[idx], self.demand[idx], self.flows[idx],
                           self.total_travel_time[idx], self.fingerprint)

    def split(self, test_fraction: float = 0.1, val_fraction: float = 0.1,
              seed: int = 0) -> tuple[ScenarioSet, ScenarioSet, ScenarioSet]:
        """Reproducible random ``(train, val, test)`` split."""
        if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1
                and test_fraction + val_fraction < 1):
            raise DataError("test_fraction and val_fraction must be in [0, 1) and sum below 1")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_fraction * len(self)))
        n_val = int(round(val_fraction * len(self)))
        return (self.subset(perm[n_test + n_val:]), self.subset(perm[n_test:n_test + n_val]),
                self.subset(perm[:n_test]))

    @staticmethod
    def concat(sets: list[ScenarioSet]) -> ScenarioSet:
        """Scenario sets of one network stacked along the scenario axis.

        Raises:
            DataError: the sets come from networks with different fingerprints.
        """
        fps = {s.fingerprint for s in sets}
        if len(fps) != 1:
            raise DataError("cannot concatenate scenarios of different networks")
        return ScenarioSet(*(np.concatenate([getattr(s, k) for s in sets]) for k in
                             ("capacity", "demand", "flows", "total_travel_time")), fps.pop())


def generate_scenarios(network: TrafficNetwork, n: int, out_dir: str | os.PathLike,
                       sampler: ScenarioSampler | None = None, rgap: float = 1e-4,
                       chunk_size: int = 128, n_jobs: int = 1, progress: bool = True
                       ) -> ScenarioSet:
    """Solve ``n`` perturbed scenarios (the paper's ranges by default), streamed to
    ``out_dir`` and resumable, and return them as a :class:`ScenarioSet`."""
    run_scenarios(network, n, out_dir, sampler=sampler or ScenarioSampler(), rgap=rgap,
                  chunk_size=chunk_size, n_jobs=n_jobs, resume=True, progress=progress)
    return ScenarioSet.from_dir(out_dir, network, allow_partial=False)
