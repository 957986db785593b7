"""The training set's pixel count per class, which HEM's margins and logit adjustment need.

Counting a streamed set reads every label file, so the counts are kept as JSON outside the data
folder (which may be read-only or shared), under the corruption cache's root (``$HEM_CACHE``, else
``~/.cache/hem``):

    <cache>/segmentation/<dataset>-<key>.json      {"dataset", "root", "files", ..., "counts": [...]}

``key`` hashes what the counts depend on: each label file's resolved path, size and modification
time (for a generated set, the masks themselves), the class count and the ignore index, so a changed
file gives a new key, never a stale count. A cache that cannot be written is warned about once, and
the counts are used all the same.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import torch

from hemcli.data.corruptions.cache import cache_root, warn_once
from hemcli.errors import HemError

VERSION = 1  # bump when the counting changes, so older cached counts are not reused


def pixel_class_counts(name: str, root: str | None, data, num_classes: int, ignore_index: int) -> list[int]:
    """Pixels of each class 0..C-1 in ``data`` (a SegmentationData: the whole training split), ignored
    pixels left out; read from the cache when this exact set was counted before."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise HemError(f"dataset name {name!r} cannot name a cache file; use letters, digits, '.', '_', '-'")
    key = count_key(data, num_classes, ignore_index)
    if key is None:  # a streamed set without label files: nothing cheap to key it by
        return count_pixels(data, num_classes, ignore_index)
    path = cache_root() / "segmentation" / f"{name}-{key}.json"
    cached = _read(path, num_classes)
    if cached is not None:
        return cached
    counts = count_pixels(data, num_classes, ignore_index)
    _write(path, {"dataset": name, "root": None if root is None else str(Path(root).expanduser().resolve()),
                  "files": len(data.files), "num_classes": num_classes, "ignore_index": ignore_index,
                  "counts": counts})
    return counts


def count_pixels(data, num_classes: int, ignore_index: int) -> list[int]:
    """The per-class pixel counts by bincount, the ignore index left out."""
    total = torch.zeros(num_classes, dtype=torch.int64)
    for masks in data.iter_masks():
        kept = masks[masks != ignore_index].cpu()
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= num_classes):
            # the readers reject such values; a mask built elsewhere might still hold one
            raise HemError(f"a mask holds {int(kept.max())}, outside the classes 0..{num_classes - 1}")
        total += torch.bincount(kept, minlength=num_classes)
    return total.tolist()


def count_key(data, num_classes: int, ignore_index: int) -> str | None:
    """16 hex digits of SHA-256 over what the counts depend on; None where that is not cheap to know."""
    digest = hashlib.sha256(f"v{VERSION} classes {num_classes} ignore {ignore_index}\n".encode())
    if data.files:
        for file in data.files:
            stat = file.stat()
            digest.update(f"{file.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    elif data.in_memory:
        masks = data.masks.cpu().contiguous()
        digest.update(repr(tuple(masks.shape)).encode())
        digest.update(memoryview(masks.numpy()).cast("B"))
    else:
        return None
    return digest.hexdigest()[:16]


def _read(path: Path, num_classes: int) -> list[int] | None:
    """The cached counts, or None when absent, unreadable or not ``num_classes`` counts."""
    try:
        counts = json.loads(path.read_text())["counts"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(counts, list) and len(counts) == num_classes
            and all(isinstance(c, int) and c >= 0 for c in counts)):
        return None
    return counts


def _write(path: Path, record: dict) -> None:
    """Write ``record`` atomically (a temporary file in the same folder, then os.replace); warn once
    per folder, and go on, where the cache cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp",
                                             delete=False)
        try:
            with handle:
                json.dump(record, handle)
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    except OSError as err:
        warn_once(path.parent, f"cannot write the class-count cache {path.parent} ({err.strerror or err}); "
                               "counting again next run (set HEM_CACHE to a writable folder)")
