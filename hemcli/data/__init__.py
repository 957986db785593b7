"""Datasets that fit in memory, returned as tensors with pixels scaled to [0, 1].

Each loader returns an ``ArrayData``; the training loop moves it to the device once and batches it
there (airbench-style), so no DataLoader workers are needed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from hemcli.errors import HemError, unknown_name


@dataclass
class ArrayData:
    """Images (N, C, H, W) float32 in [0, 1] and int64 labels, split into train and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    # Images of classes kept out of training and test (``digits-heldout``): an unknown set of its own.
    held_out_x: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.train_y, minlength=self.num_classes).tolist()


def data_root(root: str | None) -> Path:
    """``--data-root``, else ``$HEM_DATA``, else ``./data``; it may be missing, but not a file."""
    path = Path(root or os.environ.get("HEM_DATA") or "data").expanduser()
    if path.exists() and not path.is_dir():
        raise HemError(f"data root {path} is not a folder")
    return path


def load_digits(root: str | None = None, download: bool = True) -> ArrayData:
    """scikit-learn's bundled 8x8 digits (values 0-16), a fixed stratified 80/20 split.

    The split uses its own seed (0), so every run seed sees the same test set.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    digits = sk_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(range(len(y)), test_size=0.2, stratify=y.numpy(),
                                           random_state=0)
    return ArrayData(x[train_idx], y[train_idx], x[test_idx], y[test_idx], num_classes=10)


def load_digits_heldout(root: str | None = None, download: bool = True) -> ArrayData:
    """``digits`` with classes 6-9 held out: train and test on 0-5; every 6-9 image (train and test
    split) is the unknown set "held-out-classes", so unknown-class rejection runs offline."""
    from hemcli.data.unknown import held_out_split

    full = load_digits(root, download)
    known = list(range(DIGITS_KNOWN))
    train_x, train_y, held_train = held_out_split(full.train_x, full.train_y, known)
    test_x, test_y, held_test = held_out_split(full.test_x, full.test_y, known)
    return ArrayData(train_x, train_y, test_x, test_y, num_classes=DIGITS_KNOWN,
                     held_out_x=torch.cat([held_train, held_test]))


DIGITS_KNOWN = 6


def _mnist_family(folder: str, torchvision_cls: str) -> Callable[..., ArrayData]:
    def load(root: str | None = None, download: bool = True) -> ArrayData:
        from hemcli.data import idx

        base = data_root(root)
        raw = base / folder / "raw"
        if download and not (idx.has_split(raw, "train") and idx.has_split(raw, "test")):
            _download(torchvision_cls, base)
        train_x, train_y = idx.read_split(raw, "train")
        test_x, test_y = idx.read_split(raw, "test")
        return ArrayData(train_x, train_y, test_x, test_y, num_classes=10)

    load.__doc__ = f"{folder} from torchvision's layout <root>/{folder}/raw (IDX files, .gz or not)."
    return load


def _download(torchvision_cls: str, root: Path) -> None:
    """Let torchvision fetch the files where the network allows; say so in one line if not.

    The download goes to a temporary folder and only complete files are moved under ``root``, so a
    failed download (offline) leaves ``root`` exactly as it was.
    """
    import torchvision.datasets as tvd

    raw = root / torchvision_cls / "raw"
    with tempfile.TemporaryDirectory(prefix="hem-download-") as tmp:
        try:
            for train in (True, False):
                getattr(tvd, torchvision_cls)(tmp, train=train, download=True)
        except Exception as err:  # any network or checksum failure: the files are simply not there
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reason = lines[-1][:160] if lines else type(err).__name__  # torchvision ends with the cause
            raise HemError(f"could not download {torchvision_cls} into {root} ({reason}); "
                           f"put the IDX files in {raw} or pass --data-root") from None
        try:
            raw.mkdir(parents=True, exist_ok=True)
            for file in (Path(tmp) / torchvision_cls / "raw").iterdir():
                if not (raw / file.name).exists():
                    shutil.move(str(file), raw / file.name)
        except OSError as err:
            raise HemError(f"cannot write the downloaded {torchvision_cls} files to {raw}: "
                           f"{err.strerror or err}") from None


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset of the registry: its loader ``loader(root, download) -> ArrayData``, class count, and
    the AutoAttack budgets (l-inf, l2) the paper uses for it (Appendix B.1.2)."""

    name: str
    loader: Callable[..., ArrayData]
    num_classes: int
    description: str
    attack_eps: tuple[float, float] = (8 / 255, 0.5)


# The paper's MNIST budgets (l-inf 0.3, l2 2). For 8x8 digits the l2 budget is scaled by the square
# root of the pixel-count ratio, sqrt(64 / 784), so a perturbation of the same size per pixel is allowed.
MNIST_EPS = (0.3, 2.0)
DIGITS_EPS = (0.3, round(2.0 * (64 / 784) ** 0.5, 3))

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("digits", load_digits, 10, "scikit-learn's bundled 8x8 digits (offline default)", DIGITS_EPS),
    DatasetInfo("digits-heldout", load_digits_heldout, DIGITS_KNOWN,
                "digits 0-5; 6-9 held out as an unknown set (offline)", DIGITS_EPS),
    DatasetInfo("mnist", _mnist_family("MNIST", "MNIST"), 10, "MNIST, 28x28", MNIST_EPS),
    DatasetInfo("fashion-mnist", _mnist_family("FashionMNIST", "FashionMNIST"), 10, "Fashion-MNIST, 28x28",
                MNIST_EPS),
)}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


def load_dataset(name: str, root: str | None = None, download: bool = True) -> ArrayData:
    return dataset_info(name).loader(root, download=download)
