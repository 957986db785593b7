import gzip

import numpy as np
import pytest
import torch

import fakedata
from conftest import needs_shared
from hemcli.cli import main
from hemcli.data import DATASETS, StreamData, limited, load_dataset, load_digits
from hemcli.data.idx import read_idx, read_split
from hemcli.errors import HemError


def write_idx(path, array, magic, compress=False):
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def fake_mnist(root, folder="MNIST", train=True, compress=True, n=6):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if compress else ""
    splits = [("t10k", n)] + ([("train", 2 * n)] if train else [])
    for prefix, count in splits:
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (count, 28, 28)), 2051, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(count) % 10, 2049, compress)
    return raw


@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip(tmp_path, compress):
    raw = fake_mnist(tmp_path, compress=compress)
    x, y = read_split(raw, "test")
    ext = ".gz" if compress else ""
    pixels = read_idx(raw / f"t10k-images-idx3-ubyte{ext}", "images")
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(pixels.copy()).float())
    assert y.tolist() == [0, 1, 2, 3, 4, 5]


def test_torchvision_layout_through_registry(tmp_path):
    fake_mnist(tmp_path, folder="FashionMNIST")
    data = load_dataset("fashion-mnist", str(tmp_path), download=False)
    assert (len(data.train_y), len(data.test_y), data.input_shape) == (12, 6, (1, 28, 28))


def test_bad_magic_and_truncation(tmp_path):
    write_idx(tmp_path / "a", np.zeros((2, 28, 28)), 2049)
    with pytest.raises(HemError, match="bad magic number"):
        read_idx(tmp_path / "a", "images")
    (tmp_path / "b").write_bytes(np.array([2051, 5, 28, 28], dtype=">i4").tobytes() + bytes(100))
    with pytest.raises(HemError, match="truncated: expected 3920 values, found 100"):
        read_idx(tmp_path / "b", "images")


def test_missing_training_files_named(tmp_path):
    fake_mnist(tmp_path, train=False)
    with pytest.raises(HemError, match=r"train split missing in .*MNIST/raw: need train-images-idx3-ubyte\[.gz\]"):
        load_dataset("mnist", str(tmp_path), download=False)


def test_unknown_dataset():
    with pytest.raises(HemError, match="valid choices: cifar10, cifar100, digits, digits-heldout, fashion-mnist, "
                                       "imagenet, imagenet-lt, kmnist, mnist, svhn, tin"):
        load_dataset("cifar11")


def test_digits_split():
    data = load_digits()
    assert (len(data.train_y), len(data.test_y)) == (1437, 360)
    assert data.train_x.min() == 0 and data.train_x.max() == 1 and data.input_shape == (1, 8, 8)
    # stratified: every class keeps 80% (+-1) of its 174-183 images in training
    from sklearn.datasets import load_digits as sk
    totals = np.bincount(sk().target)
    assert np.all(np.abs(np.array(data.class_counts()) - 0.8 * totals) <= 1)
    assert torch.equal(load_digits().test_y, data.test_y)


def test_shared_mnist_test_split():
    """The MNIST test set's class sizes, as published (LeCun et al.): 980, 1135, ..., 1009."""
    x, y = read_split(needs_shared("MNIST", "raw"), "test")
    assert x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_data_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HemError, match=f"data root {tmp_path / 'file'} is not a folder"):
        load_dataset("mnist", str(tmp_path / "file"), download=False)


def test_failed_download_leaves_the_data_root_untouched(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once: offline
    with pytest.raises(HemError, match="could not download FashionMNIST into .*nodata .*put the files at .*nodata/FashionMNIST/raw or"):
        load_dataset("fashion-mnist", str(tmp_path / "nodata"), download=True)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP mirror serving a small fake Fashion-MNIST, with torchvision's checksums set to match."""
    import hashlib
    import http.server
    import threading
    from functools import partial

    import torchvision.datasets as tvd

    served = fake_mnist(tmp_path / "served", folder="FashionMNIST")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    resources = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(served.iterdir())]
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(tvd.FashionMNIST, "resources", resources)
    yield served
    server.shutdown()


