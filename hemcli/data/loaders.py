"""The loaders of the classification registry (``hemcli.data.DATASETS``), one per on-disk format:
``loader(root, download) -> ArrayData`` for the sets held in memory (scikit-learn's digits, the MNIST
family's IDX files, the array readers of ``hemcli.data.vision``), ``-> StreamData`` for ImageNet and
ImageNet-LT. Where torchvision can fetch a missing set, ``hemcli.data.downloads`` does. The file
readers themselves are imported when a run needs them.
"""
from __future__ import annotations

from typing import Callable

import torch

from hemcli.data.downloads import torchvision_download
from hemcli.data.sets import ArrayData, StreamData, data_root


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


def mnist_family(folder: str, torchvision_cls: str, num_classes: int) -> Callable[..., ArrayData]:
    def load(root: str | None = None, download: bool = True) -> ArrayData:
        from hemcli.data import idx

        base = data_root(root)
        raw = base / folder / "raw"
        if download and not (idx.has_split(raw, "train") and idx.has_split(raw, "test")):
            torchvision_download(torchvision_cls, base, [{"train": True}, {"train": False}], [f"{folder}/raw"])
        train_x, train_y = idx.read_split(raw, "train", num_classes)
        test_x, test_y = idx.read_split(raw, "test", num_classes)
        return ArrayData(train_x, train_y, test_x, test_y, num_classes)

    load.__doc__ = f"{folder} from torchvision's layout <root>/{folder}/raw (IDX files, .gz or not)."
    return load


def in_memory(read, num_classes: int, fetch: tuple | None = None) -> Callable[..., ArrayData]:
    """A loader over ``read(root, split, num_classes) -> (uint8 images, labels)`` (the reader checks
    its labels are below ``num_classes``, where it still knows the file): training images stay uint8
    (a quarter of the memory; batches become float on the device), test images become float in
    [0, 1]. ``fetch`` = (torchvision class, calls, entries) for ``torchvision_download`` when a split is missing."""
    def load(root: str | None = None, download: bool = True) -> ArrayData:
        from hemcli.data.vision import MissingFiles

        base = data_root(root)
        try:
            train_x, train_y = read(base, "train", num_classes)
        except MissingFiles:
            if not (download and fetch):
                raise
            torchvision_download(*fetch[:1], base, *fetch[1:])
            train_x, train_y = read(base, "train", num_classes)
        test_x, test_y = read(base, "test", num_classes)
        return ArrayData(train_x, train_y, test_x.float().div_(255), test_y, num_classes)

    load.__doc__ = read.__doc__
    return load


def imagenet(num_classes: int) -> Callable[..., StreamData]:
    """The ImageNet-1k loader, for the registry's ``num_classes`` class folders."""
    def load(root: str | None = None, download: bool = True, augment: str = "resized_crop_flip") -> StreamData:
        """ImageNet-1k from ``<root>/imagenet/{train,val}/<wnid>/*`` (never downloaded: it needs a login);
        ``augment`` "none" gives the training images the test transform."""
        from hemcli.data.vision import imagenet_folder

        base, classes = data_root(root), num_classes
        train = imagenet_folder(base, "train", augment=augment != "none", num_classes=classes)
        test = imagenet_folder(base, "test", num_classes=classes)
        return StreamData(train, test, num_classes=len(train.classes))
    return load


def imagenet_lt(num_classes: int) -> Callable[..., StreamData]:
    """The ImageNet-LT loader, for the registry's ``num_classes`` (the labels its lists may use)."""
    def load(root: str | None = None, download: bool = True, augment: str = "resized_crop_flip") -> StreamData:
        """ImageNet-LT from its list files beside ``imagenet/`` (never downloaded)."""
        from hemcli.data.vision import ListedClasses, imagenet_lt

        base = data_root(root)
        classes = ListedClasses(num_classes)  # shared: both lists label alike
        train, test = imagenet_lt(base, "train", augment != "none", classes), imagenet_lt(base, "test", classes=classes)
        # 1000 with the standard lists; the labels the lists use, in general
        return StreamData(train, test, num_classes=1 + max(train.targets + test.targets))
    return load


def vision_reader(name: str):
    """The reader ``name`` of ``hemcli.data.vision``, imported when a run needs it."""
    def read(root, split, num_classes, **kwargs):
        from hemcli.data import vision
        return getattr(vision, name)(root, split=split, num_classes=num_classes, **kwargs)
    return read


def cifar_reader(which: str):
    def read(root, split, num_classes):
        return vision_reader("read_cifar")(root, split, num_classes, which=which)
    read.__doc__ = f"{which} from torchvision's layout (pickled batches)."
    return read
