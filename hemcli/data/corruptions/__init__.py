"""Common-corruption test sets for the corrupt accuracy (the paper's Appendix B.1.2: the mean accuracy over every
corruption at every severity, recording which were used).

``corruption_sets(dataset, test_x, test_y, root, ...)`` returns ``(source, sets)``:

- a released benchmark when ``root`` holds one for ``dataset`` (``released``: MNIST-C for mnist,
  CIFAR-10-C / CIFAR-100-C, Tiny-ImageNet-C, ImageNet-C): ``source = "released:<folder>"``;
- otherwise sets generated from the test set, seeded by the evaluation ``seed`` (not the training
  seed) so every loss and every run is scored on the same images: MNIST-C's 15 corruptions at their
  one severity for greyscale images (``mnist_c``; ``source = "generated:mnist-c"``), imagecorruptions'
  15 + 4 at severities 1..5 for RGB ones (``rgb``; ``source = "generated:imagecorruptions"``).
  Generation runs in parallel processes and is cached outside the data folder (``cache``).

``sets`` is a ``CorruptionSets``: a read-only sequence of ``CorruptionSet`` in a fixed order
(corruption, then severity) that reads each set only when it is indexed or iterated, so 19 x 5
CIFAR-sized sets (or ImageNet-C) are never all in memory: iterate it once, score each set, drop it.
``sets.keys`` names every (corruption, severity) used, for the result record.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from hemcli.data.corruptions import cache, released
from hemcli.data.corruptions.mnist_c import MNIST_C_NAMES
from hemcli.data.corruptions.rgb import RGB_NAMES, SEVERITIES
from hemcli.errors import HemError

__all__ = ["CorruptionSet", "CorruptionSets", "check_corruption_inputs", "corruption_names", "corruption_sets"]


@dataclass(frozen=True)
class CorruptionSet:
    """One corruption at one severity: images float32 (N, C, H, W) in [0, 1], int64 labels (N,)."""

    corruption: str
    severity: int
    images: torch.Tensor
    labels: torch.Tensor


class CorruptionSets(Sequence):
    """``CorruptionSet``s read on demand: ``len``, indexing and iteration as a list, plus ``keys``
    (every (corruption, severity), in order) and ``corruptions`` (the names, in order)."""

    def __init__(self, loaders: dict[tuple[str, int], Callable[[], tuple[np.ndarray, np.ndarray]]],
                 keep: object = None):
        self._loaders = loaders
        self._keys = list(loaders)
        self._keep = keep  # e.g. the temporary folder the arrays lie in, alive as long as this is

    @property
    def keys(self) -> list[tuple[str, int]]:
        return list(self._keys)

    @property
    def corruptions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        name, severity = self._keys[i]
        images, labels = self._loaders[(name, severity)]()
        return CorruptionSet(name, severity, torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0),
                             torch.as_tensor(labels, dtype=torch.int64))

    def __iter__(self) -> Iterator[CorruptionSet]:
        return (self[i] for i in range(len(self)))


def corruption_names(channels: int) -> tuple[str, ...]:
    """What would be generated: MNIST-C's 15 for 1 channel, imagecorruptions' 19 for 3."""
    if channels == 1:
        return MNIST_C_NAMES
    if channels == 3:
        return RGB_NAMES
    raise HemError(f"corruptions are defined for 1 or 3 channels, not {channels}")


def corruption_sets(dataset: str, test_x: torch.Tensor, test_y: torch.Tensor, root: Path | None,
                    seed: int = 0, samples: int | None = None, workers: int | None = None,
                    class_index: dict[str, int] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[str, CorruptionSets]:
    """The corrupted test sets of ``dataset`` and where they come from (see the module doc).

    test_x: float (N, C, H, W) in [0, 1], C = 1 or 3; test_y: (N,) labels. ``samples`` caps the
    images per set (a seeded subset, the same in every set); ``workers`` the generating processes
    (default: CPU count; 1 = in this process); ``class_index`` maps wnid folders to labels for
    Tiny-ImageNet-C / ImageNet-C; ``progress(done, total)`` is called as generation jobs finish
    (cached ones count at once; released sets call it once, done).
    """
    _check(test_x, test_y, seed, samples, workers)
    folder = released.release_folder(dataset, root)
    if folder is not None:
        size, count = tuple(test_x.shape[2:]), len(test_y)
        loaders = released.open_release(dataset, folder, size, count, seed, samples, class_index)
        if loaders:
            if progress:
                progress(len(loaders), len(loaders))
            return f"released:{folder}", CorruptionSets(loaders)
        cache.warn_once(folder, f"{folder} holds no corruption sets; generating them instead")
    return _generated(dataset, test_x, test_y, seed, samples, workers, progress)


def check_corruption_inputs(dataset: str, test_x: torch.Tensor, test_y: torch.Tensor, root: Path | None) -> None:
    """Open the files ``corruption_sets`` would read -- a released benchmark's arrays, checked by
    their headers against the test set -- reading no image and generating nothing, so that a bad
    file fails before a model is trained."""
    _check(test_x, test_y, 0, None, None)
    folder = released.release_folder(dataset, root)
    if folder is not None:
        released.open_release(dataset, folder, tuple(test_x.shape[2:]), len(test_y), 0, None, None)


def _check(test_x, test_y, seed, samples, workers) -> None:
    """One-line errors for arguments no set can be made from."""
    if test_x.ndim != 4 or test_x.shape[1] not in (1, 3):
        raise HemError(f"corruptions need images (N, 1 or 3, H, W), got shape {tuple(test_x.shape)}")
    if len(test_x) != len(test_y) or len(test_x) == 0:
        raise HemError(f"corruptions need as many labels as images (>= 1), got {len(test_x)} and {len(test_y)}")
    for name, value, least in (("seed", seed, 0), ("samples", samples, 1), ("workers", workers, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise HemError(f"corruption {name} must be an integer >= {least}, got {value!r}")


def _generated(dataset, test_x, test_y, seed, samples, workers, progress) -> tuple[str, CorruptionSets]:
    """Generate (or read from the cache) every set for ``test_x``; see ``generate.run_jobs``."""
    from hemcli.data.corruptions.generate import run_jobs
    from hemcli.data.corruptions.mnist_c import to_u8

    images = to_u8(test_x.detach().cpu().numpy())
    labels = test_y.detach().cpu().numpy().astype(np.int64)
    rows = released.subset(len(labels), samples, seed)
    count = None if len(rows) == len(labels) else len(rows)
    folder = cache.set_folder(dataset, cache.set_key(seed, count, cache.data_hash(images, labels)))
    keep = None
    if not cache.writable(folder):
        keep = _temporary_folder()
        folder = Path(keep.name) if keep else None
    grey = images.shape[1] == 1
    severities = (1,) if grey else SEVERITIES  # MNIST-C has one level per corruption
    jobs = [(name, severity) for name in corruption_names(images.shape[1]) for severity in severities]
    results = run_jobs(np.ascontiguousarray(images[rows]), rows, jobs, seed, folder, workers, progress)
    chosen = labels[rows]
    loaders = {job: _reader(result, chosen) for job, result in zip(jobs, results)}
    return f"generated:{'mnist-c' if grey else 'imagecorruptions'}", CorruptionSets(loaders, keep)


def _temporary_folder():
    """A temporary folder for this evaluation's sets when the cache cannot be written; None when
    there is none either (the sets then stay in memory)."""
    try:
        return tempfile.TemporaryDirectory(prefix="hem-corruptions-")
    except OSError:
        return None


def _reader(result, labels: np.ndarray) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def read() -> tuple[np.ndarray, np.ndarray]:
        return (np.load(result, allow_pickle=False) if isinstance(result, Path) else result), labels

    return read
