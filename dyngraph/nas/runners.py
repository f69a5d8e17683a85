"""Trial runners: evaluate a batch of trials in this process or on a Ray cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dyngraph.errors import BackendError

__all__ = ["Trial", "InProcessRunner", "RayRunner", "run_trial"]

# (space, arch, init_state, seed, keep_state)
Trial = tuple[Any, Any, Any, int, bool]


def run_trial(objective: Callable[..., Any], trial: Trial) -> Any:
    space, arch, init_state, seed, keep_state = trial
    return objective(space, arch, init_state=init_state, seed=seed, keep_state=keep_state)


class InProcessRunner:
    """Evaluates trials one after another in the calling process."""

    name = "local"

    def map(self, objective: Callable[..., Any], trials: Sequence[Trial]) -> list[Any]:
        """Evaluate ``trials`` one after another.

        Args:
            objective: called as ``objective(space, arch, init_state=, seed=, keep_state=)``.
            trials: ``(space, arch, init_state, seed, keep_state)`` tuples.

        Returns:
            The objective's results, in trial order.
        """
        return [run_trial(objective, t) for t in trials]

    def close(self) -> None:
        """Nothing to release."""


class RayRunner:
    """Evaluates a batch of trials concurrently as Ray tasks (extra ``dist``).

    Args:
        num_cpus: CPUs of the local Ray instance started when none is running.
        address: connect to an existing cluster instead (e.g. ``"auto"``).
        cpus_per_trial: CPUs reserved per trial (also its torch thread count).
    """

    name = "ray"

    def __init__(
        self, num_cpus: int | None = 2, address: str | None = None, cpus_per_trial: int = 1
    ) -> None:
        try:
            import ray
        except ImportError as e:
            raise BackendError("RayRunner needs ray: pip install 'dyngraph[dist]'") from e
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=address)
            self._owns = True
        self.cpus_per_trial = cpus_per_trial
        self._remote = ray.remote(num_cpus=cpus_per_trial)(_ray_trial)
        self._obj_ref: Any = None
        self._obj_id: int | None = None

    def map(self, objective: Callable[..., Any], trials: Sequence[Trial]) -> list[Any]:
        """Evaluate ``trials`` concurrently as Ray tasks.

        The objective is put in the object store once and reused while the same object is passed.

        Args:
            objective: called as ``objective(space, arch, init_state=, seed=, keep_state=)``.
            trials: ``(space, arch, init_state, seed, keep_state)`` tuples.

        Returns:
            The objective's results, in trial order.
        """
        if self._obj_id != id(objective):
            # ship the objective (it holds the dataset) to the object store once
            self._obj_ref = self._ray.put(objective)
            self._obj_id = id(objective)
        refs = [self._remote.remote(self._obj_ref, t, self.cpus_per_trial) for t in trials]
        return self._ray.get(refs)

    def close(self) -> None:
        """Shut Ray down if this runner started it (a joined cluster is left running)."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False


def _ray_trial(objective: Callable[..., Any], trial: Trial, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    return run_trial(objective, trial)
