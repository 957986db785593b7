"""Where a sweep's runs execute: worker processes here, a Ray cluster, or a Slurm job array.

Every backend calls ``hemcli.runs.execute.sweep_one(spec, threads)`` for each run, in a process of
its own, and yields ``(spec, outcome)`` as runs end. The run itself skips a finished result and
resumes from a checkpoint, so any backend can be stopped and started again.
"""
from __future__ import annotations

import collections
import ctypes
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hemcli.errors import HemError
from hemcli.runs.execute import sweep_one
from hemcli.runs.spec import RunSpec

BACKENDS = ("local", "ray", "slurm")
SLURM_CLUSTERS = ("slurm", "local")
DEFAULT_SLURM_MINUTES = 24 * 60


@dataclass(frozen=True)
class BackendOptions:
    jobs: int | None = None
    address: str | None = None
    cpus_per_run: int | None = None
    gpus_per_run: int | None = None
    slurm_partition: str | None = None
    slurm_time: str | None = None
    slurm_array_parallelism: int | None = None
    slurm_cluster: str = "slurm"


def failed(spec: RunSpec, error: str) -> dict:
    return {"name": spec.name, "status": "failed", "error": error, "metrics": {}, "resumed": False, "seconds": 0.0}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def make_backend(name: str, options: BackendOptions, out: Path):
    """The backend, its package imported now: a missing one is one line naming the extra (exit 2)."""
    if name == "local":
        return LocalBackend(options)
    if name == "ray":
        _require("ray", "ray")
        return RayBackend(options)
    if name == "slurm":
        _require("submitit", "slurm")
        return SlurmBackend(options, out)
    raise HemError(f"unknown backend {name!r}; valid choices: {', '.join(BACKENDS)}")


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise HemError(f"--backend {extra} needs {module}, which is not installed: "
                       f"pip install 'hemcli[{extra}]'") from None


# ---------------------------------------------------------------- local: a queue over worker processes


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class LocalBackend:
    """``jobs`` worker processes (default: one per GPU, else 1). Each worker is pinned to one GPU
    (``CUDA_VISIBLE_DEVICES``) and gets its share of the CPU cores as torch threads (or
    ``--cpus-per-run``), so that workers do not oversubscribe the cores."""

    def __init__(self, options: BackendOptions):
        self.gpus = _cuda_count()
        self.jobs = options.jobs or max(1, self.gpus)
        self.threads = options.cpus_per_run or max(1, cpu_count() // self.jobs)
        self.slots = self.jobs
        self.describe = (f"{self.jobs} local worker{'s' if self.jobs > 1 else ''}, "
                         + (f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}" if self.gpus
                            else f"{self.threads} CPU thread{'s' if self.threads > 1 else ''} each"))

    def run(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        pending = collections.deque(specs)
        while pending:  # a new pool after a worker died (killed, out of memory); the rest go on
            yield from self._pool(pending)

    def _pool(self, pending: collections.deque) -> Iterator[tuple[RunSpec, dict]]:
        context = worker_context()
        devices = context.Queue()
        for worker in range(self.jobs):
            devices.put(worker % self.gpus if self.gpus else None)
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_start_worker,
                                   initargs=(devices, self.threads))
        running: dict = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    spec = pending.popleft()
                    running[pool.submit(sweep_one, spec, self.threads)] = spec
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    spec = running.pop(future)
                    try:
                        yield spec, future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield spec, failed(spec, _WORKER_DIED)
                if broken:  # every run still in the pool died with it
                    for spec in running.values():
                        yield spec, failed(spec, _WORKER_DIED)
                    running.clear()
                    return
        except BaseException:  # Ctrl-C: stop the runs now; each resumes from its last checkpoint
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


_WORKER_DIED = "its worker process died (killed, or out of memory)"


# Imported once by the fork server; each worker forks from it with torch loaded, no CUDA context and
# no thread pool yet, instead of importing torch again (seconds per worker).
# torch._dynamo: torch's optimisers import it on first use (~2 s).
PRELOAD = ["torch", "torch._dynamo", "sklearn.datasets", "hemcli.runs.execute", "hemcli.tasks.classify",
           "hemcli.losses", "hemcli.train"]


def worker_context():
    """Workers fork from a clean server process where the platform has one, else start fresh."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_workers_early() -> None:
    """Start the fork server now, so that its imports overlap with planning the sweep."""
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver
        forkserver.ensure_running()


def _start_worker(devices, threads: int) -> None:
    _die_with_parent()
    device = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def _die_with_parent() -> None:
    """On Linux, a worker is killed with its parent (the sweep, or the fork server, which ends with
    the sweep), even by kill -9, instead of training on as an orphan that holds its run's lock."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)


# ---------------------------------------------------------------- Ray: one task per run


class RayBackend:
    """Each run a Ray task asking for ``--gpus-per-run`` GPUs (default 1 on a cluster with GPUs, else 0)
    and ``--cpus-per-run`` CPUs (default 1), on the cluster at ``--address`` or a local instance."""

    def __init__(self, options: BackendOptions):
        self.address, self.cpus, self.gpus = options.address, options.cpus_per_run or 1, options.gpus_per_run
        self.slots = 1
        self.describe = f"Ray at {self.address}" if self.address else "a local Ray instance"

    def run(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        import ray

        started = self._connect(ray)
        try:
            resources = ray.cluster_resources()
            gpus = self.gpus if self.gpus is not None else (1 if resources.get("GPU", 0) >= 1 else 0)
            self.slots = max(1, int(resources.get("GPU", 0) // gpus if gpus else resources.get("CPU", 1) // self.cpus))
            task = ray.remote(sweep_one).options(num_cpus=self.cpus, num_gpus=gpus, max_retries=0)
            pending = {task.remote(spec, self.cpus): spec for spec in specs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready[0])
                try:
                    yield spec, ray.get(ready[0])
                except ray.exceptions.RayError as err:
                    yield spec, failed(spec, f"Ray task failed: {type(err).__name__}: {_first_line(err)}")
        except BaseException:
            for ref in list(locals().get("pending", {})):
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()

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
            raise HemError(f"cannot start or reach {where}: {_first_line(err)}") from None
        return True


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


# ---------------------------------------------------------------- Slurm: one job array per sweep


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
        slurm_minutes(options.slurm_time)  # checked before anything runs

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
            jobs = executor.map_array(sweep_one, specs, [self.cpus] * len(specs))
        except Exception as err:  # sbatch refused (unknown partition, time over the limit, ...)
            raise HemError(f"sbatch refused the job array: {_first_line(err)}") from None
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
                    alive.append((spec, executor.submit(sweep_one, spec, self.cpus)))
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
            return failed(spec, f"job {job.job_id} failed: {_first_line(err)} (log {job.paths.stderr})")
