"""Readers of the paper's image datasets, each on small files written in exactly its real format."""
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import needs_shared
from fakedata import pattern, tin_tree, write_cifar_batch
from hemcli.data.vision import (imagenet_folder, read_cifar, read_kmnist, read_svhn, read_tinyimagenet,
                                tin_classes)
from hemcli.errors import HemError


# ---- CIFAR ------------------------------------------------------------------------------------------

def test_cifar10_train_concatenates_five_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", pattern(2, 3072, seed=i), [i, 9 - i], b"labels")
    x, y = read_cifar(tmp_path, "cifar10", "train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and y.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    # the row of batch 3's second image: R plane, then G, then B, each 32x32 row-major
    row = pattern(2, 3072, seed=3)[1]
    assert torch.equal(x[5, 1, 2, 7], torch.tensor(row[1024 + 2 * 32 + 7]))
    assert torch.equal(x[5].flatten(), torch.from_numpy(row))


def test_cifar100_test_uses_fine_labels(tmp_path):
    path = tmp_path / "cifar-100-python" / "test"
    rows = pattern(3, 3072)
    batch = {b"data": rows, b"fine_labels": [99, 0, 42], b"coarse_labels": [19, 0, 1]}
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(batch, protocol=2))
    x, y = read_cifar(tmp_path, "cifar100", "test")
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [99, 0, 42]
    assert torch.equal(x.reshape(3, -1), torch.from_numpy(rows))


def test_cifar_missing_batch_names_files_folder_and_source(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    for i in (1, 2, 3, 4):
        write_cifar_batch(folder / f"data_batch_{i}", pattern(1, 3072), [0], b"labels")
    with pytest.raises(HemError, match=r"cifar10 train split not found: need data_batch_1, .*data_batch_5 in "
                                       r".*cifar-10-batches-py \(get them from https://www.cs.toronto.edu"):
        read_cifar(tmp_path, "cifar10", "train")
    with pytest.raises(HemError, match="need test in .*cifar-100-python"):
        read_cifar(tmp_path, "cifar100", "test")
    with pytest.raises(HemError, match="unknown CIFAR set 'cifar20'; valid choices: cifar10, cifar100"):
        read_cifar(tmp_path, "cifar20")
    with pytest.raises(HemError, match="unknown split 'val'; valid choices: test, train"):
        read_cifar(tmp_path, "cifar10", "val")


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ("true",)

    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(HemError, match="refusing to load (posix|nt).system"):
        read_cifar(tmp_path, "cifar10", "test")
    # the stand-in for _codecs.encode takes latin-1 only, so no other codec can be reached
    path.write_bytes(pickle.dumps({b"data": b"x", b"labels": []}, protocol=2).replace(b"latin1", b"base64"))
    with pytest.raises(HemError, match="refusing _codecs.encode with encoding 'base64'"):
        read_cifar(tmp_path, "cifar10", "test")


# ---- SVHN -------------------------------------------------------------------------------------------

def test_svhn_orientation_and_digit_zero(tmp_path):
    from scipy.io import savemat

    images = pattern(4, 32, 32, 3)  # (N, H, W, C), stored as SVHN's (H, W, C, N)
    savemat(tmp_path / "test_32x32.mat",
            {"X": images.transpose(1, 2, 3, 0), "y": np.array([[10], [1], [9], [10]], dtype=np.uint8)})
    x, y = read_svhn(tmp_path, "test")
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 9, 0]  # 10 is the digit 0
    with pytest.raises(HemError, match=r"svhn train split not found: need train_32x32.mat in .* "
                                       r"\(get them from http://ufldl.stanford.edu/housenumbers/\)"):
        read_svhn(tmp_path, "train")


# ---- TinyImageNet-200 -------------------------------------------------------------------------------

def test_tinyimagenet_labels_follow_sorted_wnids(tmp_path):
    base = tin_tree(tmp_path)
    assert tin_classes(base) == ["n01443537", "n02085620", "n09999999"]
    x, y = read_tinyimagenet(tmp_path, "train")
    assert x.shape == (6, 3, 64, 64) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and y.tolist() == [0, 0, 1, 1, 2, 2]
    # n09999999 (label 2) is the first wnid of wnids.txt, whose red is 80 * 0; JPEG may shift a flat colour by 1-2
    assert abs(int(x[4, 0].float().mean().round()) - 0) <= 2
    assert abs(int(x[0, 0].float().mean().round()) - 80) <= 2  # n01443537, second in wnids.txt
    xv, yv = read_tinyimagenet(tmp_path, "test")
    assert xv.shape == (3, 3, 64, 64) and yv.tolist() == [1, 2, 0]
    assert torch.equal(xv[:, 0], xv[:, 2])  # grey repeated to RGB


