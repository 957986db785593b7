"""Real unknown-class sets, read from the data folder in each set's usual layout (never downloaded).

``REAL_UNKNOWN`` maps a training set to its real unknown sets (paper, Appendix B). Each set is read
from ``root`` (the ``--data-root`` of the training data), only its test split:

- ``mnist`` / ``fashion-mnist`` / ``kmnist``: torchvision's ``MNIST/raw``, ``FashionMNIST/raw``,
  ``KMNIST/raw`` test images (``t10k-images-idx3-ubyte[.gz]``); KMNIST also as its authors' npz,
  ``KMNIST/kmnist-test-imgs.npz`` (key ``arr_0``, uint8 N x 28 x 28).
- ``omniglot``: ``omniglot-py/`` (torchvision) or ``omniglot/``; the evaluation alphabets
  ``images_evaluation`` (what the paper used), else ``images_background``, else
  ``images_background_small1`` + ``images_background_small2`` (either or both); each a folder or a
  .zip read in place. The 105x105 PNGs are black strokes on white: inverted to white on black, as
  MNIST-like images are.
- ``svhn``: torchvision's ``test_32x32.mat`` (also accepted under ``svhn/``).
- ``cifar10`` / ``cifar100``: torchvision's ``cifar-10-batches-py/test_batch`` and
  ``cifar-100-python/test`` pickles (only numpy arrays may be unpickled from them).
- ``textures``: DTD, ``dtd/images/<class>/*.jpg`` (torchvision nests it as ``dtd/dtd/images``); all
  5640 images, as OpenOOD uses DTD as a whole (DTD's splits only matter for training on it).
- ``imagenet-o``: Hendrycks' release, ``imagenet-o/<wnid>/*.jpg``.
- ``inaturalist``: ``inaturalist/`` (or ``iNaturalist/``): its ``val/`` folder (iNaturalist 2021
  validation, ``val/<class>/*.jpg``) when there is one, else every image anywhere below it
  (e.g. the 10 000-image OOD subset of Huang & Li 2021, ``iNaturalist/images/``).

Images become float32 (m, channels, size, size) in [0, 1]: RGB to grey by ITU-R 601 luma
(0.299 R + 0.587 G + 0.114 B, as PIL and torchvision do), grey to RGB by repeating; the central
square is cropped (the short side resized and the long one center-cropped, up to rounding) and
resized with antialiased bilinear interpolation. When more than ``n`` images are available a
seeded subset of ``n`` is taken (in file order), chosen before any image file is decoded.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hemcli.data import arrays, idx
from hemcli.errors import HemError, unknown_name

HELD_OUT = "held-out-classes"  # not read from files: the dataset's own held-out classes

REAL_UNKNOWN: dict[str, tuple[str, ...]] = {
    "digits": (),  # scikit-learn's 8x8 digits: no real set of that kind to compare with
    "digits-heldout": (HELD_OUT,),
    "mnist": ("omniglot", "fashion-mnist", "kmnist"),
    "fashion-mnist": ("omniglot", "mnist", "kmnist"),
    "kmnist": ("omniglot", "mnist", "fashion-mnist"),
    "cifar10": ("textures", "svhn", "cifar100"),
    "cifar100": ("textures", "svhn", "cifar10"),
    "tin": ("textures", "inaturalist", "imagenet-o"),
    "imagenet": ("textures", "inaturalist", "imagenet-o"),
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = ("1", "L", "LA")
_LUMA = (0.299, 0.587, 0.114)

Handle = tuple[Path, "str | None"]  # an image file, or a zip and the member inside it


@dataclass(frozen=True)
class RealUnknown:
    """A real unknown set found under the data root: ``source`` (what is read, relative to the
    root, e.g. "omniglot/images_background_small1.zip+images_background_small2.zip"), ``count``
    (images available) and ``reader(size, channels, n, seed)`` (the images)."""

    name: str
    source: str
    count: int
    reader: Callable[[int, int, int, int], torch.Tensor]

    def load(self, size: int, channels: int, n: int = 10000, seed: int = 0) -> torch.Tensor:
        """float32 (min(n, count), channels, size, size) in [0, 1], a seeded subset if n < count."""
        _check_request(size, channels, n)
        return self.reader(size, channels, n, seed)


def load_real_unknown(name: str, root: Path | str, size: int, channels: int, n: int = 10000,
                      seed: int = 0) -> torch.Tensor | None:
    """The real unknown set ``name`` as (m, channels, size, size) float32 in [0, 1], m = min(n,
    available); None when its files are not under ``root``."""
    found = find_real_unknown(name, root)
    return None if found is None else found.load(size, channels, n, seed)


def real_unknown_sets(dataset: str, root: Path | str) -> dict[str, RealUnknown | None]:
    """Every real unknown set of the training set ``dataset`` (``REAL_UNKNOWN``), located under
    ``root`` (None where absent); the sets stored as one array are read and checked here, so a
    truncated or malformed file fails now, before anything is trained on."""
    return {name: find_real_unknown(name, root) for name in REAL_UNKNOWN.get(dataset, ()) if name != HELD_OUT}


def real_unknown_source(name: str, root: Path | str) -> str | None:
    """What ``load_real_unknown`` would read (relative to ``root``), for the result record; None if absent."""
    found = find_real_unknown(name, root)
    return None if found is None else found.source


def find_real_unknown(name: str, root: Path | str) -> RealUnknown | None:
    """Locate the set ``name`` under ``root`` without decoding any image; None when absent."""
    if name == HELD_OUT:
        raise HemError(f"the unknown set {HELD_OUT!r} is not read from files: it is the held-out "
                       f"classes of the dataset 'digits-heldout'")
    if name not in _LOCATORS:
        raise unknown_name("real unknown set", name, REAL_SETS)
    root = Path(root)
    return _LOCATORS[name](root) if root.is_dir() else None


def _check_request(size: int, channels: int, n: int) -> None:
    """One-line errors for a size, channel count or number of images that cannot be served."""
    for what, value in (("image size", size), ("number of unknown images", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HemError(f"the {what} must be a positive integer, got {value!r}")
    if channels not in (1, 3):
        raise HemError(f"unknown sets have 1 or 3 channels, not {channels!r}")


def subset(count: int, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded subset of ``n`` out of ``range(count)`` in ascending order; all if n >= count."""
    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=n, replace=False))


