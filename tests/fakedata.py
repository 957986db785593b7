"""Small generated datasets in exactly the on-disk formats of the real ones, for tests that run the
real loaders end to end: IDX (MNIST family), CIFAR's pickled batches, SVHN's .mat, the
TinyImageNet-200 tree with its annotation file, and an ImageFolder tree (ImageNet)."""
import gzip
import pickle

import numpy as np
from PIL import Image


def pattern(*shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def write_idx(raw, split, images, labels):
    """IDX files as torchvision keeps them, gzip-compressed (big-endian header, then uint8 data)."""
    raw.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    n, h, w = images.shape
    with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(np.array([2051, n, h, w], ">i4").tobytes() + images.tobytes())
    with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(np.array([2049, n], ">i4").tobytes() + labels.astype(np.uint8).tobytes())


def mnist_like(root, folder="MNIST", n=(20, 10)):
    for split, count in zip(("train", "test"), n):
        write_idx(root / folder / "raw", split, pattern(count, 28, 28, seed=count), np.arange(count) % 10)


def write_cifar_batch(path, rows, labels, label_key):
    """A batch as the originals: a dict of bytes keys, pickled at protocol 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = {b"batch_label": b"testing batch", b"data": rows, label_key: list(labels),
             b"filenames": [b"img_%d.png" % i for i in range(len(rows))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def cifar(root, which="cifar10", per_batch=4, test=6, per_class=None):
    """CIFAR files; ``per_class`` instead writes that many training images of every class (in label
    order), enough for a long-tailed subset to keep a sample of each."""
    classes = 10 if which == "cifar10" else 100
    if per_class is not None:
        labels = np.repeat(np.arange(classes), per_class)
        per_batch = len(labels) // 5 if which == "cifar10" else len(labels)
    if which == "cifar10" and per_class is not None:
        folder = root / "cifar-10-batches-py"
        for i in range(1, 6):
            part = labels[(i - 1) * per_batch:i * per_batch]
            write_cifar_batch(folder / f"data_batch_{i}", pattern(len(part), 3072, seed=i), part, b"labels")
        write_cifar_batch(folder / "test_batch", pattern(test, 3072, seed=9), np.arange(test) % classes, b"labels")
    elif which == "cifar10":
        folder = root / "cifar-10-batches-py"
        for i in range(1, 6):
            write_cifar_batch(folder / f"data_batch_{i}", pattern(per_batch, 3072, seed=i),
                              [(per_batch * (i - 1) + k) % classes for k in range(per_batch)], b"labels")
        write_cifar_batch(folder / "test_batch", pattern(test, 3072, seed=9), np.arange(test) % classes, b"labels")
    else:
        folder = root / "cifar-100-python"
        train = labels if per_class is not None else np.arange(classes)
        write_cifar_batch(folder / "train", pattern(len(train), 3072, seed=1), train, b"fine_labels")
        write_cifar_batch(folder / "test", pattern(test, 3072, seed=2), np.arange(test) * 3 % classes, b"fine_labels")


def svhn(root, n=(8, 4)):
    from scipy.io import savemat

    for split, count in zip(("train", "test"), n):
        images = pattern(count, 32, 32, 3, seed=count)  # stored as (H, W, C, N), labels 1..10
        savemat(root / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0),
                                               "y": (np.arange(count) % 10 + 1).reshape(-1, 1).astype(np.uint8)})


def colour_jpeg(path, value, mode="RGB", size=(64, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path, quality=95)


TIN_WNIDS = ["n09999999", "n01443537", "n02085620"]  # wnids.txt order is not sorted in the official file


def tin_tree(root, annotations=True, per_class=2, wnids=TIN_WNIDS):
    """A TinyImageNet-200 tree: per class ``per_class`` train images of a flat colour, three val images."""
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for k, wnid in enumerate(wnids):
        for j in range(per_class):
            colour_jpeg(base / "train" / wnid / "images" / f"{wnid}_{j}.JPEG", (80 * k % 256, 10 * j, 200))
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    val = [("val_0.JPEG", "n02085620"), ("val_1.JPEG", "n09999999"), ("val_2.JPEG", "n01443537")]
    for name, _ in val:
        colour_jpeg(base / "val" / "images" / name, 128, mode="L")  # TIN has some grey images
    if annotations:
        (base / "val" / "val_annotations.txt").write_text(
            "".join(f"{name}\t{wnid}\t0\t0\t63\t63\n" for name, wnid in val))
    return base


def imagenet_tree(root, wnids=("n01440764", "n01443537"), per_class=2, size=(80, 60)):
    """``imagenet/{train,val}/<wnid>/*.JPEG`` with images of any size (the transforms crop 224)."""
    for split in ("train", "val"):
        for k, wnid in enumerate(wnids):
            for j in range(per_class):
                colour_jpeg(root / "imagenet" / split / wnid / f"{wnid}_{j}.JPEG", (200 * k, 30 * j, 90), size=size)


def imagenet_lt_lists(root, wnids=("n01440764", "n01443537"), per_class=2):
    """ImageNet-LT's list files over ``imagenet_tree``: class 0 keeps all its train images, class 1 one."""
    train = [f"train/{wnids[0]}/{wnids[0]}_{j}.JPEG 0" for j in range(per_class)] + [f"train/{wnids[1]}/{wnids[1]}_0.JPEG 1"]
    test = [f"val/{wnid}/{wnid}_{j}.JPEG {k}" for k, wnid in enumerate(wnids) for j in range(per_class)]
    (root / "ImageNet_LT_train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageNet_LT_test.txt").write_text("\n".join(test) + "\n")
