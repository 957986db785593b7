"""Where generated corruption sets are kept between runs: never in the data folder (it may be
read-only or shared), but under ``$HEM_CACHE`` if set, else ``~/.cache/hem``:

    <cache>/corruptions/<dataset>/<key>/<corruption>-s<severity>.npy     uint8 (n, C, H, W)

``key`` names everything the arrays depend on: the generator version, the evaluation seed, the
sample count and a hash of the test images and labels, so a changed test set (or a change to the
corruption code, by bumping ``VERSION``) never reuses a stale file. Files are written to a temporary
name in the same folder and renamed into place, so a killed generation leaves no half file.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from hemcli.errors import HemError
from hemcli.progress import warn

VERSION = 1  # bump when a corruption's output changes, so old cached sets are not reused
_WARNED: set[str] = set()  # folders already warned about, to warn once per process


def cache_root() -> Path:
    """``$HEM_CACHE``, else ``~/.cache/hem``."""
    return Path(os.environ.get("HEM_CACHE") or Path.home() / ".cache" / "hem").expanduser()


def data_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """First 12 hex digits of SHA-256 over the shapes, uint8 images and int64 labels."""
    digest = hashlib.sha256(repr((images.shape, labels.shape)).encode())
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return digest.hexdigest()[:12]


def set_key(seed: int, samples: int | None, digest: str) -> str:
    """e.g. ``v1-seed0-n500-3fa2c4e1b0d9`` (``nall`` when the whole test set is used)."""
    return f"v{VERSION}-seed{seed}-n{'all' if samples is None else samples}-{digest}"


def set_folder(dataset: str, key: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dataset):
        raise HemError(f"dataset name {dataset!r} cannot name a cache folder; use letters, digits, '.', '_', '-'")
    return cache_root() / "corruptions" / dataset / key


def set_file(folder: Path, corruption: str, severity: int) -> Path:
    return folder / f"{corruption}-s{severity}.npy"


def writable(folder: Path) -> bool:
    """Create ``folder`` and check a file can be made in it; warn once (per folder) if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        return True
    except OSError as err:
        warn_once(folder, f"cannot write the corruption cache {folder} ({err.strerror or err}); "
                          "generating without caching (set HEM_CACHE to a writable folder)")
        return False


def warn_once(folder: Path, text: str) -> None:
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        warn(text)


def save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy atomically: a temporary file in the same folder, then os.replace."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False)
    try:
        with handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def readable(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether ``path`` holds a uint8 array of ``shape`` (read from its header only)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.shape == tuple(shape)
