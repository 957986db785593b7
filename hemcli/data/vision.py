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

import pickle
from pathlib import Path

import numpy as np
import torch

from hemcli.data import idx
# private helpers of unknown_real, reused rather than written twice: the arrays-only unpickler
# and the authors' npz reader (key arr_0)
from hemcli.data.unknown_real import ArraysOnly, npz_images
from hemcli.errors import HemError, unknown_name

Split = tuple[torch.Tensor, torch.Tensor]
SPLITS = ("train", "test")

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
TIN_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
KMNIST_URL = "https://github.com/rois-codh/kmnist"
IMAGENET_URL = "https://image-net.org (ILSVRC2012, validation images sorted into class folders)"

# (folder, train files, test files, label key) of each CIFAR set, as torchvision extracts them
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
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
    """uint8 images and integer labels as tensors, checked to pair up."""
    if len(images) != len(labels):
        raise HemError(f"{where}: {len(images)} images but {len(labels)} labels")
    # np.require copies only where needed: IDX arrays are read-only views, torch wants writable ones
    return (torch.from_numpy(np.require(images, np.uint8, ["C", "W"])),
            torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1)))


# ---- CIFAR -----------------------------------------------------------------------------------------

def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """Stands in for ``_codecs.encode``, which Python 3's protocol-2 pickles use for bytes; only the
    latin-1 form numpy and pickle write is accepted."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


class _CifarUnpickler(ArraysOnly):
    """Arrays-only unpickling that also takes bytes re-pickled by Python 3 at protocol 2."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        return super().find_class(module, name)


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: b"data" (N, 3072) uint8, each row the R, G, B planes of 32x32 row-major."""
    try:
        with open(path, "rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    except Exception as err:  # unpickling fails in many ways (UnpicklingError, EOFError, KeyError, ...)
        raise HemError(f"cannot read the CIFAR batch {path}: {type(err).__name__}: {err}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise HemError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(root: Path | str, which: str = "cifar10", split: str = "train") -> Split:
    """CIFAR-10 or CIFAR-100 (fine labels) ``split``: uint8 (N, 3, 32, 32), int64 labels."""
    if which not in _CIFAR:
        raise unknown_name("CIFAR set", which, _CIFAR)
    _check_split(split)
    folder_name, train, test, label_key = _CIFAR[which]
    folder = Path(root) / folder_name
    names = train if split == "train" else test
    if not all((folder / name).is_file() for name in names):
        raise _missing(f"{which} {split} split", folder, names,
                       f"{CIFAR_URL}, the python version, extracted in {root}")
    batches = [_cifar_batch(folder / name, label_key) for name in names]
    return _as_split(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), folder)


# ---- SVHN ------------------------------------------------------------------------------------------

def read_svhn(root: Path | str, split: str = "train") -> Split:
    """SVHN (format 2, cropped digits) ``split``: uint8 (N, 3, 32, 32); labels 0-9 (the file's 10 is 0)."""
    from scipy.io import loadmat

    _check_split(split)
    path = Path(root) / f"{split}_32x32.mat"
    if not path.is_file():
        raise _missing(f"svhn {split} split", Path(root), [path.name], SVHN_URL)
    try:
        mat = loadmat(path, variable_names=["X", "y"])
        images, labels = mat["X"], np.asarray(mat["y"]).reshape(-1)
    except Exception as err:  # a truncated or foreign .mat fails with ValueError, KeyError, OSError, ...
        raise HemError(f"cannot read {path}: {type(err).__name__}: {err}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2] != 3:
        raise HemError(f"{path}: X is {images.dtype} {images.shape}, expected uint8 (32, 32, 3, N)")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise HemError(f"{path}: y holds values outside 1..10")
    # X is (height, width, colour, image); y counts digits 1..9 and writes 0 as 10
    return _as_split(np.transpose(images, (3, 2, 0, 1)), labels % 10, path)


# ---- TinyImageNet-200 ------------------------------------------------------------------------------

def _read_jpegs(paths: list[Path]) -> np.ndarray:
    """Decode image files (all of one size) to uint8 (N, 3, H, W); grey ones are repeated to RGB."""
    from PIL import Image

    out = None
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as err:  # PIL's decode errors are OSErrors
            raise HemError(f"cannot read the image {path}: {err}") from None
        if out is None:
            out = np.empty((len(paths), 3, *array.shape[:2]), dtype=np.uint8)
        elif array.shape[:2] != out.shape[2:]:
            raise HemError(f"{path} is {array.shape[1]}x{array.shape[0]}, the others "
                           f"{out.shape[3]}x{out.shape[2]}")
        out[i] = array.transpose(2, 0, 1)
    return out if out is not None else np.empty((0, 3, 64, 64), dtype=np.uint8)


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


def read_tinyimagenet(root: Path | str, split: str = "train") -> Split:
    """TinyImageNet-200 ``split`` ("test" = the val folder): uint8 (N, 3, 64, 64), int64 labels 0-199."""
    _check_split(split)
    base = Path(root) / "tiny-imagenet-200"
    wnids = tin_classes(base)
    paths, labels = (_tin_train if split == "train" else _tin_val)(base, wnids)
    return _as_split(_read_jpegs(paths), np.asarray(labels), base)


# ---- KMNIST ----------------------------------------------------------------------------------------

def read_kmnist(root: Path | str, split: str = "train") -> Split:
    """Kuzushiji-MNIST ``split``: uint8 (N, 1, 28, 28), int64 labels; IDX in KMNIST/raw, else npz."""
    _check_split(split)
    folder = Path(root) / "KMNIST"
    raw = folder / "raw"
    if idx.has_split(raw, split):
        images = idx.read_idx(idx.images_file(raw, split), "images")
        labels = idx.read_idx(idx.labels_file(raw, split), "labels")
        return _as_split(images[:, None], labels, raw)
    npz = [folder / f"kmnist-{split}-{kind}.npz" for kind in ("imgs", "labels")]
    if not all(path.is_file() for path in npz):
        prefix = "train" if split == "train" else "t10k"
        raise _missing(f"kmnist {split} split", folder,
                       [f"raw/{prefix}-images-idx3-ubyte[.gz] + raw/{prefix}-labels-idx1-ubyte[.gz]",
                        "or " + " + ".join(path.name for path in npz)], KMNIST_URL)
    try:
        images = npz_images(npz[0])
        with np.load(npz[1]) as archive:
            labels = archive["arr_0"]
    except Exception as err:  # a foreign npz fails with KeyError, ValueError, OSError, ...
        raise HemError(f"cannot read the kmnist npz files in {folder}: {type(err).__name__}: {err}") from None
    if images.dtype != np.uint8 or images.ndim != 3:
        raise HemError(f"{npz[0]}: arr_0 is {images.dtype} {images.shape}, expected uint8 (N, 28, 28)")
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


def imagenet_folder(root: Path | str, split: str = "train", augment: bool = True):
    """ImageNet ``split`` ("test" = ``imagenet/val``) as a torchvision ImageFolder yielding
    (float32 (3, 224, 224) in [0, 1], class index of the sorted wnid folders)."""
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


def _list_entries(path: Path) -> list[tuple[str, int]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise HemError(f"{path}:{number}: expected 'relative/path.JPEG label', got {line.strip()[:80]!r}")
        entries.append((parts[0], int(parts[1])))
    return entries


def imagenet_lt(root: Path | str, split: str = "train", augment: bool = True) -> ListedImages:
    """ImageNet-LT ``split`` ("test" = ImageNet_LT_test.txt, 50 per class from ImageNet's val): the
    images its list file names under ``<root>/imagenet/``, with the paper's ImageNet transforms."""
    _check_split(split)
    base = Path(root)
    listing = base / f"ImageNet_LT_{split}.txt"
    if not listing.is_file():
        raise _missing(f"imagenet-lt {split} split", base, [listing.name, "imagenet/train/", "imagenet/val/"],
                       IMAGENET_LT_URL)
    entries = _list_entries(listing)
    first_missing = next((path for path, _ in entries if not (base / "imagenet" / path).is_file()), None)
    if first_missing is not None:
        raise HemError(f"imagenet-lt: {listing.name} names {first_missing}, which is not in {base / 'imagenet'}")
    return ListedImages(base / "imagenet", entries, imagenet_transform(split, augment))
