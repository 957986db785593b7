"""Generating corruption sets from a test set, in parallel processes, through the cache.

One job is one (corruption, severity) over every chosen test image. Image i (its index in the
whole test set) is corrupted with the seed ``image_seed(seed, corruption, severity, i)``, so a job's
output depends only on its inputs: not on the worker that runs it, the order, the worker count,
nor on which other images are in the subset.

Workers are separate processes (``ProcessPoolExecutor``, start method "spawn": safe with torch's
threads, and the same on every platform); the test images go to each worker once, through the
pool initializer, and each job writes its array to the cache and returns only the path.
``workers=1`` runs every job in this process.
"""
from __future__ import annotations

import os
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Union

import numpy as np

from hemcli.data.corruptions import cache
from hemcli.data.corruptions.mnist_c import corrupt_grey
from hemcli.data.corruptions.rgb import corrupt_rgb

Job = tuple[str, int]  # (corruption, severity)
Result = Union[Path, np.ndarray]  # where the array was written, or the array when it could not be
Progress = Callable[[int, int], None]


def image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """A 32-bit seed for one image: numpy's SeedSequence over (seed, CRC-32 of the name,
    severity, index), so neighbouring seeds or indices give unrelated streams."""
    entropy = [seed, zlib.crc32(corruption.encode()), severity, index]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def corrupt_batch(images: np.ndarray, indices: np.ndarray, corruption: str, severity: int,
                  seed: int) -> np.ndarray:
    """uint8 (n, C, H, W) -> uint8 (n, C, H, W): MNIST-C's ``corruption`` for C = 1,
    imagecorruptions' at ``severity`` for C = 3; image j seeded by its test-set index indices[j]."""
    out = np.empty_like(images)
    for j, index in enumerate(indices.tolist()):
        s = image_seed(seed, corruption, severity, index)
        if images.shape[1] == 1:
            out[j, 0] = corrupt_grey(images[j, 0], corruption, np.random.default_rng(s))
        else:
            out[j] = corrupt_rgb(images[j].transpose(1, 2, 0), corruption, severity, s).transpose(2, 0, 1)
    return out


def _run_one(images: np.ndarray, indices: np.ndarray, job: Job, seed: int, path: Path | None) -> Result:
    """One job; its array written to ``path`` when given (and writable), else returned."""
    array = corrupt_batch(images, indices, job[0], job[1], seed)
    if path is None:
        return array
    try:
        cache.save(path, array)
    except OSError as err:
        cache.warn_once(path.parent, f"cannot write {path} ({err.strerror or err}); keeping the set in memory")
        return array
    return path


_WORKER: dict = {}  # a pool process's test images, set once by the initializer


def _init_worker(images: np.ndarray, indices: np.ndarray, seed: int) -> None:
    _WORKER.update(images=images, indices=indices, seed=seed)


def _pool_job(job: Job, path: Path | None) -> Result:
    return _run_one(_WORKER["images"], _WORKER["indices"], job, _WORKER["seed"], path)


def run_jobs(images: np.ndarray, indices: np.ndarray, jobs: list[Job], seed: int, folder: Path | None,
             workers: int | None = None, progress: Progress | None = None) -> list[Result]:
    """Every job's result, in ``jobs`` order: cached files (``folder``) are reused, the rest made
    by ``workers`` processes (default: the CPU count). ``progress(done, total)`` after each job."""
    paths = [cache.set_file(folder, *job) if folder else None for job in jobs]
    results: list[Result | None] = [p if p and cache.readable(p, images.shape) else None for p in paths]
    todo = [i for i, r in enumerate(results) if r is None]
    report = progress or (lambda done, total: None)
    report(len(jobs) - len(todo), len(jobs))
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers <= 1:
        for i in todo:
            results[i] = _run_one(images, indices, jobs[i], seed, paths[i])
            report(sum(r is not None for r in results), len(jobs))
    else:
        _run_pool(images, indices, jobs, seed, paths, todo, workers, results, report)
    return results  # type: ignore[return-value]


def _run_pool(images, indices, jobs, seed, paths, todo, workers, results, report) -> None:
    """``run_jobs``' parallel half: fills ``results`` in place; a failed job cancels the rest."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(images, indices, seed)) as pool:
        pending = {pool.submit(_pool_job, jobs[i], paths[i]): i for i in todo}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    results[pending.pop(future)] = future.result()
                report(sum(r is not None for r in results), len(jobs))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