def test_download_fills_only_the_missing_files(tmp_path, mirror):
    root = tmp_path / "data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    kept = raw / "t10k-labels-idx1-ubyte.gz"
    kept.write_bytes((mirror / kept.name).read_bytes())
    before = kept.stat().st_mtime_ns
    data = load_dataset("fashion-mnist", str(root), download=True)
    assert (len(data.train_y), len(data.test_y)) == (12, 6)
    assert kept.stat().st_mtime_ns == before  # present files are not replaced
    assert {p.name for p in mirror.iterdir()} <= {p.name for p in raw.iterdir()}


def test_shared_fashion_mnist_statistics():
    """Counts and pixel statistics stated in ../shared/data/README.md."""
    root = needs_shared("FashionMNIST", "raw").parents[1]
    data = load_dataset("fashion-mnist", str(root), download=False)
    assert (len(data.train_y), len(data.test_y)) == (60_000, 10_000)
    assert data.class_counts() == [6000] * 10
    assert data.train_x.mean().item() == pytest.approx(0.2860, abs=5e-5)
    assert data.train_x.std().item() == pytest.approx(0.3530, abs=5e-5)


def test_digits_heldout_trains_on_0_to_5_and_holds_out_every_6_to_9_image():
    from sklearn.datasets import load_digits as sk_digits

    from hemcli.data import load_dataset

    target = sk_digits().target
    data = load_dataset("digits-heldout")
    assert data.num_classes == 6
    assert len(data.train_y) + len(data.test_y) == int((target < 6).sum())
    assert len(data.held_out_x) == int((target >= 6).sum())
    assert set(data.train_y.tolist()) == set(range(6)) == set(data.test_y.tolist())
    # the known classes keep digits' own split: the test images are digits' test images of 0-5
    full = load_dataset("digits")
    assert torch.equal(data.test_x, full.test_x[full.test_y < 6])


# ---- issue 14: the paper's image datasets ---------------------------------------------------------

def test_registry_names_and_shapes():
    shapes = {name: (info.input_shape, info.num_classes) for name, info in DATASETS.items()}
    assert shapes == {
        "digits": ((1, 8, 8), 10), "digits-heldout": ((1, 8, 8), 6), "mnist": ((1, 28, 28), 10),
        "fashion-mnist": ((1, 28, 28), 10), "kmnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10),
        "cifar100": ((3, 32, 32), 100), "svhn": ((3, 32, 32), 10), "tin": ((3, 64, 64), 200),
        "imagenet": ((3, 224, 224), 1000), "imagenet-lt": ((3, 224, 224), 1000)}
    assert [name for name, info in DATASETS.items() if info.streamed] == ["imagenet", "imagenet-lt"]


@pytest.mark.parametrize("name, write, shape", [
    ("cifar10", lambda root: fakedata.cifar(root, "cifar10"), (20, 3, 32, 32)),
    ("cifar100", lambda root: fakedata.cifar(root, "cifar100"), (100, 3, 32, 32)),
    ("svhn", fakedata.svhn, (8, 3, 32, 32)),
    ("tin", fakedata.tin_tree, (6, 3, 64, 64)),
    ("kmnist", lambda root: fakedata.mnist_like(root, "KMNIST"), (20, 1, 28, 28)),
])
def test_in_memory_sets_keep_uint8_training_images_and_float_test_images(tmp_path, name, write, shape):
    write(tmp_path)
    data = load_dataset(name, str(tmp_path), download=False)
    assert tuple(data.train_x.shape) == shape and data.train_x.dtype == torch.uint8
    assert data.test_x.dtype == torch.float32 and 0 <= data.test_x.min() and data.test_x.max() <= 1
    assert data.num_classes == DATASETS[name].num_classes and data.input_shape == DATASETS[name].input_shape


def test_test_images_are_the_files_pixels_over_255(tmp_path):
    fakedata.cifar(tmp_path, "cifar10", test=3)
    data = load_dataset("cifar10", str(tmp_path), download=False)
    rows = fakedata.pattern(3, 3072, seed=9)  # the test batch cifar() wrote
    assert torch.equal(data.test_x.reshape(3, -1), torch.from_numpy(rows).float() / 255)


