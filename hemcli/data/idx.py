"""Reading the IDX files of MNIST-like sets (MNIST, Fashion-MNIST, KMNIST) directly.

Read directly rather than through torchvision's dataset classes because those insist on their own
checksums (a re-compressed but identical copy is refused and re-downloaded) and on all four files.
IDX: a big-endian header (magic 2051 for images: count, rows, cols; 2049 for labels: count), then
uint8 values. Files may be gzip-compressed.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from hemcli.data.checks import check_images, check_labels, check_pairs
from hemcli.errors import HemError

_PREFIXES = {"train": "train", "test": "t10k"}
_MAGIC = {"images": 2051, "labels": 2049}
MNIST_SIZE = (28, 28)  # the images of every MNIST-like set


def _find(raw: Path, split: str, kind: str) -> Path | None:
    stem = f"{_PREFIXES[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
    for name in (stem, stem + ".gz"):
        if (raw / name).is_file():
            return raw / name
    return None


def images_file(raw: Path, split: str) -> Path | None:
    """The images file of ``split`` ("train" or "test") in ``raw`` (plain or .gz), None if absent."""
    return _find(raw, split, "images")


def labels_file(raw: Path, split: str) -> Path | None:
    """The labels file of ``split`` in ``raw`` (plain or .gz), None if absent."""
    return _find(raw, split, "labels")


def has_split(raw: Path, split: str) -> bool:
    return all(_find(raw, split, kind) is not None for kind in _MAGIC)


def read_idx(path: Path, kind: str) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise HemError(f"cannot read {path}: {err}") from None
    dims = 3 if kind == "images" else 1
    header = np.frombuffer(data[: 4 * (dims + 1)], dtype=">i4")
    if len(header) != dims + 1 or header[0] != _MAGIC[kind]:
        raise HemError(f"{path} is not an IDX {kind} file (bad magic number)")
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 * (dims + 1))
    expected = int(np.prod(shape))
    if body.size < expected:
        raise HemError(f"{path} is truncated: expected {expected} values, found {body.size}")
    if body.size > expected:  # a header count smaller than the data: the file is not what it says
        raise HemError(f"{path}: its header says {' x '.join(map(str, shape))} = {expected} values, but "
                       f"{body.size} follow")
    return body.reshape(shape)


def read_arrays(raw: Path, split: str, num_classes: int = 10, size: tuple[int, int] = MNIST_SIZE
                ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) of ``size`` and int64 labels in 0..num_classes-1 of ``split``, each
    checked against its file; a missing file is a HemError."""
    paths = {kind: _find(raw, split, kind) for kind in _MAGIC}
    missing = [kind for kind, path in paths.items() if path is None]
    if missing:
        wanted = ", ".join(f"{_PREFIXES[split]}-{k}-idx{3 if k == 'images' else 1}-ubyte[.gz]" for k in missing)
        raise HemError(f"{split} split missing in {raw}: need {wanted}")
    images = read_idx(paths["images"], "images")
    check_images(images, paths["images"], size)
    labels = read_idx(paths["labels"], "labels")
    check_pairs(len(images), len(labels), paths["images"], paths["labels"])
    return images, check_labels(labels, num_classes, paths["labels"])


def read_split(raw: Path, split: str, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 (N, 1, 28, 28) in [0, 1] and int64 labels (``read_arrays``)."""
    images, labels = read_arrays(raw, split, num_classes)
    return torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0), torch.from_numpy(labels)