def fit(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Float images (N, C, H, W) in [0, 1] to (N, channels, size, size): luma or repeated channels,
    the central square, antialiased bilinear resizing."""
    if images.shape[1] == 3 and channels == 1:
        images = torch.einsum("nchw,c->nhw", images, torch.tensor(_LUMA, dtype=images.dtype))[:, None]
    elif images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    images = images[..., top:top + side, left:left + side]
    if side != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                               align_corners=False)
    # bilinear weights are convex, so only rounding can step outside [0, 1]
    return images.clamp(0.0, 1.0).contiguous()


# ---- sets stored as one array: IDX, npz, .mat, CIFAR pickles --------------------------------------

def _array_set(name: str, root: Path, path: Path, read: Callable[[Path], np.ndarray]) -> RealUnknown:
    """A set whose images are one uint8 array (N, H, W) or (N, 3, H, W), ``read(path)`` once here
    (these files are at most ~100 MB) and kept for loading."""
    array = _read_array(path, read)

    def reader(size: int, channels: int, n: int, seed: int) -> torch.Tensor:
        chosen = torch.from_numpy(np.ascontiguousarray(array[subset(len(array), n, seed)]))
        chosen = chosen[:, None] if chosen.dim() == 3 else chosen
        return fit(chosen.float().div_(255.0), size, channels)

    return RealUnknown(name, path.relative_to(root).as_posix(), len(array), reader)


def _read_array(path: Path, read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """``read(path)``, checked to be uint8 images; unreadable or malformed files are one-line errors."""
    try:
        array = read(path)
    except HemError:
        raise
    except Exception as err:  # each format fails in its own way (OSError, ValueError, KeyError, ...)
        raise HemError(f"cannot read {path}: {type(err).__name__}: {err}") from None
    if array.dtype != np.uint8 or array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[1] != 3):
        raise HemError(f"{path} does not hold uint8 images (N, H, W) or (N, 3, H, W): "
                       f"found {array.dtype} {array.shape}")
    return array


def _idx_images(path: Path) -> np.ndarray:
    return idx.read_idx(path, "images")


def _svhn_images(path: Path) -> np.ndarray:
    return arrays.svhn_mat(path, labels=False)[0]


def _cifar_images(path: Path) -> np.ndarray:
    return arrays.cifar_batch(path)[0]


def _first_file(*paths: Path) -> Path | None:
    return next((path for path in paths if path is not None and path.is_file()), None)


def _mnist_like(name: str, folder: str, npz: str | None = None) -> Callable[[Path], RealUnknown | None]:
    """A locator for torchvision's ``<folder>/raw`` IDX test images (or the authors' npz)."""
    def locate(root: Path) -> RealUnknown | None:
        path = idx.images_file(root / folder / "raw", "test")
        if path is not None:
            return _array_set(name, root, path, _idx_images)
        path = _first_file(root / folder / npz) if npz else None
        return _array_set(name, root, path, arrays.npz_array) if path else None

    return locate


def _single_file(name: str, read: Callable[[Path], np.ndarray], *relative: str
                 ) -> Callable[[Path], RealUnknown | None]:
    """A locator for a set in one file, the first of ``relative`` that exists."""
    def locate(root: Path) -> RealUnknown | None:
        path = _first_file(*(root / rel for rel in relative))
        return _array_set(name, root, path, read) if path else None

    return locate


# ---- sets stored as image files: folders or zips ---------------------------------------------------

def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not Path(name).name.startswith(".")


def _folder_images(folder: Path) -> list[Handle]:
    """Every image file below ``folder``, in sorted path order."""
    return [(path, None) for path in sorted(folder.rglob("*")) if _is_image(path.name) and path.is_file()]


def _zip_images(path: Path) -> list[Handle]:
    """Every image member of the zip ``path``, in sorted member order (read in place, not extracted)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except (OSError, zipfile.BadZipFile) as err:
        raise HemError(f"cannot read {path}: {err}") from None
    return [(path, member) for member in sorted(members) if _is_image(member)]


