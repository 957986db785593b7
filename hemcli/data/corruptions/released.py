"""The released corruption benchmarks, read in place from the data root when present.

- MNIST-C (Mu & Gilmer 2019): ``<root>/mnist_c/<corruption>/test_images.npy`` (N, 28, 28, 1) uint8
  and ``test_labels.npy``; one severity; the ``identity`` folder (the clean set) is skipped.
- CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich 2019): ``<root>/CIFAR-10-C/<corruption>.npy``
  (S n, 32, 32, 3) uint8, severities 1..S stacked in order (rows (s-1) n .. s n - 1; S = 5 in the
  release) with n the size of the clean test set, and ``labels.npy`` (S n rows, or n).
- Tiny-ImageNet-C / ImageNet-C: ``<root>/<name>/<corruption>/<severity>/<wnid>/*.JPEG``; the label
  is the wnid folder through the caller's ``class_index`` (the training set's wnid -> label map).
  Images are resized (bilinear) to the clean test images' size when they differ.

Every corruption file or folder present is used (for the CIFAR and ImageNet sets the 15 common and
the 4 extra ones). A sample cap takes the same seeded subset of rows (of files, in sorted order)
in every set. Arrays are memory-mapped and folders listed only when a set is asked for; the arrays'
headers (dtype, shape, count against the clean test set) are checked when the release is opened,
which reads no image, so a bad file fails before a model is trained or measured.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hemcli.errors import HemError
from hemcli.data.checks import check_images
from hemcli.data.corruptions.mnist_c import MNIST_C_NAMES
from hemcli.data.corruptions.rgb import RGB_NAMES

RELEASES: dict[str, str] = {
    "mnist": "mnist_c", "cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C",
    "tin": "Tiny-ImageNet-C", "imagenet": "ImageNet-C",
}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_SEVERITY_NAMES = {"1", "2", "3", "4", "5"}

Array = tuple[np.ndarray, np.ndarray]  # uint8 (n, C, H, W) images, int64 labels
Loader = Callable[[], Array]


def release_folder(dataset: str, root: Path | None) -> Path | None:
    """The released set's folder for ``dataset`` under ``root``, if there is one."""
    if root is None or dataset not in RELEASES:
        return None
    folder = Path(root) / RELEASES[dataset]
    return folder if folder.is_dir() else None


