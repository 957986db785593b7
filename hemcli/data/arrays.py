"""Files that hold whole arrays -- CIFAR's pickled batches, SVHN's .mat, the KMNIST authors' npz --
read and checked in one place, for the training sets (``vision``) and the real unknown sets
(``unknown_real``) alike: a file too short, of another shape or dtype, or with a label outside the
dataset's classes is one line naming it (``hemcli.data.checks``).

CIFAR's pickles are unpickled so that only numpy arrays and plain values can be built: a planted
file cannot run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from hemcli.data.checks import check_images, check_labels, check_pairs
from hemcli.errors import HemError

CIFAR_ROW = 3 * 32 * 32  # a row of b"data": the R, G, B planes of a 32x32 image, each row-major
SVHN_SHAPE = (32, 32, 3)  # X is (height, width, colour, image)


class ArraysOnly(pickle.Unpickler):
    """An unpickler for CIFAR's files that builds numpy arrays and nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """Stands in for ``_codecs.encode``, which Python 3's protocol-2 pickles use for bytes; only the
    latin-1 form numpy and pickle write is accepted."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def cifar_batch(path: Path, label_key: bytes | None = None, num_classes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """One pickled CIFAR batch: uint8 images (N, 3, 32, 32) from b"data" (N, 3072), and the labels
    under ``label_key``, checked to be in 0..num_classes-1 (no ``label_key``: none are read, as an
    unknown set needs none)."""
    try:
        with open(path, "rb") as handle:
            batch = ArraysOnly(handle, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = None if label_key is None else batch[label_key]
    except Exception as err:  # unpickling fails in many ways (UnpicklingError, EOFError, KeyError, ...)
        raise HemError(f"cannot read the CIFAR batch {path}: {type(err).__name__}: {err}") from None
    check_images(data, path, (CIFAR_ROW,), what="b'data'")
    if labels is not None:
        labels = check_labels(labels, num_classes, path)
        check_pairs(len(data), len(labels), path)
    return data.reshape(-1, 3, 32, 32), labels


def svhn_mat(path: Path, num_classes: int = 10, labels: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """SVHN's format-2 .mat: X (32, 32, 3, N) uint8 as (N, 3, 32, 32), and y (the digits 1..10, 10
    meaning 0) as labels 0..9 (``labels`` False: y is not read)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"] if labels else ["X"])
        images, digits = mat["X"], (np.asarray(mat["y"]).reshape(-1) if labels else None)
    except Exception as err:  # a truncated or foreign .mat fails with ValueError, KeyError, OSError, ...
        raise HemError(f"cannot read {path}: {type(err).__name__}: {err}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != SVHN_SHAPE:
        raise HemError(f"{path}: X is {images.dtype} {images.shape}, expected uint8 (32, 32, 3, N)")
    if digits is not None:
        # the digits 1..9 are themselves, 10 is the digit 0: the labels 0..9
        digits = check_labels(digits, num_classes, path, low=1) % num_classes
        check_pairs(images.shape[3], len(digits), path)
    return np.transpose(images, (3, 2, 0, 1)), digits


def npz_array(path: Path) -> np.ndarray:
    """The array of an npz file in the KMNIST authors' format (key ``arr_0``)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["arr_0"]
    except Exception as err:  # a foreign or truncated npz fails with KeyError, ValueError, BadZipFile, ...
        raise HemError(f"cannot read {path}: {type(err).__name__}: {err}") from None
