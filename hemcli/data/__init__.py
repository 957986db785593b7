"""The dataset registry: every dataset a task can train on, with the files it needs and where.

Sets that fit in memory load as an ``ArrayData`` of tensors: the training images as stored (uint8
for the colour sets, float in [0, 1] for the MNIST family), the test images as float in [0, 1].
The training loop moves them to the device once and batches and augments them there
(airbench-style, ``hemcli.engine.batches``). ImageNet is too large for that: it loads as a ``StreamData``
of two ImageFolders, streamed through a DataLoader with workers.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.utils.data

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
    # The class counts of the whole training set when this is a ``limited`` part of it
    full_counts: list[int] | None = None
    # The real unknown sets by name (None: absent), found and read before training when the run
    # measures ``ood`` (``hemcli.evaluation.suite.preflight``), so a bad file fails before it trains
    real_unknown: dict | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def class_counts(self) -> list[int]:
        """Training samples per class (of the whole set, where this is a ``limited`` part of it)."""
        return self.full_counts or torch.bincount(self.train_y, minlength=self.num_classes).tolist()


@dataclass
class StreamData:
    """A set read from disk batch by batch: map-style datasets of (float (C, H, W) in [0, 1], label)."""

    train: object  # torch.utils.data.Dataset
    test: object
    num_classes: int
    input_shape: tuple[int, ...] = (3, 224, 224)
    full_counts: list[int] | None = None

    @property
    def train_y(self) -> torch.Tensor:
        from hemcli.engine.batches import targets_of
        return targets_of(self.train)

    @property
    def test_y(self) -> torch.Tensor:
        from hemcli.engine.batches import targets_of
        return targets_of(self.test)

    def class_counts(self) -> list[int]:
        return self.full_counts or torch.bincount(self.train_y, minlength=self.num_classes).tolist()


def limited(data, limit: int | None):
    """At most ``limit`` images of each split (a fixed random subset, the same for every seed), for
    smoke runs; ``data`` itself when ``limit`` is None. The class counts stay the whole training
    set's, so a loss built from them (HEM's margins) is the one the full run uses."""
    if limit is None:
        return data
    pick = lambda n: torch.randperm(n, generator=torch.Generator().manual_seed(0))[:limit].sort().values  # noqa: E731
    if isinstance(data, StreamData):
        subset = torch.utils.data.Subset
        return StreamData(subset(data.train, pick(len(data.train)).tolist()),
                          subset(data.test, pick(len(data.test)).tolist()), data.num_classes, data.input_shape,
                          data.class_counts())
    train, test = pick(len(data.train_y)), pick(len(data.test_y))
    return ArrayData(data.train_x[train], data.train_y[train], data.test_x[test], data.test_y[test],
                     data.num_classes, data.held_out_x, data.class_counts())


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


def _mnist_family(folder: str, torchvision_cls: str, num_classes: int) -> Callable[..., ArrayData]:
    def load(root: str | None = None, download: bool = True) -> ArrayData:
        from hemcli.data import idx

        base = data_root(root)
        raw = base / folder / "raw"
        if download and not (idx.has_split(raw, "train") and idx.has_split(raw, "test")):
            _download(torchvision_cls, base, [{"train": True}, {"train": False}], [f"{folder}/raw"])
        train_x, train_y = idx.read_split(raw, "train", num_classes)
        test_x, test_y = idx.read_split(raw, "test", num_classes)
        return ArrayData(train_x, train_y, test_x, test_y, num_classes)

    load.__doc__ = f"{folder} from torchvision's layout <root>/{folder}/raw (IDX files, .gz or not)."
    return load


def _download(torchvision_cls: str, root: Path, calls: list[dict], entries: list[str]) -> None:
    """Let torchvision fetch the files where the network allows; say so in one line if not.

    torchvision's ``torchvision_cls(tmp, download=True, **call)`` runs for each of ``calls`` in a
    temporary folder, and only then are the files in its ``entries`` (paths relative to that folder:
    files, or folders whose files are taken) moved under ``root`` (never replacing a file there). So
    a failed download (offline) leaves ``root`` exactly as it was.
    """
    import torchvision.datasets as tvd

    with tempfile.TemporaryDirectory(prefix="hem-download-") as tmp:
        try:
            for call in calls:
                getattr(tvd, torchvision_cls)(tmp, download=True, **call)
        except Exception as err:  # any network or checksum failure: the files are simply not there
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reason = lines[-1][:160] if lines else type(err).__name__  # torchvision ends with the cause
            raise HemError(f"could not download {torchvision_cls} into {root} ({reason}); put the files at "
                           f"{' and '.join(str(root / entry) for entry in entries)} or pass --data-root") from None
        try:
            for entry in entries:
                _move_new(Path(tmp) / entry, root / entry)
        except OSError as err:
            raise HemError(f"cannot write the downloaded {torchvision_cls} files to {root}: "
                           f"{err.strerror or err}") from None


def _move_new(source: Path, target: Path) -> None:
    """Move a file, or a folder's files, to ``target`` where nothing is yet."""
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            _move_new(file, target / file.name)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)


