"""The checks every dataset reader makes on what it read, so a bad file is one line naming the file
and its first bad entry (``…/t10k-labels-idx1-ubyte.gz: label 78 at index 3 is outside 0..9``),
found when the data is loaded -- never later as a misleading class count, a silently dropped
sample, or a run that trains on it.

Readers call them where the file name is still known; the class count comes down from the
dataset's registry record (``hemcli.data.DATASETS``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hemcli.errors import HemError


def check_labels(labels, num_classes: int, where: Path | str, low: int = 0) -> np.ndarray:
    """``labels`` as int64 (N,), each a whole number in ``low .. low + num_classes - 1``; a HemError
    naming ``where`` and the first label that is not."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise HemError(f"{where}: labels are shaped {array.shape}, expected one label per image (N,)")
    if array.dtype.kind not in "biuf":
        raise HemError(f"{where}: labels are {array.dtype}, expected integers")
    high = low + num_classes - 1
    with np.errstate(invalid="ignore"):  # NaN compares False everywhere: it is caught as not whole
        whole = array == np.floor(array) if array.dtype.kind == "f" else np.ones(array.shape, bool)
        bad = np.flatnonzero(~whole | ~((array >= low) & (array <= high)))
    if bad.size:
        i = int(bad[0])
        value = array[i].item()  # a Python number, spelled as the file has it
        if not whole[i]:
            raise HemError(f"{where}: label {value!r} at index {i} is not a whole number")
        raise HemError(f"{where}: label {int(value)} at index {i} is outside {low}..{high}")
    return array.astype(np.int64)


def check_images(images: np.ndarray, where: Path | str, shape: tuple[int, ...], what: str = "images"
                 ) -> np.ndarray:
    """``images`` checked to be uint8 (N, *shape); ``what`` names them as the file does (e.g. "X")."""
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != tuple(shape):
        expected = ", ".join(["N", *map(str, shape)])
        raise HemError(f"{where}: found {what} {images.dtype} {tuple(images.shape)}, expected uint8 ({expected})")
    return images


def check_pairs(images: int, labels: int, where: Path | str, labels_where: Path | str | None = None) -> None:
    """As many labels as images: ``where`` holds both, or the images and ``labels_where`` the labels."""
    if images != labels:
        if labels_where is None or Path(labels_where) == Path(where):
            raise HemError(f"{where}: {images} images but {labels} labels")
        raise HemError(f"{where} holds {images} images but {labels_where} holds {labels} labels")
