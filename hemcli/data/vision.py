"""Readers for the paper's image datasets in their usual on-disk layouts (nothing is downloaded).

Each ``read_*(root, split)`` returns one split as ``(images, labels)``: images uint8 (N, C, H, W),
labels int64 (N,), ``split`` "train" or "test". ``root`` is the data root (``--data-root``):

- CIFAR-10/100: torchvision's ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` (labels
  ``b"labels"``) and ``cifar-100-python/train``, ``test`` (labels ``b"fine_labels"``), unpickled so
  that only numpy arrays and plain values can be built (no code runs).
- SVHN: ``train_32x32.mat``, ``test_32x32.mat`` (X is 32 x 32 x 3 x N; y is 1..10, 10 meaning the
  digit 0, so it becomes label 0).
- TinyImageNet-200, the official zip's layout ``tiny-imagenet-200/``: ``wnids.txt``,
  ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt``
  (tab-separated: file, wnid, box). "test" is the val folder (the official test folder has no
  labels). A class's label is the index of its wnid in *sorted* order, which is the order
  torchvision's ImageFolder gives ``train/`` (wnids.txt itself is not sorted).
- KMNIST: torchvision's ``KMNIST/raw`` IDX files, else the authors' npz files
  ``KMNIST/kmnist-{train,test}-{imgs,labels}.npz`` (key ``arr_0``).
- ImageNet is too large for memory: ``imagenet_folder`` returns a torchvision ImageFolder over
  ``imagenet/train/<wnid>/*.JPEG`` or ``imagenet/val/<wnid>/*`` with the paper's transforms.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hemcli.data import idx
from hemcli.data.arrays import cifar_batch, npz_array, svhn_mat
from hemcli.data.checks import check_images, check_labels, check_pairs
from hemcli.errors import HemError, unknown_name

Split = tuple[torch.Tensor, torch.Tensor]
SPLITS = ("train", "test")

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
TIN_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
KMNIST_URL = "https://github.com/rois-codh/kmnist"
IMAGENET_URL = "https://image-net.org (ILSVRC2012, validation images sorted into class folders)"

# (folder, train files, test files, label key, classes) of each CIFAR set, as torchvision extracts them
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)


class MissingFiles(HemError):
    """Files a dataset needs are not where they should be (a loader may then try to download)."""


def _missing(what: str, folder: Path, names: list[str], source: str) -> HemError:
    """The one-line error for files of ``what`` that are not in ``folder``."""
    return MissingFiles(f"{what} not found: need {', '.join(names)} in {folder} (get them from {source})")


def _as_split(images: np.ndarray, labels: np.ndarray, where: Path) -> Split:
    """uint8 images and integer labels (each already checked against its file) as tensors."""
    check_pairs(len(images), len(labels), where)
    # np.require copies only where needed: IDX arrays are read-only views, torch wants writable ones
    return (torch.from_numpy(np.require(images, np.uint8, ["C", "W"])),
            torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1)))


# ---- CIFAR -----------------------------------------------------------------------------------------

def read_cifar(root: Path | str, which: str = "cifar10", split: str = "train", num_classes: int | None = None
               ) -> Split:
    """CIFAR-10 or CIFAR-100 (fine labels) ``split``: uint8 (N, 3, 32, 32), int64 labels below
    ``num_classes`` (the registry's; None: the set's own 10 or 100)."""
    if which not in _CIFAR:
        raise unknown_name("CIFAR set", which, _CIFAR)
    _check_split(split)
    folder_name, train, test, label_key, classes = _CIFAR[which]
    folder = Path(root) / folder_name
    names = train if split == "train" else test
    if not all((folder / name).is_file() for name in names):
        raise _missing(f"{which} {split} split", folder, names,
                       f"{CIFAR_URL}, the python version, extracted in {root}")
    batches = [cifar_batch(folder / name, label_key, num_classes or classes) for name in names]
    return _as_split(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), folder)


# ---- SVHN ------------------------------------------------------------------------------------------

def read_svhn(root: Path | str, split: str = "train", num_classes: int = 10) -> Split:
    """SVHN (format 2, cropped digits) ``split``: uint8 (N, 3, 32, 32); labels 0-9 (the file's 10 is 0)."""
    _check_split(split)
    path = Path(root) / f"{split}_32x32.mat"
    if not path.is_file():
        raise _missing(f"svhn {split} split", Path(root), [path.name], SVHN_URL)
    return _as_split(*svhn_mat(path, num_classes), path)


# ---- TinyImageNet-200 ------------------------------------------------------------------------------

TIN_SIZE = (64, 64)


def _read_jpegs(paths: list[Path], size: tuple[int, int] = TIN_SIZE) -> np.ndarray:
    """Decode image files, each (H, W) = ``size``, to uint8 (N, 3, H, W); grey ones are repeated to RGB."""
    from PIL import Image

    out = np.empty((len(paths), 3, *size), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as err:  # PIL's decode errors are OSErrors
            raise HemError(f"cannot read the image {path}: {err}") from None
        if array.shape[:2] != size:
            raise HemError(f"{path} is {array.shape[1]}x{array.shape[0]}, expected {size[1]}x{size[0]}")
        out[i] = array.transpose(2, 0, 1)
    return out


def tin_classes(base: Path) -> list[str]:
    """The wnids of ``tiny-imagenet-200/wnids.txt`` in sorted order: label i is the i-th."""
    path = base / "wnids.txt"
    if not path.is_file():
        raise _missing("tinyimagenet", base, ["wnids.txt", "train/", "val/"], f"{TIN_URL}, unzipped")
    wnids = sorted({line.strip() for line in path.read_text().splitlines() if line.strip()})
    if not wnids:
        raise HemError(f"{path} lists no classes")
    return wnids


def _tin_train(base: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Every ``train/<wnid>/images/*.JPEG``, class by class in sorted file order."""
    paths, labels = [], []
    for label, wnid in enumerate(wnids):
        folder = base / "train" / wnid / "images"
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpeg", ".jpg")) \
            if folder.is_dir() else []
        if not files:
            raise HemError(f"tinyimagenet: no training images in {folder} (class {wnid} of wnids.txt)")
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _tin_val(base: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """``val/images/*`` in val_annotations.txt's order, labelled by its second column."""
    notes = base / "val" / "val_annotations.txt"
    if not notes.is_file():
        raise HemError(f"tinyimagenet: {notes} is missing; the validation labels come from it "
                       f"(it is in {TIN_URL})")
    index = {wnid: i for i, wnid in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(notes.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise HemError(f"{notes}:{number}: expected 'file<TAB>wnid<TAB>box' with a wnid of wnids.txt")
        path = base / "val" / "images" / fields[0]
        if not path.is_file():
            raise HemError(f"{notes}:{number}: {path} does not exist")
        paths.append(path)
        labels.append(index[fields[1]])
    return paths, labels


def read_tinyimagenet(root: Path | str, split: str = "train", num_classes: int = 200) -> Split:
    """TinyImageNet-200 ``split`` ("test" = the val folder): uint8 (N, 3, 64, 64), int64 labels 0-199."""
    _check_split(split)
    base = Path(root) / "tiny-imagenet-200"
    wnids = tin_classes(base)
    if len(wnids) > num_classes:  # a label is a wnid's place, so more wnids would be labels out of range
        raise HemError(f"{base / 'wnids.txt'} lists {len(wnids)} classes, more than tin's {num_classes}")
    paths, labels = (_tin_train if split == "train" else _tin_val)(base, wnids)
    return _as_split(_read_jpegs(paths), np.asarray(labels), base)


# ---- KMNIST ----------------------------------------------------------------------------------------

def read_kmnist(root: Path | str, split: str = "train", num_classes: int = 10) -> Split:
    """Kuzushiji-MNIST ``split``: uint8 (N, 1, 28, 28), int64 labels; IDX in KMNIST/raw, else npz."""
    _check_split(split)
    folder = Path(root) / "KMNIST"
    raw = folder / "raw"
    if idx.has_split(raw, split):
        images, labels = idx.read_arrays(raw, split, num_classes)
        return _as_split(images[:, None], labels, raw)
    npz = [folder / f"kmnist-{split}-{kind}.npz" for kind in ("imgs", "labels")]
    if not all(path.is_file() for path in npz):
        prefix = "train" if split == "train" else "t10k"
        raise _missing(f"kmnist {split} split", folder,
                       [f"raw/{prefix}-images-idx3-ubyte[.gz] + raw/{prefix}-labels-idx1-ubyte[.gz]",
                        "or " + " + ".join(path.name for path in npz)], KMNIST_URL)
    images = check_images(npz_array(npz[0]), npz[0], idx.MNIST_SIZE, what="arr_0")
    labels = check_labels(npz_array(npz[1]), num_classes, npz[1])
    check_pairs(len(images), len(labels), npz[0], npz[1])
    return _as_split(images[:, None], labels, folder)


# ---- ImageNet --------------------------------------------------------------------------------------

def imagenet_transform(split: str, augment: bool = True):
    """The paper's ImageNet transforms, pixels left in [0, 1] (no normalisation): train
    RandomResizedCrop 224 + horizontal flip (with ``augment``; else as test); test Resize 256
    (short side) + CenterCrop 224."""
    from torchvision import transforms as T

    _check_split(split)
    if split == "train" and augment:
        return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor()])
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def imagenet_folder(root: Path | str, split: str = "train", augment: bool = True, num_classes: int = 1000):
    """ImageNet ``split`` ("test" = ``imagenet/val``) as a torchvision ImageFolder yielding
    (float32 (3, 224, 224) in [0, 1], class index of the sorted wnid folders, at most ``num_classes``)."""
    from torchvision.datasets import ImageFolder

    _check_split(split)
    base = Path(root) / "imagenet"
    folder = base / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise _missing(f"imagenet {split} split", base, [f"{folder.name}/<wnid>/*.JPEG"], IMAGENET_URL)
    other = base / ("val" if split == "train" else "train")
    # ImageFolder numbers the classes it sees, so both splits must hold the same class folders
    if other.is_dir() and _class_folders(other) != _class_folders(folder):
        raise HemError(f"imagenet: {base}/train and {base}/val hold different class folders")
    classes = _class_folders(folder)
    if len(classes) > num_classes:  # the label of a folder is its place: one more is a label out of range
        raise HemError(f"{folder} holds {len(classes)} class folders, more than imagenet's {num_classes} "
                       f"(the first beyond: {classes[num_classes]})")
    try:
        return ImageFolder(str(folder), transform=imagenet_transform(split, augment))
    except (FileNotFoundError, OSError) as err:  # no class folders, or no images in them
        raise HemError(f"imagenet: {folder}: {err}") from None


# ---- ImageNet-LT -----------------------------------------------------------------------------------

IMAGENET_LT_URL = "https://github.com/zhmiao/OpenLongTailRecognition-OLTR (ImageNet_LT_*.txt)"


class ListedImages:
    """Images named by a list file of ``relative/path label`` lines (ImageNet-LT's), with a transform;
    ``targets`` holds the labels, as ImageFolder's do."""

    def __init__(self, base: Path, entries: list[tuple[str, int]], transform):
        self.base, self.entries, self.transform = base, entries, transform
        self.targets = [label for _, label in entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.entries[index]
        with Image.open(self.base / path) as image:
            return self.transform(image.convert("RGB")), label


class ListedClasses:
    """The labels of ImageNet-LT's list files: each below ``num_classes`` and, over every list read
    through one of these, one to one with the class folder its images lie in (``train/<wnid>/...``)."""

    def __init__(self, num_classes: int = 1000):
        self.num_classes, self.label_of, self.folder_of = num_classes, {}, {}

    def check(self, path: str, label: int, where: str) -> None:
        if label >= self.num_classes:
            raise HemError(f"{where}: label {label} is outside 0..{self.num_classes - 1}")
        parts = Path(path).parts
        if len(parts) < 3:  # not <split>/<wnid>/<file>: no class folder to be consistent with
            return
        folder = parts[-2]
        label_seen, label_where = self.label_of.setdefault(folder, (label, where))
        folder_seen, folder_where = self.folder_of.setdefault(label, (folder, where))
        if label_seen != label:
            raise HemError(f"{where}: label {label} for class folder {folder}, which {label_where} labels {label_seen}")
        if folder_seen != folder:
            raise HemError(f"{where}: label {label} for class folder {folder}, but {folder_where} gives it to "
                           f"{folder_seen}")


def _list_entries(path: Path, classes: ListedClasses) -> list[tuple[str, int]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise HemError(f"{path}:{number}: expected 'relative/path.JPEG label', got {line.strip()[:80]!r}")
        classes.check(parts[0], int(parts[1]), f"{path}:{number}")
        entries.append((parts[0], int(parts[1])))
    return entries


def imagenet_lt(root: Path | str, split: str = "train", augment: bool = True,
                classes: ListedClasses | None = None) -> ListedImages:
    """ImageNet-LT ``split`` ("test" = ImageNet_LT_test.txt, 50 per class from ImageNet's val): the
    images its list file names under ``<root>/imagenet/``, with the paper's ImageNet transforms.
    ``classes`` checks the labels (pass the same one for both splits, so they agree)."""
    _check_split(split)
    base = Path(root)
    listing = base / f"ImageNet_LT_{split}.txt"
    if not listing.is_file():
        raise _missing(f"imagenet-lt {split} split", base, [listing.name, "imagenet/train/", "imagenet/val/"],
                       IMAGENET_LT_URL)
    entries = _list_entries(listing, classes or ListedClasses())
    first_missing = next((path for path, _ in entries if not (base / "imagenet" / path).is_file()), None)
    if first_missing is not None:
        raise HemError(f"imagenet-lt: {listing.name} names {first_missing}, which is not in {base / 'imagenet'}")
    return ListedImages(base / "imagenet", entries, imagenet_transform(split, augment))