def _in_memory(read, num_classes: int, fetch: tuple | None = None) -> Callable[..., ArrayData]:
    """A loader over ``read(root, split, num_classes) -> (uint8 images, labels)`` (the reader checks
    its labels are below ``num_classes``, where it still knows the file): training images stay uint8
    (a quarter of the memory; batches become float on the device), test images become float in
    [0, 1]. ``fetch`` = (torchvision class, calls, entries) for ``_download`` when a split is missing."""
    def load(root: str | None = None, download: bool = True) -> ArrayData:
        from hemcli.data.vision import MissingFiles

        base = data_root(root)
        try:
            train_x, train_y = read(base, "train", num_classes)
        except MissingFiles:
            if not (download and fetch):
                raise
            _download(*fetch[:1], base, *fetch[1:])
            train_x, train_y = read(base, "train", num_classes)
        test_x, test_y = read(base, "test", num_classes)
        return ArrayData(train_x, train_y, test_x.float().div_(255), test_y, num_classes)

    load.__doc__ = read.__doc__
    return load


def _imagenet(root: str | None = None, download: bool = True, augment: str = "resized_crop_flip") -> StreamData:
    """ImageNet-1k from ``<root>/imagenet/{train,val}/<wnid>/*`` (never downloaded: it needs a login);
    ``augment`` "none" gives the training images the test transform."""
    from hemcli.data.vision import imagenet_folder

    base, classes = data_root(root), dataset_info("imagenet").num_classes
    train = imagenet_folder(base, "train", augment=augment != "none", num_classes=classes)
    test = imagenet_folder(base, "test", num_classes=classes)
    return StreamData(train, test, num_classes=len(train.classes))


def _imagenet_lt(root: str | None = None, download: bool = True, augment: str = "resized_crop_flip") -> StreamData:
    """ImageNet-LT from its list files beside ``imagenet/`` (never downloaded)."""
    from hemcli.data.vision import ListedClasses, imagenet_lt

    base = data_root(root)
    classes = ListedClasses(dataset_info("imagenet-lt").num_classes)  # shared: both lists label alike
    train, test = imagenet_lt(base, "train", augment != "none", classes), imagenet_lt(base, "test", classes=classes)
    # 1000 with the standard lists; the labels the lists use, in general
    return StreamData(train, test, num_classes=1 + max(train.targets + test.targets))


def _vision(name: str):
    """The reader ``name`` of ``hemcli.data.vision``, imported when a run needs it."""
    def read(root, split, num_classes, **kwargs):
        from hemcli.data import vision
        return getattr(vision, name)(root, split=split, num_classes=num_classes, **kwargs)
    return read


