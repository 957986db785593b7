"""Bad data files, case by case through the real command line (issue 25): a label outside the
dataset's classes, a header that disagrees with the data, images of another shape or dtype, list
files whose labels disagree, a truncated unknown set or a malformed corruption file that an
evaluation would read only after training. Each must end as ``test_bad_input.check_case`` says
(exit 2, one ``hem: error:`` line, nothing written), and the line must name the file and its first
bad entry -- checked here against the exact text, worked out from what the case planted.

Every file is generated small in the test's folder; every case fails while loading, before a
model is built, so none trains.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fakedata
from hemcli.data.checks import check_labels
from hemcli.errors import HemError
from test_bad_input import at, check_case

D = Path("d")  # the data root of every case, relative to the working folder
FASHION = D / "FashionMNIST" / "raw"
FASHION_ARGS = ["--dataset", "fashion-mnist", "--data-root", "d", "--set", "dataset.download=false"]


def idx(**broken):
    return lambda root: fakedata.idx_raw(root / D, **broken)


def kmnist(**broken):
    return lambda root: fakedata.kmnist_npz(root / D, **broken)


def cifar10_with_label(batch: int, index: int, label: int):
    """fakedata's CIFAR-10 (4 images a batch), one label of ``data_batch_<batch>`` replaced."""
    def write(root: Path) -> None:
        fakedata.cifar(root / D, "cifar10")
        labels = [(4 * (batch - 1) + k) % 10 for k in range(4)]
        labels[index] = label
        fakedata.write_cifar_batch(root / D / "cifar-10-batches-py" / f"data_batch_{batch}",
                                   fakedata.pattern(4, 3072, seed=batch), labels, b"labels")
    return write


def cifar100_with_label(index: int, label: int):
    def write(root: Path) -> None:
        fakedata.cifar(root / D, "cifar100")
        labels = list(range(100))
        labels[index] = label
        fakedata.write_cifar_batch(root / D / "cifar-100-python" / "train", fakedata.pattern(100, 3072, seed=1),
                                   labels, b"fine_labels")
    return write


def svhn(**broken):
    def write(root: Path) -> None:
        (root / D).mkdir()
        fakedata.svhn_with(root / D, **broken)
    return write


def imagenet_lt(train: list[str], test: list[str]):
    """fakedata's ImageNet tree (classes n01440764, n01443537, two images each) with these list lines."""
    def write(root: Path) -> None:
        fakedata.imagenet_tree(root / D)
        (root / D / "ImageNet_LT_train.txt").write_text("\n".join(train) + "\n")
        (root / D / "ImageNet_LT_test.txt").write_text("\n".join(test) + "\n")
    return write


A, B = "n01440764", "n01443537"
LT_TEST = [f"val/{A}/{A}_0.JPEG 0", f"val/{B}/{B}_0.JPEG 1"]
LT_TRAIN = [f"train/{A}/{A}_0.JPEG 0", f"train/{A}/{A}_1.JPEG 0", f"train/{B}/{B}_0.JPEG 1"]


def then(*writes):
    """A setup doing each of ``writes`` in turn."""
    def write(root: Path) -> None:
        for one in writes:
            one(root)
    return write


def truncated_mnist_test_images(root: Path) -> None:
    """MNIST's test images (a real unknown set of fashion-mnist), cut after 100 of their 7840 pixels."""
    header = np.array([2051, 10, 28, 28], ">i4").tobytes()
    at(D / "MNIST" / "raw" / "t10k-images-idx3-ubyte", header + bytes(100))(root)


def npy(path: Path, array: np.ndarray):
    def write(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / path, array)
    return write


def cifar100_test_of_another_width(root: Path) -> None:
    fakedata.write_cifar_batch(root / D / "cifar-100-python" / "test", fakedata.pattern(5, 6144), [0] * 5,
                               b"fine_labels")


