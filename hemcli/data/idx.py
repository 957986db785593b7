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

from hemcli.errors import HemError

_PREFIXES = {"train": "train", "test": "t10k"}
_MAGIC = {"images": 2051, "labels": 2049}


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
    if body.size != int(np.prod(shape)):
        raise HemError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}")
    return body.reshape(shape)


def read_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 (N, 1, H, W) in [0, 1] and int64 labels; a missing file is a HemError."""
    paths = {kind: _find(raw, split, kind) for kind in _MAGIC}
    missing = [kind for kind, path in paths.items() if path is None]
    if missing:
        wanted = ", ".join(f"{_PREFIXES[split]}-{k}-idx{3 if k == 'images' else 1}-ubyte[.gz]" for k in missing)
        raise HemError(f"{split} split missing in {raw}: need {wanted}")
    images = torch.from_numpy(read_idx(paths["images"], "images").copy())
    labels = torch.from_numpy(read_idx(paths["labels"], "labels").astype(np.int64))
    if len(images) != len(labels):
        raise HemError(f"{raw}: {len(images)} {split} images but {len(labels)} labels")
    return images.unsqueeze(1).float().div_(255.0), labels