def _cifar(which: str):
    def read(root, split, num_classes):
        return _vision("read_cifar")(root, split, num_classes, which=which)
    read.__doc__ = f"{which} from torchvision's layout (pickled batches)."
    return read


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset of the registry: its loader ``loader(root, download) -> ArrayData``, class count, and
    the AutoAttack budgets (l-inf, l2) the paper uses for it (Appendix B.1.2)."""

    name: str
    loader: Callable[..., ArrayData]
    num_classes: int
    description: str
    attack_eps: tuple[float, float] = (8 / 255, 0.5)
    input_shape: tuple[int, int, int] = (3, 32, 32)
    files: str = ""  # the files it needs, relative to the data root, and where to get them
    streamed: bool = False  # read from disk batch by batch (a StreamData), not held in memory
    augments: tuple[str, ...] = ("none", "crop_flip")  # the recipe's ``augment`` choices that apply


# The paper's MNIST budgets (l-inf 0.3, l2 2). For 8x8 digits the l2 budget is scaled by the square
# root of the pixel-count ratio, sqrt(64 / 784), so a perturbation of the same size per pixel is allowed.
MNIST_EPS = (0.3, 2.0)
DIGITS_EPS = (0.3, round(2.0 * (64 / 784) ** 0.5, 3))

_IDX = "{0}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz]"
_CIFAR_FETCH = {"cifar10": ("CIFAR10", [{"train": True}, {"train": False}], ["cifar-10-batches-py"]),
                "cifar100": ("CIFAR100", [{"train": True}, {"train": False}], ["cifar-100-python"])}

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("digits", load_digits, 10, "scikit-learn's bundled 8x8 digits (offline default)", DIGITS_EPS,
                (1, 8, 8), "none (bundled with scikit-learn)"),
    DatasetInfo("digits-heldout", load_digits_heldout, DIGITS_KNOWN,
                "digits 0-5; 6-9 held out as an unknown set (offline)", DIGITS_EPS, (1, 8, 8),
                "none (bundled with scikit-learn)"),
    DatasetInfo("mnist", _mnist_family("MNIST", "MNIST", 10), 10, "MNIST, 28x28", MNIST_EPS, (1, 28, 28),
                _IDX.format("MNIST") + " (downloaded by torchvision where the network allows)"),
    DatasetInfo("fashion-mnist", _mnist_family("FashionMNIST", "FashionMNIST", 10), 10, "Fashion-MNIST, 28x28",
                MNIST_EPS, (1, 28, 28),
                _IDX.format("FashionMNIST") + " (downloaded by torchvision where the network allows)"),
    DatasetInfo("kmnist", _in_memory(_vision("read_kmnist"), 10,
                                     ("KMNIST", [{"train": True}, {"train": False}], ["KMNIST/raw"])),
                10, "Kuzushiji-MNIST, 28x28", MNIST_EPS, (1, 28, 28),
                _IDX.format("KMNIST") + " or KMNIST/kmnist-{train,test}-{imgs,labels}.npz "
                "(downloaded by torchvision where the network allows; https://github.com/rois-codh/kmnist)"),
    DatasetInfo("cifar10", _in_memory(_cifar("cifar10"), 10, _CIFAR_FETCH["cifar10"]), 10, "CIFAR-10, 32x32",
                files="cifar-10-batches-py/{data_batch_1..5,test_batch} (downloaded by torchvision where the "
                      "network allows; https://www.cs.toronto.edu/~kriz/cifar.html)"),
    DatasetInfo("cifar100", _in_memory(_cifar("cifar100"), 100, _CIFAR_FETCH["cifar100"]), 100,
                "CIFAR-100, 32x32, fine labels",
                files="cifar-100-python/{train,test} (downloaded by torchvision where the network allows; "
                      "https://www.cs.toronto.edu/~kriz/cifar.html)"),
    DatasetInfo("svhn", _in_memory(_vision("read_svhn"), 10,
                                   ("SVHN", [{"split": "train"}, {"split": "test"}],
                                    ["train_32x32.mat", "test_32x32.mat"])), 10,
                "SVHN cropped digits, 32x32 (no extra split)",
                files="{train,test}_32x32.mat (downloaded by torchvision where the network allows; "
                      "http://ufldl.stanford.edu/housenumbers/)"),
    DatasetInfo("tin", _in_memory(_vision("read_tinyimagenet"), 200), 200, "TinyImageNet-200, 64x64",
                input_shape=(3, 64, 64),
                files="tiny-imagenet-200/{wnids.txt,train/<wnid>/images/*.JPEG,val/images/*.JPEG,"
                      "val/val_annotations.txt} (unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip)"),
    DatasetInfo("imagenet", _imagenet, 1000, "ImageNet-1k (ILSVRC2012), 224x224 crops, streamed from disk",
                input_shape=(3, 224, 224), streamed=True, augments=("resized_crop_flip", "none"), files=
                "imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG (validation images sorted "
                "into class folders; from https://image-net.org, never downloaded)"),
    DatasetInfo("imagenet-lt", _imagenet_lt, 1000, "ImageNet-LT (Liu et al. 2019): ImageNet-1k subsets of the "
                "standard lists, imbalance 1280 / 5 = 256", input_shape=(3, 224, 224), streamed=True,
                augments=("resized_crop_flip", "none"),
                files="ImageNet_LT_train.txt and ImageNet_LT_test.txt beside imagenet/{train,val}/<wnid>/*.JPEG "
                      "(the lists from https://github.com/zhmiao/OpenLongTailRecognition-OLTR)"),
)}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


def load_dataset(name: str, root: str | None = None, download: bool = True, augment: str = "none"):
    """The dataset ``name`` as an ``ArrayData``, or a ``StreamData`` whose training images are
    transformed as ``augment`` says (a set in memory is augmented by the batches instead)."""
    info = dataset_info(name)
    return info.loader(root, download=download, **({"augment": augment} if info.streamed else {}))
