"""``--backend local``: a queue over ``--jobs`` worker processes on this machine."""
from __future__ import annotations

import collections
import os
import select
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from hemcli.runs.execute import sweep_one
from hemcli.runs.spec import RunSpec
from hemcli.runs.sweep.backends import BackendOptions, cpu_count, failed


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
        if any(":" in spec.cfg["device"] for spec in specs):
            self.gpus = 0  # runs that name cuda:N need to see every GPU: no pinning
        pending = collections.deque(specs)
        while pending:  # a new pool after a worker died (killed, out of memory); the rest go on
            yield from self._pool(pending)

    def _pool(self, pending: collections.deque) -> Iterator[tuple[RunSpec, dict]]:
        context = worker_context()
        devices = context.Queue()
        for worker in range(self.jobs):
            devices.put(worker % self.gpus if self.gpus else None)
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_start_worker,
                                   initargs=(devices, self.threads, os.getpid()))
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
           "hemcli.losses", "hemcli.engine.loop", "hemcli.engine.optim"]


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


def _start_worker(devices, threads: int, sweep: int) -> None:
    _die_with_the_sweep(sweep)
    _prints_to_stderr()
    device = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def _prints_to_stderr() -> None:
    """The worker's stdout (descriptor and ``sys.stdout``) becomes its stderr: the sweep's stdout is
    for its report, whatever a library in a run prints, in Python or in C."""
    import sys

    try:
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), 1)
    except (AttributeError, OSError, ValueError):
        pass
    sys.stdout = sys.stderr


def _die_with_the_sweep(sweep: int) -> None:
    """End this worker as soon as the sweep process ends, even by kill -9, instead of training on as
    an orphan that holds its run's lock. (A worker's parent is the fork server, which outlives the
    sweep while workers hold its pipe, so a parent-death signal would not fire.)"""
    threading.Thread(target=_wait_for_exit, args=(sweep,), daemon=True, name="hem-sweep-watch").start()


def _wait_for_exit(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has ended
        select.select([handle], [], [])
    except ProcessLookupError:
        pass  # already gone
    except (AttributeError, OSError):  # no pidfd here: ask once a second
        while _alive(pid):
            time.sleep(1.0)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the pid was reused): ours is gone
        return False
