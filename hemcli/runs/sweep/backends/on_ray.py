"""``--backend ray``: each run a Ray task, on a running cluster or a local Ray instance."""
from __future__ import annotations

from typing import Iterator

from hemcli.errors import HemError
from hemcli.runs.execute import sweep_one
from hemcli.runs.spec import RunSpec
from hemcli.runs.sweep.backends import BackendOptions, anchored, cpu_count, error_line, failed


class RayBackend:
    """Each run a Ray task asking for ``--gpus-per-run`` GPUs (default 1 on a cluster with GPUs, else 0)
    and ``--cpus-per-run`` CPUs (default 1), on the cluster at ``--address`` or a local instance."""

    def __init__(self, options: BackendOptions):
        self.address, self.cpus, self.gpus = options.address, options.cpus_per_run or 1, options.gpus_per_run
        self.slots = 1
        self.describe = f"Ray at {self.address}" if self.address else "a local Ray instance"

    def run(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        import ray

        started, pending = self._connect(ray), {}
        try:
            task = ray.remote(sweep_one).options(num_cpus=self.cpus, num_gpus=self._gpus(ray), max_retries=0)
            pending = {task.remote(anchored(spec), self.cpus): spec for spec in specs}
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready)
                try:
                    yield spec, ray.get(ready)
                except ray.exceptions.RayError as err:  # the worker died, or the task could not start
                    yield spec, failed(spec, f"Ray task failed: {type(err).__name__}: {error_line(err)}")
        except BaseException:  # Ctrl-C: stop the runs; each resumes from its last checkpoint
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()

    def _gpus(self, ray) -> int:
        """GPUs per run (one where the cluster has GPUs); also sets how many runs go at once."""
        resources = ray.cluster_resources()
        gpus = self.gpus if self.gpus is not None else (1 if resources.get("GPU", 0) >= 1 else 0)
        self.slots = max(1, int(resources.get("GPU", 0) // gpus if gpus else resources.get("CPU", 1) // self.cpus))
        return gpus

    def _connect(self, ray) -> bool:
        """Join the cluster (True when this call started Ray, so it also stops it)."""
        if ray.is_initialized():
            return False
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                 "configure_logging": True}
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=cpu_count(), **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise HemError(f"cannot start or reach {where}: {error_line(err)}") from None
        return True