def test_tinyimagenet_missing_files(tmp_path):
    tin_tree(tmp_path, annotations=False)
    with pytest.raises(HemError, match=r"val_annotations.txt is missing; the validation labels come from it"):
        read_tinyimagenet(tmp_path, "test")
    with pytest.raises(HemError, match=r"tinyimagenet not found: need wnids.txt, train/, val/ in .*"
                                       r"tiny-imagenet-200 \(get them from http://cs231n"):
        read_tinyimagenet(tmp_path / "elsewhere", "train")


# ---- KMNIST -----------------------------------------------------------------------------------------

def test_kmnist_npz_and_idx(tmp_path):
    folder = tmp_path / "KMNIST"
    folder.mkdir()
    images, labels = pattern(5, 28, 28), np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.savez_compressed(folder / "kmnist-test-imgs.npz", arr_0=images)
    np.savez_compressed(folder / "kmnist-test-labels.npz", arr_0=labels)
    x, y = read_kmnist(tmp_path, "test")
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.uint8 and torch.equal(x[:, 0], torch.from_numpy(images))
    assert y.dtype == torch.int64 and y.tolist() == [3, 1, 4, 1, 5]
    # IDX in raw/ (big-endian header: magic, count, rows, cols) wins over the npz files
    raw = folder / "raw"
    raw.mkdir()
    idx_images = pattern(2, 28, 28, seed=1)
    (raw / "t10k-images-idx3-ubyte").write_bytes(np.array([2051, 2, 28, 28], ">i4").tobytes() + idx_images.tobytes())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(np.array([2049, 2], ">i4").tobytes() + bytes([7, 2]))
    x, y = read_kmnist(tmp_path, "test")
    assert torch.equal(x[:, 0], torch.from_numpy(idx_images)) and y.tolist() == [7, 2]
    with pytest.raises(HemError, match=r"kmnist train split not found: need raw/train-images-idx3-ubyte\[.gz\] "
                                       r".*or kmnist-train-imgs.npz \+ kmnist-train-labels.npz in .*KMNIST"):
        read_kmnist(tmp_path, "train")


# ---- ImageNet ---------------------------------------------------------------------------------------

def test_imagenet_folder_transforms(tmp_path):
    for split, size in (("train", (300, 260)), ("val", (320, 256))):
        for k, wnid in enumerate(("n01440764", "n01443537")):
            (tmp_path / "imagenet" / split / wnid).mkdir(parents=True)
            Image.new("RGB", size, (255 * k, 0, 0)).save(tmp_path / "imagenet" / split / wnid / "a.JPEG")
    train = imagenet_folder(tmp_path, "train")
    test = imagenet_folder(tmp_path, "test")
    assert train.classes == ["n01440764", "n01443537"]
    image, label = test[1]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32 and label == 1
    assert image.min() >= 0 and image.max() <= 1  # not normalised
    assert torch.allclose(image[0], torch.ones(224, 224), atol=2 / 255)  # JPEG stores red 255 as 254
    image, label = train[0]
    assert image.shape == (3, 224, 224) and label == 0
    names = [type(t).__name__ for t in test.transform.transforms]
    assert names == ["Resize", "CenterCrop", "ToTensor"] and test.transform.transforms[0].size == 256
    assert [type(t).__name__ for t in train.transform.transforms] == [
        "RandomResizedCrop", "RandomHorizontalFlip", "ToTensor"]


def test_imagenet_missing_folder(tmp_path):
    with pytest.raises(HemError, match=r"imagenet test split not found: need val/<wnid>/\*.JPEG in .*imagenet "
                                       r"\(get them from https://image-net.org"):
        imagenet_folder(tmp_path, "test")
    (tmp_path / "imagenet" / "train" / "n01440764").mkdir(parents=True)
    with pytest.raises(HemError, match="imagenet: .*train"):  # a class folder without images
        imagenet_folder(tmp_path, "train")


def test_real_kmnist_test_split():
    needs_shared("KMNIST", "kmnist-test-imgs.npz")
    x, y = read_kmnist(needs_shared(), "test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [1000] * 10  # the README: 1 000 per class