def _file_set(name: str, source: str, handles: list[Handle], invert: bool = False) -> RealUnknown:
    """A set of image files; only the chosen subset is decoded."""
    def reader(size: int, channels: int, n: int, seed: int) -> torch.Tensor:
        chosen = [handles[i] for i in subset(len(handles), n, seed)]
        images = _decode(chosen, size, channels)
        return 1.0 - images if invert else images

    return RealUnknown(name, source, len(handles), reader)


def _decode(handles: list[Handle], size: int, channels: int) -> torch.Tensor:
    """Decode and fit each image file into one tensor (len(handles), channels, size, size)."""
    from PIL import Image

    out = torch.empty((len(handles), channels, size, size))
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        for i, (path, member) in enumerate(handles):
            where = f"{path}:{member}" if member else str(path)
            try:
                if member is None:
                    image = Image.open(path)
                else:
                    if path not in archives:
                        archives[path] = zipfile.ZipFile(path)
                    image = Image.open(io.BytesIO(archives[path].read(member)))
                out[i] = fit(_pixels(image)[None], size, channels)[0]
            except (OSError, ValueError, zipfile.BadZipFile) as err:  # PIL's decode errors are OSErrors
                raise HemError(f"cannot read the image {where}: {err}") from None
    finally:
        for archive in archives.values():
            archive.close()
    return out


def _pixels(image) -> torch.Tensor:
    """A PIL image as float (1, H, W) for grey modes, else (3, H, W) RGB, in [0, 1]."""
    with image:
        array = np.asarray(image.convert("L" if image.mode in _GREY_MODES else "RGB"), dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).float().div_(255.0)
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)


def _folder_or_zip(base: Path, part: str) -> tuple[str, list[Handle]] | None:
    """``base/part`` as a folder of images, else ``base/part.zip``: (its name, its images)."""
    if (base / part).is_dir():
        handles = _folder_images(base / part)
        if handles:
            return part, handles
    if (base / f"{part}.zip").is_file():
        handles = _zip_images(base / f"{part}.zip")
        if handles:
            return f"{part}.zip", handles
    return None


_OMNIGLOT_VARIANTS = (("images_evaluation",), ("images_background",),
                      ("images_background_small1", "images_background_small2"))


def _omniglot(root: Path) -> RealUnknown | None:
    """Omniglot's most test-like variant present (evaluation > background > the two small ones)."""
    for variant in _OMNIGLOT_VARIANTS:
        for folder in ("omniglot-py", "omniglot"):
            parts = [found for found in (_folder_or_zip(root / folder, part) for part in variant) if found]
            if parts:
                source = f"{folder}/" + "+".join(label for label, _ in parts)
                handles = [handle for _, found in parts for handle in found]
                return _file_set("omniglot", source, handles, invert=True)
    return None


def _image_tree(name: str, *relative: str) -> Callable[[Path], RealUnknown | None]:
    """A locator for the images below the first folder of ``relative`` that holds any."""
    def locate(root: Path) -> RealUnknown | None:
        for rel in relative:
            if (root / rel).is_dir():
                handles = _folder_images(root / rel)
                if handles:
                    return _file_set(name, rel, handles)
        return None

    return locate


_LOCATORS: dict[str, Callable[[Path], RealUnknown | None]] = {
    "mnist": _mnist_like("mnist", "MNIST"),
    "fashion-mnist": _mnist_like("fashion-mnist", "FashionMNIST"),
    "kmnist": _mnist_like("kmnist", "KMNIST", npz="kmnist-test-imgs.npz"),
    "omniglot": _omniglot,
    "svhn": _single_file("svhn", _svhn_images, "test_32x32.mat", "svhn/test_32x32.mat"),
    "cifar10": _single_file("cifar10", _cifar_images, "cifar-10-batches-py/test_batch"),
    "cifar100": _single_file("cifar100", _cifar_images, "cifar-100-python/test"),
    "textures": _image_tree("textures", "dtd/images", "dtd/dtd/images"),
    "imagenet-o": _image_tree("imagenet-o", "imagenet-o"),
    "inaturalist": _image_tree("inaturalist", "inaturalist/val", "iNaturalist/val", "inaturalist",
                               "iNaturalist"),
}

REAL_SETS: tuple[str, ...] = tuple(_LOCATORS)
