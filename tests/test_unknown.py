"""Unknown-class sets: the synthetic recipes' documented statistics, the real sets' file layouts
(written small into tmp_path), the held-out split, and the real data when it is present."""
import gzip
import io
import math
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import needs_shared
from hemcli.data import unknown_real
from hemcli.data.unknown import (HELD_OUT, REAL_SETS, REAL_UNKNOWN, SYNTHETIC_SETS, blob_sigma,
                                 blobs_from_bits, find_real_unknown, held_out_split, load_real_unknown,
                                 real_unknown_source, synthetic_set)
from hemcli.errors import HemError


def smooth_images(n, channels, size, seed=0):
    """Test-like images in [0, 1]: low-frequency patterns, so permuting or re-phasing changes them."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, channels, 4, 4), generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


# ---- synthetic sets ---------------------------------------------------------------------------------

def test_uniform_statistics():
    x = synthetic_set("uniform", torch.zeros(3, 1, 8, 8), n=2000)
    assert x.shape == (2000, 1, 8, 8) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() < 1
    # U[0,1): mean 1/2, variance 1/12; 128 000 values give standard errors ~0.0008 and ~0.0002
    assert abs(x.mean().item() - 0.5) < 0.005
    assert abs(x.var().item() - 1 / 12) < 0.002


def test_blob_sigma_scales_oe_value():
    assert blob_sigma(32) == 1.5 and blob_sigma(64) == 3.0 and blob_sigma(28) == pytest.approx(1.3125)


def test_blobs_match_outlier_exposure_recipe():
    """OE: gblur(bits HxWx3, sigma=1.5, multichannel=False) (3-D blur, scikit-image defaults), < 0.75 -> 0."""
    filters = pytest.importorskip("skimage.filters")
    bits = (torch.rand((3, 3, 32, 32), generator=torch.Generator().manual_seed(1)) < 0.7).float()
    ours = blobs_from_bits(bits)
    for image, mine in zip(bits.numpy(), ours.numpy()):
        theirs = filters.gaussian(image.transpose(1, 2, 0), sigma=1.5, channel_axis=None,
                                  preserve_range=True).astype(np.float32)
        theirs[theirs < 0.75] = 0.0
        np.testing.assert_allclose(mine, theirs.transpose(2, 0, 1), atol=1e-6)


def folded_sq_weights(n, sigma):
    """Sum of squared weights of a 1-D Gaussian (cut at 4 sigma) for each of n positions, with the
    weights beyond an edge moved onto the edge pixel (mode "nearest")."""
    radius = int(4 * sigma + 0.5)
    kernel = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    weights = np.zeros((n, n))
    for i in range(n):
        for offset, w in zip(range(-radius, radius + 1), kernel):
            weights[i, min(max(i + offset, 0), n - 1)] += w
    return (weights ** 2).sum(axis=1)


def expected_zero_share(size, channels):
    """A blurred pixel is a weighted sum of Bernoulli(0.7): mean 0.7, variance 0.21 * sum(w^2);
    by the normal approximation it is zeroed (below 0.75) with probability Phi(0.05 / sd)."""
    spatial = folded_sq_weights(size, 1.5 * size / 32)
    across = folded_sq_weights(channels, 1.5) if channels > 1 else np.ones(1)
    var = 0.21 * across[:, None, None] * spatial[None, :, None] * spatial[None, None, :]
    phi = np.vectorize(lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2))))
    return phi(0.05 / np.sqrt(var)).mean()


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_blobs_statistics(channels, size):
    x = synthetic_set("blobs", torch.zeros(2, channels, size, size), n=300, seed=3)
    assert x.shape == (300, channels, size, size)
    zero = x == 0
    assert x.max() <= 1 and torch.all(x[~zero] >= 0.75)
    # 0.682 (grey 28) and 0.796 (RGB 32); the Bernoulli sums are a little skewed (measured 0.664, 0.790)
    assert abs(zero.float().mean().item() - expected_zero_share(size, channels)) < 0.03


def test_permuted_keeps_each_images_pixels():
    source = smooth_images(5, 1, 8)
    x = synthetic_set("permuted", source, n=5, seed=2)
    # n == N: every test image used exactly once, so the sorted rows match as multisets
    rows = lambda t: sorted(map(tuple, t.flatten(1).sort(dim=1).values.tolist()))  # noqa: E731
    assert rows(x) == rows(source)
    assert not any(torch.equal(x[i], source[j]) for i in range(5) for j in range(5))


def test_permuted_rgb_moves_whole_pixels():
    source = smooth_images(1, 3, 6)
    x = synthetic_set("permuted", source, n=3, seed=0)  # n > N: cycles over the one image
    triples = lambda image: sorted(map(tuple, image.flatten(1).T.tolist()))  # noqa: E731
    assert all(triples(image) == triples(source[0]) for image in x)
    assert not torch.equal(x[0], x[1])


@pytest.mark.parametrize("channels", [1, 3])
def test_phase_keeps_amplitude_and_mean(channels):
    source = smooth_images(4, channels, 16, seed=5)
    x = synthetic_set("phase", source, n=4, seed=1)
    assert x.shape == source.shape and x.dtype == torch.float32
    amp_x, amp_s = torch.fft.fft2(x.double()).abs(), torch.fft.fft2(source.double()).abs()
    matched = []
    for a in amp_x:
        dist = (amp_s - a).flatten(1).abs().amax(dim=1)
        matched.append(int(dist.argmin()))
        assert torch.allclose(a, amp_s[matched[-1]], atol=1e-3)
        image, origin = x[len(matched) - 1], source[matched[-1]]
        assert torch.allclose(image.mean(dim=(1, 2)), origin.mean(dim=(1, 2)), atol=1e-5)
        assert (image - origin).abs().max() > 0.1
    assert sorted(matched) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", SYNTHETIC_SETS)
def test_seeded(name):
    source = smooth_images(6, 3, 10)
    a, b = synthetic_set(name, source, n=4, seed=7), synthetic_set(name, source, n=4, seed=7)
    assert torch.equal(a, b) and not torch.equal(a, synthetic_set(name, source, n=4, seed=8))


def test_seeded_sets_leave_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    synthetic_set("blobs", torch.zeros(1, 1, 8, 8), n=2)
    assert torch.equal(torch.rand(3), expected)


def test_non_square_shape_follows_test_images():
    source = torch.rand(3, 3, 10, 12)
    for name in SYNTHETIC_SETS:
        assert synthetic_set(name, source, n=5).shape == (5, 3, 10, 12)


def test_synthetic_bad_input():
    with pytest.raises(HemError, match="unknown unknown set 'gauss'; valid choices: blobs, permuted, phase, uniform"):
        synthetic_set("gauss", torch.zeros(1, 1, 8, 8))
    with pytest.raises(HemError, match="positive integer"):
        synthetic_set("uniform", torch.zeros(1, 1, 8, 8), n=0)
    with pytest.raises(HemError, match=r"\(N, C, H, W\)"):
        synthetic_set("uniform", torch.zeros(8, 8))


# ---- held-out classes -------------------------------------------------------------------------------

def test_held_out_split_by_hand():
    x = torch.arange(6.0).reshape(6, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 0, 2, 1])
    known_x, known_y, unknown_x = held_out_split(x, y, (2, 0))
    assert known_x.flatten().tolist() == [0, 2, 3, 4]
    assert known_y.tolist() == [1, 0, 1, 0] and known_y.dtype == torch.int64  # 2 -> 0, 0 -> 1
    assert unknown_x.flatten().tolist() == [1, 5]


@pytest.mark.parametrize("known, message", [((0, 0), "distinct"), ((), "not empty"),
                                            ((0, 7), r"\[7\] do not occur"), ((0, 1, 2), "nothing is held out")])
def test_held_out_split_errors(known, message):
    with pytest.raises(HemError, match=message):
        held_out_split(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]), known)


# ---- real sets: registry and absence ---------------------------------------------------------------

def test_registry():
    assert REAL_UNKNOWN["mnist"] == ("omniglot", "fashion-mnist", "kmnist")
    assert REAL_UNKNOWN["cifar100"] == ("textures", "svhn", "cifar10")
    assert REAL_UNKNOWN["imagenet"] == REAL_UNKNOWN["tin"] == ("textures", "inaturalist", "imagenet-o")
    assert REAL_UNKNOWN["digits"] == () and REAL_UNKNOWN["digits-heldout"] == (HELD_OUT,)
    named = {name for names in REAL_UNKNOWN.values() for name in names}
    assert named - {HELD_OUT} == set(REAL_SETS)


def test_absent_sets_are_none(tmp_path):
    for name in REAL_SETS:
        assert load_real_unknown(name, tmp_path, 28, 1) is None
        assert real_unknown_source(name, tmp_path) is None
    assert load_real_unknown("mnist", tmp_path / "missing", 28, 1) is None


def test_real_bad_names(tmp_path):
    with pytest.raises(HemError, match="unknown real unknown set 'lsun'; valid choices: cifar10, cifar100"):
        load_real_unknown("lsun", tmp_path, 28, 1)
    with pytest.raises(HemError, match="not read from files"):
        load_real_unknown(HELD_OUT, tmp_path, 28, 1)


# ---- real sets: array layouts -----------------------------------------------------------------------

def pattern(n, *shape):
    """uint8 images whose values say where they come from (image index, position)."""
    return (np.arange(n * int(np.prod(shape))).reshape(n, *shape) * 7 % 251).astype(np.uint8)


def write_idx(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.array([2051, *array.shape], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"),
                                          ("kmnist", "KMNIST")])
def test_idx_test_images(tmp_path, name, folder):
    images = pattern(12, 28, 28)
    write_idx(tmp_path / folder / "raw" / "t10k-images-idx3-ubyte.gz", images)
    assert real_unknown_source(name, tmp_path) == f"{folder}/raw/t10k-images-idx3-ubyte.gz"
    every = load_real_unknown(name, tmp_path, 28, 1, n=100)
    assert every.shape == (12, 1, 28, 28) and every.dtype == torch.float32
    assert torch.equal(every[:, 0] * 255, torch.from_numpy(images).float())  # all, in file order
    some = load_real_unknown(name, tmp_path, 28, 1, n=5, seed=1)
    assert some.shape == (5, 1, 28, 28)
    rows = [int(torch.argmin((every - image).abs().flatten(1).amax(1))) for image in some]
    assert torch.equal(some, every[rows]) and rows == sorted(set(rows))  # a subset, no repeats
    assert torch.equal(some, load_real_unknown(name, tmp_path, 28, 1, n=5, seed=1))
    assert not torch.equal(some, load_real_unknown(name, tmp_path, 28, 1, n=5, seed=2))
    rgb = load_real_unknown(name, tmp_path, 32, 3, n=3)
    assert rgb.shape == (3, 3, 32, 32) and torch.equal(rgb[:, 0], rgb[:, 2])


def test_kmnist_npz(tmp_path):
    (tmp_path / "KMNIST").mkdir()
    images = pattern(7, 28, 28)
    np.savez_compressed(tmp_path / "KMNIST" / "kmnist-test-imgs.npz", arr_0=images)
    x = load_real_unknown("kmnist", tmp_path, 28, 1)
    assert real_unknown_source("kmnist", tmp_path) == "KMNIST/kmnist-test-imgs.npz"
    assert torch.equal(x[:, 0] * 255, torch.from_numpy(images).float())
    assert load_real_unknown("kmnist", tmp_path, 14, 1).shape == (7, 1, 14, 14)
    # antialiased 2x downsampling of a constant image keeps the constant
    np.savez_compressed(tmp_path / "KMNIST" / "kmnist-test-imgs.npz", arr_0=np.full((2, 28, 28), 51, np.uint8))
    assert torch.allclose(load_real_unknown("kmnist", tmp_path, 14, 1), torch.full((2, 1, 14, 14), 0.2))


def test_svhn_mat_orientation_and_luma(tmp_path):
    from scipy.io import savemat

    images = pattern(4, 32, 32, 3)  # (N, H, W, C) before SVHN's own (H, W, C, N) order
    images[0] = 0
    images[0, :, :, 0] = 255  # image 0 pure red
    savemat(tmp_path / "test_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": np.ones((4, 1))})
    x = load_real_unknown("svhn", tmp_path, 32, 3)
    assert torch.equal(x * 255, torch.from_numpy(images).permute(0, 3, 1, 2).float())
    grey = load_real_unknown("svhn", tmp_path, 32, 1)
    assert torch.allclose(grey[0], torch.full((1, 32, 32), 0.299))  # ITU-R 601: Y = 0.299 R + ...


@pytest.mark.parametrize("name, relative", [("cifar10", "cifar-10-batches-py/test_batch"),
                                            ("cifar100", "cifar-100-python/test")])
def test_cifar_pickles(tmp_path, name, relative):
    path = tmp_path / relative
    path.parent.mkdir()
    rows = pattern(5, 3072)
    rows[1] = 0
    rows[1, 1024:2048] = 255  # image 1: the green plane full
    path.write_bytes(pickle.dumps({b"data": rows, b"labels": [0] * 5}))
    x = load_real_unknown(name, tmp_path, 32, 3, n=10)
    assert x.shape == (5, 3, 32, 32)
    assert torch.equal(x[1], torch.stack([torch.zeros(32, 32), torch.ones(32, 32), torch.zeros(32, 32)]))
    assert torch.equal(x[3].flatten() * 255, torch.from_numpy(rows[3]).float())  # row-major R, G, B planes


def test_cifar_pickle_cannot_run_code(tmp_path):
    import os

    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir()

    class Evil:
        def __reduce__(self):
            return os.system, ("true",)

    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(HemError, match="refusing to load posix.system|refusing to load nt.system"):
        load_real_unknown("cifar10", tmp_path, 32, 3)


# ---- real sets: image files -------------------------------------------------------------------------

def stroke_png(mode="1", size=105, bar=(40, 65)):
    """An Omniglot-like character: white background, one black vertical bar."""
    image = Image.new("L", (size, size), 255)
    image.paste(0, (bar[0], 10, bar[1], size - 10))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, folder, count):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/", "")
        for i in range(count):
            archive.writestr(f"{folder}/Alphabet/character01/{i:04d}_{i:02d}.png", stroke_png())


def test_omniglot_small_zips_inverted(tmp_path):
    write_zip(tmp_path / "omniglot" / "images_background_small1.zip", "images_background_small1", 3)
    write_zip(tmp_path / "omniglot" / "images_background_small2.zip", "images_background_small2", 4)
    found = find_real_unknown("omniglot", tmp_path)
    assert found.source == "omniglot/images_background_small1.zip+images_background_small2.zip"
    assert found.count == 7
    x = found.load(28, 1)
    assert x.shape == (7, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert x[:, 0, :2, :].max() < 1e-6 and x[:, 0, :, :5].max() < 1e-6  # white background -> 0
    assert torch.all(x[:, 0, 10:18, 13:14] > 0.9)  # the black bar (columns 40-64 of 105) -> ~1
    assert len(found.load(28, 1, n=2)) == 2


def test_omniglot_prefers_evaluation_folder(tmp_path):
    write_zip(tmp_path / "omniglot-py" / "images_background.zip", "images_background", 2)
    assert real_unknown_source("omniglot", tmp_path) == "omniglot-py/images_background.zip"
    folder = tmp_path / "omniglot-py" / "images_evaluation" / "Alphabet" / "character01"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(stroke_png(mode="L"))
    found = find_real_unknown("omniglot", tmp_path)
    assert (found.source, found.count) == ("omniglot-py/images_evaluation", 3)
    assert found.load(28, 3).shape == (3, 3, 28, 28)


def save_image(path, array, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def banded(height, width):
    """RGB uint8 with a white central square and red side bands (to be cropped away)."""
    array = np.zeros((height, width, 3), np.uint8)
    array[..., 0] = 255
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    array[top:top + side, left:left + side] = 255
    return array


@pytest.mark.parametrize("images_dir", ["dtd/images", "dtd/dtd/images"])
def test_textures_center_crop(tmp_path, images_dir):
    for i, (h, w) in enumerate([(20, 40), (30, 18), (16, 16)]):
        save_image(tmp_path / images_dir / f"class{i}" / f"img_{i}.png", banded(h, w), "PNG")
    save_image(tmp_path / images_dir / "class0" / "photo.jpg", np.full((12, 12, 3), 128, np.uint8), "JPEG")
    (tmp_path / images_dir / "class0" / "notes.txt").write_text("not an image")
    assert real_unknown_source("textures", tmp_path) == images_dir
    x = load_real_unknown("textures", tmp_path, 8, 3)
    assert x.shape == (4, 3, 8, 8)
    whites = [i for i in range(4) if torch.allclose(x[i], torch.ones(3, 8, 8))]
    assert len(whites) == 3  # the red bands were cropped off every banded image
    grey = load_real_unknown("textures", tmp_path, 8, 1)
    assert grey.shape == (4, 1, 8, 8) and abs(grey.min().item() - 128 / 255) < 0.03  # the JPEG's grey


def test_only_the_subset_is_decoded(tmp_path, monkeypatch):
    for i in range(6):
        save_image(tmp_path / "imagenet-o" / f"n0000{i}" / f"{i}.jpg", np.full((10, 10, 3), 40 * i, np.uint8), "JPEG")
    decoded = []
    real_pixels = unknown_real._pixels
    monkeypatch.setattr(unknown_real, "_pixels", lambda image: decoded.append(1) or real_pixels(image))
    x = load_real_unknown("imagenet-o", tmp_path, 4, 3, n=2, seed=3)
    assert x.shape == (2, 3, 4, 4) and len(decoded) == 2
    assert torch.equal(x, load_real_unknown("imagenet-o", tmp_path, 4, 3, n=2, seed=3))


def test_inaturalist_prefers_val(tmp_path):
    save_image(tmp_path / "inaturalist" / "train" / "a" / "0.jpg", np.zeros((8, 8, 3), np.uint8), "JPEG")
    assert real_unknown_source("inaturalist", tmp_path) == "inaturalist"
    for i in range(2):
        save_image(tmp_path / "inaturalist" / "val" / "b" / f"{i}.png", np.zeros((8, 8, 3), np.uint8), "PNG")
    found = find_real_unknown("inaturalist", tmp_path)
    assert (found.source, found.count) == ("inaturalist/val", 2)


def test_broken_image_is_one_line_error(tmp_path):
    (tmp_path / "imagenet-o" / "n0").mkdir(parents=True)
    (tmp_path / "imagenet-o" / "n0" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(HemError, match="cannot read the image .*bad.jpg"):
        load_real_unknown("imagenet-o", tmp_path, 8, 3)


def test_bad_request(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", pattern(2, 28, 28))
    with pytest.raises(HemError, match="1 or 3 channels"):
        load_real_unknown("mnist", tmp_path, 28, 2)
    with pytest.raises(HemError, match="image size must be a positive integer"):
        load_real_unknown("mnist", tmp_path, 0, 1)


# ---- the real data ----------------------------------------------------------------------------------

def test_shared_real_unknown_sets():
    root = needs_shared()
    counts = {}
    for name in ("mnist", "kmnist", "omniglot"):
        found = find_real_unknown(name, root)
        if found is None:
            pytest.skip(f"{name} not present under {root}")
        counts[name] = found.count
        x = found.load(28, 1, n=500)
        assert x.shape == (500, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
        corners = x[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.mean() < 0.01  # background is black in all three (a few KMNIST strokes reach a corner)
        if name == "omniglot":
            assert found.source == "omniglot/images_background_small1.zip+images_background_small2.zip"
            assert 0.03 < x.mean() < 0.15  # thin white strokes on black after inversion (measured 0.078)
    assert counts == {"mnist": 10000, "kmnist": 10000, "omniglot": 2720 + 3120}


def test_every_dataset_with_unknown_sets_or_a_corruption_release_is_in_the_registry():
    """The tables are keyed by registry names (TinyImageNet is "tin"): a misspelt key would leave its
    dataset without real unknown sets or its released corruptions, silently."""
    from hemcli.data import DATASETS
    from hemcli.data.corruptions.released import RELEASES

    assert set(REAL_UNKNOWN) <= set(DATASETS) and set(RELEASES) <= set(DATASETS)