def test_missing_files_are_downloaded_whole_where_torchvision_can(tmp_path, monkeypatch):
    """torchvision's CIFAR10 (faked: it writes the real files into the folder it is given) runs in a
    temporary folder; its extracted folder is then moved under the data root."""
    import torchvision.datasets as tvd

    calls = []

    def fake_cifar10(root, train, download):
        calls.append((train, download))
        if not (tmp_path / "staged").exists():
            fakedata.cifar(tmp_path / "staged", "cifar10")
        import shutil
        shutil.copytree(tmp_path / "staged" / "cifar-10-batches-py", f"{root}/cifar-10-batches-py", dirs_exist_ok=True)

    monkeypatch.setattr(tvd, "CIFAR10", fake_cifar10)
    data = load_dataset("cifar10", str(tmp_path / "data"), download=True)
    assert calls == [(True, True), (False, True)] and len(data.train_y) == 20
    assert sorted(p.name for p in (tmp_path / "data" / "cifar-10-batches-py").iterdir()) == [
        *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]


def test_a_failed_download_leaves_the_data_root_as_it_was(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(root, **kwargs):
        raise RuntimeError("Error downloading cifar-10-python.tar.gz:\n<urlopen error [Errno -3] no network>")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    (tmp_path / "data").mkdir()
    with pytest.raises(HemError, match=r"could not download CIFAR10 into .*data \(<urlopen error \[Errno -3\] "
                                       r"no network>\); put the files at .*data/cifar-10-batches-py or pass --data-root"):
        load_dataset("cifar10", str(tmp_path / "data"), download=True)
    assert list((tmp_path / "data").iterdir()) == []


def test_limit_takes_a_fixed_subset_and_keeps_the_whole_sets_class_counts(tmp_path):
    fakedata.cifar(tmp_path, "cifar10", per_batch=4, test=6)
    data = load_dataset("cifar10", str(tmp_path), download=False)
    part, again = limited(data, 5), limited(data, 5)
    assert len(part.train_y) == 5 and len(part.test_y) == 5 and torch.equal(part.train_x, again.train_x)
    assert part.class_counts() == data.class_counts() == [2] * 10  # 20 images, labels 0..19 mod 10
    assert limited(data, None) is data and len(limited(data, 50).train_y) == 20
    # a subset of the training rows, in their order
    rows = [int(np.flatnonzero((data.train_x.reshape(20, -1) == x.reshape(1, -1)).all(1))[0]) for x in part.train_x]
    assert rows == sorted(rows) and len(set(rows)) == 5


def test_imagenet_streams_with_the_papers_transforms(tmp_path):
    fakedata.imagenet_tree(tmp_path, per_class=2)
    data = load_dataset("imagenet", str(tmp_path), augment="resized_crop_flip")
    assert isinstance(data, StreamData) and data.num_classes == 2 and data.class_counts() == [2, 2]
    assert data.test_y.tolist() == [0, 0, 1, 1]
    image, label = data.train[3]
    assert image.shape == (3, 224, 224) and label == 1
    assert [type(t).__name__ for t in data.train.transform.transforms][:2] == ["RandomResizedCrop",
                                                                              "RandomHorizontalFlip"]
    plain = load_dataset("imagenet", str(tmp_path), augment="none")
    assert [type(t).__name__ for t in plain.train.transform.transforms][:2] == ["Resize", "CenterCrop"]
    part = limited(data, 3)
    assert len(part.train) == 3 and part.class_counts() == [2, 2] and len(part.test_y) == 3


def test_hem_datasets_lists_files_and_where(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for line in ("| tin ", "tiny-imagenet-200/{wnids.txt,train/<wnid>/images/*.JPEG,val/images/*.JPEG,"
                 "val/val_annotations.txt}", "| imagenet ", "disk (streamed)", "cifar-10-batches-py/{data_batch_1..5,"
                 "test_batch}", "{train,test}_32x32.mat", "KMNIST/kmnist-{train,test}-{imgs,labels}.npz"):
        assert line in out
    assert len(out.splitlines()) == 2 + len(DATASETS)
