"""NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets & Benchmarks) as a search space.

The PyPI package ``nas-bench-graph`` ships, per dataset, a pickled table of 26,206
architectures (hash -> ``valid_perf``, ``perf`` (test), ``latency``, ``para``). Architectures
are cells of 4 operation nodes: node ``i`` reads the output of node ``link_i - 1`` (or the
input when ``link_i = 0``) and applies one of 9 operations. The space here exposes those
decisions to every controller (action classes *link* and *op*), the objective answers a
trial with a table lookup, so a search costs milliseconds and controller quality can be
measured over many seeds.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from dyngraph.errors import BackendError, ConfigError
from dyngraph.nas.architecture import Architecture
from dyngraph.nas.objective import TrialResult
from dyngraph.nas.space import Decision, SearchSpace, register_space

__all__ = ["NasBenchGraphSpace", "NasBenchGraphObjective", "NASBENCH_DATASETS"]

NASBENCH_DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv")
_OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")


def _nbg():
    try:
        import nas_bench_graph
    except ImportError as e:
        raise BackendError(
            "NAS-Bench-Graph needs the 'nas-bench-graph' package: pip install nas-bench-graph"
        ) from e
    return nas_bench_graph


@register_space("nasbench-graph")
class NasBenchGraphSpace(SearchSpace):
    """Decisions ``link_1..link_3`` (class *link*; ``link_0`` is always the input) and
    ``op_0..op_3`` (class *op*). :meth:`identity` is the benchmark's isomorphism-invariant
    hash, so isomorphic cells count as one trial; the all-``skip`` cell is invalid."""

    name = "nasbench-graph"

    def __init__(self) -> None:
        self._arch_cls = _nbg().Arch
        if tuple(_nbg().gnn_list) != _OPS:
            raise BackendError(f"unexpected nas-bench-graph operation list {_nbg().gnn_list}")
        decisions = [Decision(f"link_{i}", "link", tuple(range(i + 1))) for i in (1, 2, 3)]
        decisions += [Decision(f"op_{i}", "op", _OPS) for i in range(4)]
        super().__init__(decisions)

    def cell(self, arch: Architecture) -> tuple[list[int], list[str]]:
        """The benchmark cell of ``arch``.

        Returns:
            ``(links, ops)``: four input indices (``0`` = cell input, ``k`` = node ``k - 1``; node 0
            always reads the input) and the four operation names.
        """
        links = [0] + [int(arch[f"link_{i}"]) for i in (1, 2, 3)]
        ops = [str(arch[f"op_{i}"]) for i in range(4)]
        return links, ops

    def is_valid(self, arch: Architecture) -> bool:
        """Whether the cell has at least one operation other than ``skip``."""
        return any(op != "skip" for op in self.cell(arch)[1])

    def bench_hash(self, arch: Architecture) -> int:
        """NAS-Bench-Graph's isomorphism-invariant hash of the cell (the table key)."""
        links, ops = self.cell(arch)
        return int(self._arch_cls(links, ops).valid_hash())

    def identity(self, arch: Architecture) -> Hashable:
        """The benchmark hash for a valid cell, else ``("invalid", arch)``."""
        return self.bench_hash(arch) if self.is_valid(arch) else ("invalid", arch)

    def describe(self, arch: Architecture) -> str:
        """Cell as ``n<i>=(<input>)-><op>`` per node, e.g. ``n0=(in)->gcn n1=(n0)->gat ...``."""
        links, ops = self.cell(arch)
        return " ".join(
            f"n{i}=({'in' if link == 0 else f'n{link - 1}'})->{op}"
            for i, (link, op) in enumerate(zip(links, ops))
        )


class NasBenchGraphObjective:
    """Table lookup: reward = the benchmark's validation accuracy, ``test_acc`` its test one.

    Attributes ``best_test`` / ``best_val`` (maxima over the whole table) give the regret.
    """

    supports_sharing = False

    def __init__(self, dataset: str) -> None:
        if dataset not in NASBENCH_DATASETS:
            raise ConfigError(f"unknown NAS-Bench-Graph dataset {dataset!r}: {NASBENCH_DATASETS}")
        self.dataset = dataset
        self.table: dict[int, dict[str, Any]] = _nbg().light_read(dataset)
        self.best_test = max(float(v["perf"]) for v in self.table.values())
        self.best_val = max(float(v["valid_perf"]) for v in self.table.values())

    def describe(self) -> dict[str, Any]:
        """JSON description stored in trial logs: kind and dataset."""
        return {"kind": "nasbench-graph", "dataset": self.dataset}

    def lookup(self, space: NasBenchGraphSpace, arch: Architecture) -> dict[str, Any]:
        """Table record of ``arch`` (``valid_perf``, ``perf``, ``latency``, ``para``).

        Args:
            space: the space ``arch`` belongs to.
            arch: a valid architecture.

        Raises:
            ConfigError: ``arch`` is invalid (all operations are ``skip``).
        """
        if not space.is_valid(arch):
            raise ConfigError(f"{arch} is not in NAS-Bench-Graph (all operations are skip)")
        return self.table[space.bench_hash(arch)]

    def __call__(self, space, arch, init_state=None, seed=0, keep_state=False) -> TrialResult:
        t0 = time.perf_counter()
        row = self.lookup(space, arch)
        metrics = {
            "val_acc": float(row["valid_perf"]),
            "test_acc": float(row["perf"]),
            "seconds": time.perf_counter() - t0,
        }
        return TrialResult(float(row["valid_perf"]), metrics)
