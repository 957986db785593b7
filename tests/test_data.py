import gzip

import numpy as np
import pytest
import torch

from conftest import needs_shared
from hemcli.data import load_dataset, load_digits
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
    with pytest.raises(HemError, match="valid choices: digits, digits-heldout, fashion-mnist, mnist"):
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
    with pytest.raises(HemError, match="could not download FashionMNIST into .*nodata .*put the IDX files in"):
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
