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


# ---- broken files, for the bad-data cases (tests/test_bad_data.py) ----------------------------------

def idx_raw(root, folder="FashionMNIST", n=(20, 10), label_at=None, header_count=None, labels_short=None,
            size=(28, 28)):
    """``mnist_like`` files with one thing broken: ``label_at`` = (split, index, label) writes that
    label; ``header_count`` = (split, count) writes that count in the images file's header (the data
    left as it is); ``labels_short`` = split writes one label fewer than images (a consistent file);
    ``size`` the images' rows and columns. Files are gzip-compressed, as torchvision keeps them."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "test"), n):
        prefix = "train" if split == "train" else "t10k"
        labels = np.arange(count) % 10
        if label_at and label_at[0] == split:
            labels[label_at[1]] = label_at[2]
        if labels_short == split:
            labels = labels[:-1]
        claimed = header_count[1] if header_count and header_count[0] == split else count
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
            header = np.array([2051, claimed, *size], ">i4").tobytes()
            handle.write(header + pattern(count, *size, seed=count).tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
            handle.write(np.array([2049, len(labels)], ">i4").tobytes() + labels.astype(np.uint8).tobytes())
    return raw


def kmnist_npz(root, n=(20, 10), labels=None, images=None):
    """The KMNIST authors' npz files (key arr_0) for both splits; ``labels`` / ``images`` replace the
    training split's arrays."""
    folder = root / "KMNIST"
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "test"), n):
        x, y = pattern(count, 28, 28, seed=count), np.arange(count, dtype=np.int64) % 10
        if split == "train":
            x = x if images is None else images
            y = y if labels is None else labels
        np.savez_compressed(folder / f"kmnist-{split}-imgs.npz", arr_0=x)
        np.savez_compressed(folder / f"kmnist-{split}-labels.npz", arr_0=y)


def svhn_with(root, n=(8, 4), y=None, x_shape=None):
    """``svhn`` files whose training ``y`` (stored as SVHN does, 1..10 for the digits) or test images'
    (H, W, C) ``x_shape`` are given."""
    from scipy.io import savemat

    for split, count in zip(("train", "test"), n):
        digits = np.arange(count) % 10 + 1 if y is None or split == "test" else np.asarray(y)
        shape = x_shape if x_shape and split == "test" else (32, 32, 3)
        savemat(root / f"{split}_32x32.mat", {"X": pattern(*shape, count, seed=count),
                                               "y": digits.reshape(-1, 1).astype(np.uint8)})