def tin_with_a_smaller_image(root: Path) -> None:
    fakedata.tin_tree(root / D)
    fakedata.colour_jpeg(root / D / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG", 128, size=(32, 30))


CASES = [
    # labels outside the classes, in training and in test
    ("classify: a training label of 78", ["classify", *FASHION_ARGS],
     f"{FASHION}/train-labels-idx1-ubyte.gz: label 78 at index 3 is outside 0..9", idx(label_at=("train", 3, 78))),
    ("longtail: a training label of 78", ["longtail", *FASHION_ARGS],
     f"{FASHION}/train-labels-idx1-ubyte.gz: label 78 at index 3 is outside 0..9", idx(label_at=("train", 3, 78))),
    ("continual: a training label of 78", ["continual", "--benchmark", "split-fashion-mnist", "--data-root", "d",
                                           "--set", "dataset.download=false"],
     f"{FASHION}/train-labels-idx1-ubyte.gz: label 78 at index 3 is outside 0..9", idx(label_at=("train", 3, 78))),
    ("a test label of 10", ["classify", *FASHION_ARGS],
     f"{FASHION}/t10k-labels-idx1-ubyte.gz: label 10 at index 7 is outside 0..9", idx(label_at=("test", 7, 10))),
    # IDX headers against their data: 20 training images of 28 x 28 = 15680 pixels are written
    ("an IDX header counting more images than follow", ["classify", *FASHION_ARGS],
     f"{FASHION}/train-images-idx3-ubyte.gz is truncated: expected 19600 values, found 15680",
     idx(header_count=("train", 25))),
    ("an IDX header counting fewer images than follow", ["classify", *FASHION_ARGS],
     f"{FASHION}/train-images-idx3-ubyte.gz: its header says 15 x 28 x 28 = 11760 values, but 15680 follow",
     idx(header_count=("train", 15))),
    ("one label fewer than images", ["classify", *FASHION_ARGS],
     f"{FASHION}/t10k-images-idx3-ubyte.gz holds 10 images but {FASHION}/t10k-labels-idx1-ubyte.gz holds 9 labels",
     idx(labels_short="test")),
    ("IDX images of 32 x 32", ["classify", *FASHION_ARGS],
     f"{FASHION}/train-images-idx3-ubyte.gz: found images uint8 (20, 32, 32), expected uint8 (N, 28, 28)",
     idx(size=(32, 32))),
    # the KMNIST authors' npz files
    ("a KMNIST label of -1", ["classify", "--dataset", "kmnist", "--data-root", "d"],
     f"{D}/KMNIST/kmnist-train-labels.npz: label -1 at index 2 is outside 0..9",
     kmnist(labels=np.array([0, 1, -1] + [0] * 17))),
    ("a KMNIST label of 10", ["classify", "--dataset", "kmnist", "--data-root", "d"],
     f"{D}/KMNIST/kmnist-train-labels.npz: label 10 at index 19 is outside 0..9",
     kmnist(labels=np.array([0] * 19 + [10]))),
    ("KMNIST images as float32", ["classify", "--dataset", "kmnist", "--data-root", "d"],
     f"{D}/KMNIST/kmnist-train-imgs.npz: found arr_0 float32 (20, 28, 28), expected uint8 (N, 28, 28)",
     kmnist(images=np.zeros((20, 28, 28), np.float32))),
    ("KMNIST images of 28 x 27", ["classify", "--dataset", "kmnist", "--data-root", "d"],
     f"{D}/KMNIST/kmnist-train-imgs.npz: found arr_0 uint8 (20, 28, 27), expected uint8 (N, 28, 28)",
     kmnist(images=np.zeros((20, 28, 27), np.uint8))),
    # CIFAR's pickles and SVHN's .mat
    ("a CIFAR-10 label of 10", ["classify", "--dataset", "cifar10", "--arch", "resnet32", "--data-root", "d"],
     f"{D}/cifar-10-batches-py/data_batch_3: label 10 at index 1 is outside 0..9", cifar10_with_label(3, 1, 10)),
    ("a CIFAR-100 fine label of 100", ["classify", "--dataset", "cifar100", "--arch", "resnet32", "--data-root", "d"],
     f"{D}/cifar-100-python/train: label 100 at index 5 is outside 0..99", cifar100_with_label(5, 100)),
    ("an SVHN y of 0", ["classify", "--dataset", "svhn", "--arch", "resnet32", "--data-root", "d"],
     f"{D}/train_32x32.mat: label 0 at index 2 is outside 1..10", svhn(y=[1, 2, 0, 4, 5, 6, 7, 8])),
    ("an SVHN y of 11", ["classify", "--dataset", "svhn", "--arch", "resnet32", "--data-root", "d"],
     f"{D}/train_32x32.mat: label 11 at index 7 is outside 1..10", svhn(y=[1, 2, 3, 4, 5, 6, 7, 11])),
    ("SVHN images of 28 x 28", ["classify", "--dataset", "svhn", "--arch", "resnet32", "--data-root", "d"],
     f"{D}/test_32x32.mat: X is uint8 (28, 28, 3, 4), expected uint8 (32, 32, 3, N)", svhn(x_shape=(28, 28, 3))),
    ("a TinyImageNet image of 30 x 32", ["classify", "--dataset", "tin", "--arch", "resnet18", "--data-root", "d"],
     f"{D}/tiny-imagenet-200/val/images/val_1.JPEG is 32x30, expected 64x64", tin_with_a_smaller_image),
    # ImageNet-LT's list files
    ("an ImageNet-LT label of 1000", ["longtail", "--dataset", "imagenet-lt", "--arch", "resnet18", "--data-root", "d"],
     f"{D}/ImageNet_LT_train.txt:3: label 1000 is outside 0..999",
     imagenet_lt([*LT_TRAIN[:2], f"train/{B}/{B}_0.JPEG 1000"], LT_TEST)),
    ("an ImageNet-LT label given to two classes", ["longtail", "--dataset", "imagenet-lt", "--arch", "resnet18",
                                                    "--data-root", "d"],
     f"{D}/ImageNet_LT_train.txt:3: label 0 for class folder {B}, but {D}/ImageNet_LT_train.txt:1 gives it to {A}",
     imagenet_lt([*LT_TRAIN[:2], f"train/{B}/{B}_0.JPEG 0"], LT_TEST)),
    ("an ImageNet-LT class labelled otherwise in the test list", ["longtail", "--dataset", "imagenet-lt", "--arch",
                                                                  "resnet18", "--data-root", "d"],
     f"{D}/ImageNet_LT_test.txt:2: label 0 for class folder {B}, which {D}/ImageNet_LT_train.txt:3 labels 1",
     imagenet_lt(LT_TRAIN, [LT_TEST[0], f"val/{B}/{B}_0.JPEG 0"])),
    # files an evaluation reads only after training: found before the run's folder is made
    ("a truncated unknown set for --eval ood", ["classify", *FASHION_ARGS, "--eval", "ood"],
     f"{D}/MNIST/raw/t10k-images-idx3-ubyte is truncated: expected 7840 values, found 100",
     then(idx(), truncated_mnist_test_images)),
    ("a CIFAR-100 unknown set of 64 x 32 images for --eval ood", ["classify", "--dataset", "cifar10", "--arch",
                                                                  "resnet32", "--data-root", "d", "--eval", "ood"],
     f"{D}/cifar-100-python/test: found b'data' uint8 (5, 6144), expected uint8 (N, 3072)",
     then(lambda root: fakedata.cifar(root / D, "cifar10"), cifar100_test_of_another_width)),
    ("an MNIST-C file of 32 x 32 images for --eval corrupt", ["classify", "--dataset", "mnist", "--data-root", "d",
                                                              "--set", "dataset.download=false", "--eval", "corrupt"],
     f"{D}/mnist_c/fog/test_images.npy: found images uint8 (10, 32, 32, 1), expected uint8 (N, 28, 28[, 1])",
     then(idx(folder="MNIST"), npy(D / "mnist_c" / "fog" / "test_images.npy", np.zeros((10, 32, 32, 1), np.uint8)),
          npy(D / "mnist_c" / "fog" / "test_labels.npy", np.zeros(10, np.int64)))),
    ("a CIFAR-10-C file of 28 x 28 images for --eval corrupt", ["classify", "--dataset", "cifar10", "--arch",
                                                                "resnet32", "--data-root", "d", "--eval", "corrupt"],
     f"{D}/CIFAR-10-C/fog.npy: found images uint8 (12, 28, 28, 3), expected uint8 (N, 32, 32, 3)",
     then(lambda root: fakedata.cifar(root / D, "cifar10"), npy(D / "CIFAR-10-C" / "fog.npy",
                                                                np.zeros((12, 28, 28, 3), np.uint8)),
          npy(D / "CIFAR-10-C" / "labels.npy", np.zeros(12, np.int64)))),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_bad_data(tmp_path, monkeypatch, capsys, argv, message, setup):
    task, *rest = argv
    check_case(tmp_path, monkeypatch, capsys, [task, "--quiet", "--epochs", "1", *rest], message, setup)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("labels, message", [
    (np.array([0.0, 2.5]), "x: label 2.5 at index 1 is not a whole number"),
    (np.array([1.0, np.nan]), "x: label nan at index 1 is not a whole number"),
    (np.zeros((3, 2), np.int64), r"x: labels are shaped \(3, 2\), expected one label per image \(N,\)"),
    (np.array(["3"]), "x: labels are <U1, expected integers"),
])
def test_labels_that_are_no_class_at_all(labels, message):
    with pytest.raises(HemError, match=f"^{message}$"):
        check_labels(labels, 10, "x")


def test_whole_float_labels_in_range_are_read_as_integers():
    assert check_labels(np.array([0.0, 9.0]), 10, "x").tolist() == [0, 9]


def test_the_unknown_sets_read_before_training_are_the_ones_scored(tmp_path):
    """The preflight reads the real unknown sets once and keeps them: the evaluation scores those,
    even when the file has gone by then (it is not read a second time)."""
    import torch

    from hemcli.data import ArrayData
    from hemcli.engine.device import DeviceManager
    from hemcli.evaluation import suite
    from hemcli.runs.spec import plan_run

    fakedata.write_idx(tmp_path / "MNIST" / "raw", "test", fakedata.pattern(30, 28, 28), np.arange(30) % 10)
    cfg = plan_run("classify", None, {"dataset.name": "fashion-mnist", "dataset.root": str(tmp_path), "eval": ["ood"]},
                   ["evaluation.ood_samples=20", "evaluation.scores=[msp]"], "results").cfg
    images, labels = torch.rand(20, 1, 28, 28), torch.arange(20) % 10
    data = ArrayData(images, labels, images, labels, num_classes=10)
    suite.preflight(cfg, data)
    assert {name: found and found.count for name, found in data.real_unknown.items()} == {
        "omniglot": None, "mnist": 30, "kmnist": None}
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").unlink()
    subject = suite.Subject(torch.nn.Flatten(), data, cfg, DeviceManager.from_config({**cfg, "device": "cpu"}),
                            quiet=True)
    _, details, _ = suite.evaluate(subject, ["ood"])
    assert details["ood"]["sets"]["mnist"] == {"group": "real", "images": 20,
                                               "source": "MNIST/raw/t10k-images-idx3-ubyte.gz"}


def test_a_plain_run_opens_no_evaluation_file(tmp_path):
    """eval: clean (the default) reads nothing for the evaluations: a broken unknown set is left alone."""
    from hemcli.evaluation import suite
    from hemcli.runs.spec import plan_run

    truncated_mnist_test_images(tmp_path)
    cfg = plan_run("classify", None, {"dataset.name": "fashion-mnist", "dataset.root": str(tmp_path / D)}, [],
                   "results").cfg
    data = type("Data", (), {})()
    suite.preflight(cfg, data)
    assert not hasattr(data, "real_unknown")


def test_hem_evaluate_opens_the_unknown_sets_before_measuring_any_result(tmp_path, monkeypatch, capsys):
    """Two finished runs, seed 0's data root whole, seed 1's with a truncated unknown set: refused
    before seed 0 (measured first) is rewritten."""
    import shutil

    from test_bad_input import snapshot

    from hemcli.cli import main

    monkeypatch.chdir(tmp_path)
    idx()(tmp_path)
    truncated_mnist_test_images(tmp_path)
    shutil.copytree(tmp_path / D, tmp_path / "good")
    (tmp_path / "good" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unlink()  # no MNIST: the set is left out
    for seed, root in (("0", "good"), ("1", str(D))):
        assert main(["classify", *FASHION_ARGS, "--data-root", root, "--arch", "mlp", "--epochs", "1", "--seed", seed,
                     "--quiet", "--set", "dataset.limit=20"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert main(["evaluate", "results", "--eval", "ood", "--ood-samples", "5", "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"hem: error: {D}/MNIST/raw/t10k-images-idx3-ubyte is truncated: expected 7840 " \
                                "values, found 100\n"
    assert snapshot(tmp_path) == before
