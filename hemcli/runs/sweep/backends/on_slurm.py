"""``--backend slurm``: the whole grid as one Slurm job array, through submitit."""
from __future__ import annotations

import collections
import sys
import time
from pathlib import Path
from typing import Iterator

from hemcli.errors import HemError
from hemcli.runs.execute import sweep_one
from hemcli.runs.spec import RunSpec
from hemcli.runs.sweep.backends import BackendOptions, anchored, cpu_count, error_line, failed

DEFAULT_SLURM_MINUTES = 24 * 60


def slurm_minutes(text: str | None) -> int:
    """``--slurm-time`` in whole minutes, in Slurm's forms: ``M``, ``M:S``, ``H:M:S``, ``D-H``,
    ``D-H:M`` or ``D-H:M:S`` (seconds round up)."""
    if text is None:
        return DEFAULT_SLURM_MINUTES
    days, dash, clock = text.strip().rpartition("-")
    try:
        numbers = [int(part) for part in clock.split(":")]
        day_count = int(days) if dash else 0
        if len(numbers) > 3 or min(numbers + [day_count]) < 0:
            raise ValueError
    except ValueError:
        raise HemError(f"--slurm-time must be minutes or [D-]HH:MM:SS, got {text!r}") from None
    if dash:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    elif len(numbers) == 3:  # H:M:S
        hours, minutes, seconds = numbers
    else:  # M, M:S
        hours, minutes, seconds = 0, numbers[0], numbers[1] if len(numbers) == 2 else 0
    total = day_count * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise HemError(f"--slurm-time must be at least one minute, got {text!r}")
    return total


def slurm_parameters(options: BackendOptions, count: int) -> dict:
    """The SlurmExecutor parameters (sbatch options) of a sweep's job array of ``count`` runs."""
    parameters = {"job_name": "hem-sweep", "time": slurm_minutes(options.slurm_time), "nodes": 1,
                  "ntasks_per_node": 1, "cpus_per_task": options.cpus_per_run or 1,
                  "gpus_per_node": options.gpus_per_run if options.gpus_per_run is not None else 1,
                  "array_parallelism": min(count, options.slurm_array_parallelism or count)}
    if options.slurm_partition:
        parameters["partition"] = options.slurm_partition
    if not parameters["gpus_per_node"]:
        del parameters["gpus_per_node"]
    return parameters


class SlurmBackend:
    """The whole grid as one Slurm job array (through submitit), logs in ``<out>/slurm-logs``.

    ``--slurm-cluster local`` runs the same jobs through submitit's LocalExecutor on this machine,
    ``--slurm-array-parallelism`` at a time: a way to try a sweep before submitting it.
    """

    def __init__(self, options: BackendOptions, out: Path):
        self.options, self.folder = options, Path(out) / "slurm-logs"
        self.cpus = options.cpus_per_run or 1
        self.slots = options.slurm_array_parallelism or (max(1, cpu_count() // self.cpus)
                                                         if options.slurm_cluster == "local" else 256)
        self.local = options.slurm_cluster == "local"
        self.describe = ("submitit's local executor" if self.local else "a Slurm job array") + f", logs in {self.folder}"

    def run(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        if self.local:
            yield from self._run_local(specs)
        else:
            yield from self._collect(self._submit_array(specs))

    def _submit_array(self, specs: list[RunSpec]) -> list:
        import submitit

        try:
            executor = submitit.SlurmExecutor(folder=self.folder / "%j")
        except RuntimeError:
            raise HemError("--backend slurm: no Slurm here (srun not found); submit from a Slurm login "
                           "node, or try the sweep here with --slurm-cluster local") from None
        executor.update_parameters(**slurm_parameters(self.options, len(specs)))
        try:
            jobs = executor.map_array(sweep_one, [anchored(spec) for spec in specs], [self.cpus] * len(specs))
        except Exception as err:  # sbatch refused (unknown partition, time over the limit, ...)
            raise HemError(f"sbatch refused the job array: {error_line(err)}") from None
        print(f"hem sweep: submitted job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} runs)",
              file=sys.stderr, flush=True)
        return list(zip(specs, jobs))

    def _run_local(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        """Jobs started as slots free up: the local executor itself has no array limit."""
        import submitit

        executor = submitit.LocalExecutor(folder=self.folder / "%j")
        executor.update_parameters(timeout_min=slurm_minutes(self.options.slurm_time),
                                   gpus_per_node=self.options.gpus_per_run or 0)
        waiting, alive = collections.deque(specs), []
        try:
            while waiting or alive:
                while waiting and len(alive) < self.slots:
                    spec = waiting.popleft()
                    alive.append((spec, executor.submit(sweep_one, anchored(spec), self.cpus)))
                for spec, job in [item for item in alive if item[1].done()]:
                    alive.remove((spec, job))
                    yield spec, self._outcome(spec, job)
                time.sleep(0.2)
        except BaseException:
            for _, job in alive:
                job.cancel(check=False)
            raise

    def _collect(self, jobs: list) -> Iterator[tuple[RunSpec, dict]]:
        pending = list(jobs)
        while pending:
            for spec, job in [item for item in pending if item[1].done()]:
                pending.remove((spec, job))
                yield spec, self._outcome(spec, job)
            if pending:
                time.sleep(15.0)  # sacct is asked at most once a minute by submitit anyway

    @staticmethod
    def _outcome(spec: RunSpec, job) -> dict:
        try:
            return job.result()
        except Exception as err:  # the job died outside the run (time limit, node failure)
            return failed(spec, f"job {job.job_id} failed: {error_line(err)} (log {job.paths.stderr})")