def subset(count: int, samples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``samples`` out of ``count`` (all when None or more)."""
    if samples is None or samples >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng([seed, 0x5E7]).choice(count, size=samples, replace=False))


def _ordered(names: list[str], known: tuple[str, ...]) -> list[str]:
    """The benchmark's own order for known names, then any others alphabetically."""
    return [n for n in known if n in names] + sorted(set(names) - set(known))


def open_release(dataset: str, folder: Path, size: tuple[int, int], count: int, seed: int,
                 samples: int | None, class_index: dict[str, int] | None) -> dict[tuple[str, int], Loader]:
    """(corruption, severity) -> a function reading that set, for the release in ``folder``;
    ``size`` and ``count`` are the clean test images' (H, W) and number."""
    if dataset == "mnist":
        return _mnist_c(folder, size, seed, samples)
    if dataset in ("cifar10", "cifar100"):
        return _cifar_c(folder, size, count, seed, samples)
    if class_index is None:
        raise HemError(f"reading {folder} needs the training set's wnid -> label map (class_index)")
    return _image_folders(folder, size, seed, samples, class_index)


# ---- MNIST-C ----------------------------------------------------------------------------------


def _mnist_c(folder: Path, size: tuple[int, int], seed: int, samples: int | None) -> dict[tuple[str, int], Loader]:
    names = [d.name for d in folder.iterdir()
             if d.name != "identity" and (d / "test_images.npy").is_file()]
    for name in names:
        _mnist_c_arrays(folder / name, size)
    return {(name, 1): _mnist_c_loader(folder / name, size, seed, samples) for name in _ordered(names, MNIST_C_NAMES)}


def _mnist_c_arrays(folder: Path, size: tuple[int, int]) -> Array:
    """A corruption's images (N, H, W) and labels (N,), memory-mapped and checked: H, W the clean
    test images' ``size``, uint8, one integer label per image."""
    path = folder / "test_images.npy"
    stored = _npy(path)
    images = stored[..., 0] if stored.ndim == 4 and stored.shape[3] == 1 else stored
    if images.dtype != np.uint8 or images.shape[1:] != tuple(size):
        raise HemError(f"{path}: found images {stored.dtype} {stored.shape}, expected uint8 "
                       f"(N, {size[0]}, {size[1]}[, 1])")
    return images, _labels(folder / "test_labels.npy", (len(images),))


def _labels(path: Path, counts: tuple[int, ...]) -> np.ndarray:
    """The integer labels (n,) of ``path``, memory-mapped, n one of ``counts``."""
    labels = _npy(path)
    if labels.dtype.kind not in "iu" or labels.ndim != 1 or len(labels) not in counts:
        raise HemError(f"{path}: found labels {labels.dtype} {labels.shape}, expected integers "
                       f"({' or '.join(map(str, counts))},)")
    return labels


def _mnist_c_loader(folder: Path, size: tuple[int, int], seed: int, samples: int | None) -> Loader:
    def load() -> Array:
        images, labels = _mnist_c_arrays(folder, size)
        rows = subset(len(images), samples, seed)
        return np.asarray(images[rows])[:, None], np.asarray(labels[rows], dtype=np.int64)

    return load


def _npy(path: Path) -> np.ndarray:
    """A memory-mapped .npy array; a missing or malformed file is a HemError."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise HemError(f"cannot read {path}: {err}") from None


# ---- CIFAR-10-C / CIFAR-100-C -----------------------------------------------------------------


def _cifar_c(folder: Path, size: tuple[int, int], count: int, seed: int,
             samples: int | None) -> dict[tuple[str, int], Loader]:
    files = {p.stem: p for p in folder.glob("*.npy") if p.stem != "labels"}
    if files and not (folder / "labels.npy").is_file():
        raise HemError(f"{folder} has corruption files but no labels.npy")
    loaders = {}
    for name in _ordered(list(files), RGB_NAMES):
        rows = len(_cifar_c_arrays(files[name], folder / "labels.npy", size, count)[0])
        for severity in range(1, rows // count + 1):
            loaders[(name, severity)] = _cifar_c_loader(files[name], folder / "labels.npy", severity, size, count,
                                                        seed, samples)
    return loaders


def _cifar_c_arrays(path: Path, labels_path: Path, size: tuple[int, int], count: int) -> Array:
    """A corruption's images (S count, H, W, 3) and labels (S count or count), memory-mapped and
    checked: S in 1..5 severities of the ``count`` clean test images, H, W their ``size``, uint8."""
    images = check_images(_npy(path), path, (*size, 3))
    if len(images) % count or not 1 <= len(images) // count <= 5:
        raise HemError(f"{path} has {len(images)} images, not 1 to 5 severities of the {count} test images")
    return images, _labels(labels_path, tuple(dict.fromkeys((len(images), count))))


def _cifar_c_loader(path: Path, labels_path: Path, severity: int, size: tuple[int, int], count: int, seed: int,
                    samples: int | None) -> Loader:
    def load() -> Array:
        images, labels = _cifar_c_arrays(path, labels_path, size, count)
        rows = subset(count, samples, seed)
        if len(labels) == len(images):
            labels = labels[(severity - 1) * count: severity * count]
        block = images[(severity - 1) * count: severity * count]
        return np.asarray(block[rows]).transpose(0, 3, 1, 2).copy(), np.asarray(labels[rows], dtype=np.int64)

    return load


# ---- Tiny-ImageNet-C / ImageNet-C -------------------------------------------------------------


def _image_folders(folder: Path, size: tuple[int, int], seed: int, samples: int | None,
                   class_index: dict[str, int]) -> dict[tuple[str, int], Loader]:
    names = [d.name for d in folder.iterdir() if d.is_dir()]
    loaders = {}
    for name in _ordered(names, RGB_NAMES):
        levels = sorted(int(d.name) for d in (folder / name).iterdir() if d.is_dir() and d.name in _SEVERITY_NAMES)
        for severity in levels:
            loaders[(name, severity)] = _folder_loader(folder / name / str(severity), size, seed, samples,
                                                       class_index)
    return loaders


def _folder_loader(folder: Path, size: tuple[int, int], seed: int, samples: int | None,
                   class_index: dict[str, int]) -> Loader:
    def load() -> Array:
        files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise HemError(f"{folder} holds no <wnid>/*.JPEG images")
        unknown = sorted({p.parent.name for p in files} - set(class_index))
        if unknown:
            raise HemError(f"{folder}: class folder {unknown[0]!r} is not a class of the training set "
                           f"({len(unknown)} such)")
        chosen = [files[i] for i in subset(len(files), samples, seed)]
        images = np.stack([_read_rgb(p, size) for p in chosen]).transpose(0, 3, 1, 2).copy()
        return images, np.array([class_index[p.parent.name] for p in chosen], dtype=np.int64)

    return load


def _read_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) of an image file, resized (bilinear) to ``size`` = (H, W) if it differs."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except OSError as err:
        raise HemError(f"cannot read image {path}: {err}") from None
