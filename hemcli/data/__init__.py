"""The dataset registry (Appendix B.1.1): every dataset a task can train on, with its loader, class
count, attack budgets (Appendix B.1.2), the files it needs and where.

The rest of the package, by concern: ``sets`` (what a loader returns: ``ArrayData`` in memory,
``StreamData`` read from disk; ``limited``; ``data_root``), ``loaders`` (one per on-disk format),
``downloads`` (torchvision's fetches), the file readers ``vision``, ``idx``, ``arrays`` and ``checks``,
``longtail``, the unknown sets (``unknown``), ``corruptions`` and ``segmentation`` (``hem segment``'s
registry of its own). The names callers import from ``hemcli.data`` are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hemcli.data.loaders import (DIGITS_KNOWN, cifar_reader, imagenet, imagenet_lt, in_memory, load_digits,
                                 load_digits_heldout, mnist_family, vision_reader)
from hemcli.data.sets import ArrayData, StreamData, data_root, limited
from hemcli.errors import unknown_name

__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "load_dataset", "ArrayData", "StreamData", "limited",
           "data_root", "load_digits", "load_digits_heldout", "DIGITS_KNOWN", "MNIST_EPS", "DIGITS_EPS"]


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
    DatasetInfo("mnist", mnist_family("MNIST", "MNIST", 10), 10, "MNIST, 28x28", MNIST_EPS, (1, 28, 28),
                _IDX.format("MNIST") + " (downloaded by torchvision where the network allows)"),
    DatasetInfo("fashion-mnist", mnist_family("FashionMNIST", "FashionMNIST", 10), 10, "Fashion-MNIST, 28x28",
                MNIST_EPS, (1, 28, 28),
                _IDX.format("FashionMNIST") + " (downloaded by torchvision where the network allows)"),
    DatasetInfo("kmnist", in_memory(vision_reader("read_kmnist"), 10,
                                     ("KMNIST", [{"train": True}, {"train": False}], ["KMNIST/raw"])),
                10, "Kuzushiji-MNIST, 28x28", MNIST_EPS, (1, 28, 28),
                _IDX.format("KMNIST") + " or KMNIST/kmnist-{train,test}-{imgs,labels}.npz "
                "(downloaded by torchvision where the network allows; https://github.com/rois-codh/kmnist)"),
    DatasetInfo("cifar10", in_memory(cifar_reader("cifar10"), 10, _CIFAR_FETCH["cifar10"]), 10, "CIFAR-10, 32x32",
                files="cifar-10-batches-py/{data_batch_1..5,test_batch} (downloaded by torchvision where the "
                      "network allows; https://www.cs.toronto.edu/~kriz/cifar.html)"),
    DatasetInfo("cifar100", in_memory(cifar_reader("cifar100"), 100, _CIFAR_FETCH["cifar100"]), 100,
                "CIFAR-100, 32x32, fine labels",
                files="cifar-100-python/{train,test} (downloaded by torchvision where the network allows; "
                      "https://www.cs.toronto.edu/~kriz/cifar.html)"),
    DatasetInfo("svhn", in_memory(vision_reader("read_svhn"), 10,
                                   ("SVHN", [{"split": "train"}, {"split": "test"}],
                                    ["train_32x32.mat", "test_32x32.mat"])), 10,
                "SVHN cropped digits, 32x32 (no extra split)",
                files="{train,test}_32x32.mat (downloaded by torchvision where the network allows; "
                      "http://ufldl.stanford.edu/housenumbers/)"),
    DatasetInfo("tin", in_memory(vision_reader("read_tinyimagenet"), 200), 200, "TinyImageNet-200, 64x64",
                input_shape=(3, 64, 64),
                files="tiny-imagenet-200/{wnids.txt,train/<wnid>/images/*.JPEG,val/images/*.JPEG,"
                      "val/val_annotations.txt} (unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip)"),
    DatasetInfo("imagenet", imagenet(1000), 1000, "ImageNet-1k (ILSVRC2012), 224x224 crops, streamed from disk",
                input_shape=(3, 224, 224), streamed=True, augments=("resized_crop_flip", "none"), files=
                "imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG (validation images sorted "
                "into class folders; from https://image-net.org, never downloaded)"),
    DatasetInfo("imagenet-lt", imagenet_lt(1000), 1000, "ImageNet-LT (Liu et al. 2019): ImageNet-1k subsets of the "
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
