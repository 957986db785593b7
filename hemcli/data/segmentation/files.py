"""The file-level pieces of the segmentation readers (``folders``): decoding label values
through a table (with the error naming the file and the value), reading an image, a PNG label or an
SBD .mat label, the streamed ``PairedFiles`` dataset, and finding and pairing files. Every problem is
a HemError naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.utils.data

from hemcli.errors import HemError, unknown_name


@dataclass(frozen=True)
class LabelTable:
    """Raw label value -> class id (``lut[raw]``); -1 marks raw values the set never uses."""

    lut: np.ndarray
    valid: str  # the valid raw values, in words, for the error message

    def decode(self, raw: np.ndarray, path: Path) -> np.ndarray:
        bad = (raw < 0) | (raw >= len(self.lut))
        ids = np.where(bad, -1, self.lut[np.clip(raw, 0, len(self.lut) - 1)])
        if (ids < 0).any():
            raise HemError(f"{path}: label value {int(raw[ids < 0][0])} is {self.valid}")
        return ids


def identity_table(num_classes: int, ignore_index: int) -> LabelTable:
    lut = np.full(max(256, ignore_index + 1), -1, dtype=np.int64)
    lut[:num_classes] = np.arange(num_classes)
    lut[ignore_index] = ignore_index
    return LabelTable(lut, f"outside the classes 0..{num_classes - 1} and not the ignore index {ignore_index}")


# ---- reading one file ------------------------------------------------------------------------------

def read_image(path: Path) -> np.ndarray:
    """uint8 (3, H, W), contiguous and writable; grey and palette images become RGB."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()  # C order
    except (OSError, ValueError) as err:  # PIL's decode errors are OSErrors
        raise HemError(f"cannot read the image {path}: {err}") from None


def read_png_mask(path: Path) -> np.ndarray:
    """The raw values (H, W) of a single-channel label image (grey, palette indices or 16-bit)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode, raw = image.mode, np.asarray(image)
    except (OSError, ValueError) as err:
        raise HemError(f"cannot read the label image {path}: {err}") from None
    if mode not in ("L", "P", "I", "I;16"):
        raise HemError(f"{path} is a {mode} image; a label image must have one channel")
    return raw.astype(np.int64)


def read_sbd_mask(path: Path) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD .mat file, (H, W)."""
    from scipy.io import loadmat

    try:
        mask = loadmat(path, variable_names=["GTcls"])["GTcls"]["Segmentation"][0, 0]
    except Exception as err:  # a truncated or foreign .mat fails with ValueError, KeyError, OSError, ...
        raise HemError(f"cannot read GTcls.Segmentation from {path}: {type(err).__name__}: {err}") from None
    return np.asarray(mask).astype(np.int64)


def read_pair(image_path: Path, mask_path: Path, read_mask, table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """An image and its decoded mask, checked to be of one size."""
    image, raw = read_image(image_path), read_mask(mask_path)
    if raw.shape != image.shape[1:]:
        raise HemError(f"{mask_path} is {raw.shape[1]}x{raw.shape[0]} but its image {image_path} is "
                       f"{image.shape[2]}x{image.shape[1]}")
    return image, table.decode(raw, mask_path)


class PairedFiles(torch.utils.data.Dataset):
    """A streamed split: (image, label file) pairs read per item as (uint8 (3, H, W), int64 (H, W))."""

    def __init__(self, pairs: list[tuple[Path, Path]], read_mask: Callable[[Path], np.ndarray], table: LabelTable):
        self.pairs, self.read_mask, self.table = pairs, read_mask, table

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = read_pair(*self.pairs[index], self.read_mask, self.table)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def mask(self, index: int) -> torch.Tensor:
        """Only the label of item ``index`` (class counting need not decode the image)."""
        path = self.pairs[index][1]
        return torch.from_numpy(self.table.decode(self.read_mask(path), path))

    def name(self, index: int) -> str:
        return str(self.pairs[index][0])

    def subset(self, indices: list[int]) -> "PairedFiles":
        return PairedFiles([self.pairs[i] for i in indices], self.read_mask, self.table)


# ---- finding and pairing files ---------------------------------------------------------------------

def find_base(root: str | None, name: str, markers: tuple[str, ...], below: tuple[str, ...], layout: str) -> Path:
    """The first of ``root`` and ``root/<below>`` holding every one of ``markers``."""
    from hemcli.data.sets import data_root

    base = data_root(root)
    for candidate in (base, *(base / part for part in below)):
        if all((candidate / marker).exists() for marker in markers):
            return candidate
    raise HemError(f"{name} not found in {base}: expected {layout} there or in "
                   f"{' or '.join(str(base / part) for part in below)} (pass the folder with --data-root)")


def check_split(name: str, split: str, splits) -> None:
    if split not in splits:
        raise unknown_name(f"{name} split", split, splits)


def files_in(folder: Path, suffixes: tuple[str, ...], recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        raise HemError(f"{folder} is missing (or not a folder)")
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in found if path.is_file() and path.name.lower().endswith(suffixes))


def pair_by_key(images: dict[str, Path], labels: dict[str, Path], label_like: Callable[[Path], Path],
                image_like: Callable[[Path], Path], where: Path) -> list[tuple[Path, Path]]:
    """Pairs of images and labels sharing a key (sorted by key); a file without its partner is an
    error naming it and the file expected beside it."""
    for key, image in images.items():
        if key not in labels:
            raise HemError(f"{image} has no label: expected {label_like(image)}")
    for key, label in labels.items():
        if key not in images:
            raise HemError(f"{label} has no image: expected {image_like(label)}")
    if not images:
        raise HemError(f"no images in {where}")
    return [(images[key], labels[key]) for key in sorted(images)]
