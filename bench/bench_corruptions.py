"""Corruption-set generation speed, in corrupted images per second, end to end (worker start-up,
imports, numba's first compile of glass blur in each worker, cache writes included), with one
worker per CPU and an empty cache (HEM_CACHE pointed at a fresh temporary folder):

- greyscale: MNIST-C's 15 corruptions of 200 28x28 images, through ``corruption_sets``;
- RGB: imagecorruptions' 19 corruptions at severity 3 of 50 32x32 images (the jobs
  ``corruption_sets`` runs, limited to one severity).

Run alone: ``python -m bench.bench_corruptions``.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage


def _images(n: int, channels: int, side: int, seed: int = 0) -> np.ndarray:
    """Smooth random float images (n, channels, side, side) in [0, 1]: blurred noise, stretched."""
    noise = np.random.default_rng(seed).random((n, channels, side, side))
    smooth = ndimage.gaussian_filter(noise, sigma=(0, 0, 2, 2))
    low, high = smooth.min(axis=(2, 3), keepdims=True), smooth.max(axis=(2, 3), keepdims=True)
    return ((smooth - low) / (high - low)).astype(np.float32)


def _grey(workers: int, n: int = 200) -> dict:
    from hemcli.data.corruptions import corruption_sets

    x = torch.from_numpy(_images(n, 1, 28))
    start = time.perf_counter()
    _, sets = corruption_sets("bench-grey", x, torch.zeros(n, dtype=torch.int64), None, workers=workers)
    seconds = time.perf_counter() - start
    return {"what": f"MNIST-C corruptions, {n} 28x28 images x {len(sets)} corruptions, {workers} workers",
            "images": n * len(sets), "seconds": seconds, "images_per_s": n * len(sets) / seconds}


def _rgb(workers: int, folder: Path, n: int = 50, severity: int = 3) -> dict:
    from hemcli.data.corruptions.generate import run_jobs
    from hemcli.data.corruptions.mnist_c import to_u8
    from hemcli.data.corruptions.rgb import RGB_NAMES

    images = to_u8(_images(n, 3, 32, seed=1))
    jobs = [(name, severity) for name in RGB_NAMES]
    start = time.perf_counter()
    run_jobs(images, np.arange(n), jobs, 0, folder, workers)
    seconds = time.perf_counter() - start
    return {"what": f"imagecorruptions, {n} 32x32 images x {len(jobs)} corruptions at severity {severity}, "
                    f"{workers} workers",
            "images": n * len(jobs), "seconds": seconds, "images_per_s": n * len(jobs) / seconds}


def bench_corruptions(workers: int | None = None) -> list[dict]:
    """Both measurements, each with a fresh empty cache."""
    workers = workers or os.cpu_count() or 1
    saved = os.environ.get("HEM_CACHE")
    try:
        with tempfile.TemporaryDirectory(prefix="hem-bench-cache-") as tmp:
            os.environ["HEM_CACHE"] = tmp
            results = [_grey(workers)]
            folder = Path(tmp) / "rgb"
            folder.mkdir()
            results.append(_rgb(workers, folder))
    finally:
        if saved is None:
            os.environ.pop("HEM_CACHE", None)
        else:
            os.environ["HEM_CACHE"] = saved
    return results


if __name__ == "__main__":
    for entry in bench_corruptions():
        print(f"{entry['what']}: {entry['images_per_s']:.0f} images/s "
              f"({entry['images']} in {entry['seconds']:.1f}s)")
