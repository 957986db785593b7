"""Corruption test sets: MNIST-C's 15 greyscale corruptions (properties worked out by hand from the
parameters in the module doc), imagecorruptions for RGB, the released layouts, the cache and the
parallel generation."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

import hemcli.data.corruptions as corruptions
from hemcli.data.corruptions import cache, corruption_names, corruption_sets, generate, released
from hemcli.data.corruptions.mnist_c import MNIST_C_NAMES, corrupt_grey, zigzag_points
from hemcli.data.corruptions.rgb import corrupt_rgb
from hemcli.errors import HemError

DETERMINISTIC = {"scale", "brightness", "stripe", "canny_edges"}  # no random draw at all


@pytest.fixture(autouse=True)
def hem_cache(tmp_path, monkeypatch):
    """Every test caches under its own tmp folder, never in ~/.cache."""
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def digit(side=28, shift=(2, -3)):
    """A digit-like uint8 image: a ring and a bar, off centre so that every geometric change shows."""
    r, c = np.mgrid[0:side, 0:side] * (28 / side)
    ring = np.abs(np.hypot(r - 12 - shift[0], c - 13 - shift[1]) - 6) < 1.6
    bar = (np.abs(c - 16) < 1.5) & (r > 6) & (r < 24)
    return ((ring | bar) * 230 + 10).astype(np.uint8)


def blob(side=28, top=11, left=11, size=6, value=255):
    img = np.zeros((side, side), np.uint8)
    img[top:top + size, left:left + size] = value
    return img


def rng(seed=0):
    return np.random.default_rng(seed)


def centre_of_mass(img):
    r, c = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    w = img.astype(float)
    return np.array([(w * r).sum(), (w * c).sum()]) / w.sum()


def batch(side, n=3):
    return np.stack([np.roll(digit(side), k, axis=1) for k in range(n)])[:, None]


# ---- the greyscale list -----------------------------------------------------------------------


def test_names_are_mnist_c_and_imagecorruptions_lists():
    import imagecorruptions

    assert corruption_names(1) == MNIST_C_NAMES == (
        "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
        "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges")
    assert corruption_names(3) == tuple(imagecorruptions.get_corruption_names("all"))
    assert len(corruption_names(3)) == 19
    with pytest.raises(HemError, match="1 or 3 channels, not 2"):
        corruption_names(2)


@pytest.mark.parametrize("side", [28, 8])
@pytest.mark.parametrize("name", MNIST_C_NAMES)
def test_grey_corruption_contract(name, side):
    images = batch(side)
    out = generate.corrupt_batch(images, np.arange(3), name, 1, seed=5)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert (out != images).any()
    assert np.array_equal(out, generate.corrupt_batch(images, np.arange(3), name, 1, seed=5))
    if name not in DETERMINISTIC:
        assert not np.array_equal(out, generate.corrupt_batch(images, np.arange(3), name, 1, seed=6))


def test_generated_sets_are_float_in_unit_range_with_labels():
    x = torch.from_numpy(batch(28, 2)).float() / 255
    y = torch.tensor([3, 7])
    source, sets = corruption_sets("mnist", x, y, None, seed=0, workers=1)
    assert source == "generated:mnist-c"
    assert sets.keys == [(name, 1) for name in MNIST_C_NAMES] and sets.corruptions == MNIST_C_NAMES
    for s in sets:
        assert s.images.dtype == torch.float32 and s.images.shape == (2, 1, 28, 28)
        assert 0 <= s.images.min() and s.images.max() <= 1
        assert s.labels.dtype == torch.int64 and s.labels.tolist() == [3, 7]


def test_brightness_adds_half_to_every_pixel():
    img = np.array([[0, 100], [200, 255]], np.uint8).repeat(14, 0).repeat(14, 1)
    out = corrupt_grey(img, "brightness", rng()).astype(int)
    # clip(v / 255 + 0.5) * 255, truncated to uint8 as imagecorruptions does: v + 127 up to 255
    assert np.abs(out - np.minimum(255, img.astype(int) + 127)).max() <= 1
    assert abs(out.mean() - (127 + 227 + 255 + 255) / 4) <= 1  # the mean rises from 138.75 to 216


@pytest.mark.parametrize("side", [28, 8])
def test_translate_moves_centre_of_mass_by_3_pixels_scaled(side):
    img = blob(side, top=side // 2 - 2, left=side // 2 - 2, size=max(2, side // 5))
    out = corrupt_grey(img, "translate", rng(1))
    shift = centre_of_mass(out) - centre_of_mass(img)
    assert np.allclose(np.abs(shift), 3 * side / 28, atol=0.02)
    assert abs(int(out.sum()) - int(img.sum())) <= img.size  # nothing left the image, up to rounding


def bar_angle(img):
    """Orientation of a bar from its second moments, radians, image rows pointing down."""
    r, c = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    w = img.astype(float) / img.sum()
    mr, mc = (w * r).sum(), (w * c).sum()
    mu_rr, mu_cc, mu_rc = (w * (r - mr) ** 2).sum(), (w * (c - mc) ** 2).sum(), (w * (r - mr) * (c - mc)).sum()
    return 0.5 * math.atan2(2 * mu_rc, mu_cc - mu_rr)


def test_rotate_turns_a_bar_by_0_4_rad_and_keeps_its_mass():
    img = np.zeros((28, 28), np.uint8)
    img[13:15, 6:22] = 255
    for seed in range(4):
        out = corrupt_grey(img, "rotate", rng(seed))
        assert abs(abs(bar_angle(out)) - 0.4) < 0.03
        assert abs(out.sum() / img.sum() - 1) < 0.05


def test_shear_tilts_a_vertical_bar_by_sin_0_4():
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 13:15] = 255
    out = corrupt_grey(img, "shear", rng(2)).astype(float)
    rows = [r for r in range(28) if out[r].sum() > 200]
    cols = [(out[r] * np.arange(28)).sum() / out[r].sum() for r in rows]
    slope = np.polyfit(rows, cols, 1)[0]
    # columns move by sin(0.4) = 0.389 per row (skimage's 2019 shear); tan(0.4) would be 0.423
    assert abs(abs(slope) - math.sin(0.4)) < 0.015


def test_scale_samples_the_image_at_centre_plus_offset_over_0_7():
    img = blob(28, top=7, left=7, size=14)
    out = corrupt_grey(img, "scale", rng())
    # a box is separable, so its bilinear resampling is the outer product of 1-D linear ones
    box = img[13] / 255.0
    line = np.interp(13.5 + (np.arange(28) - 13.5) / 0.7, np.arange(28), box, left=0, right=0)
    assert np.abs(out.astype(int) - np.rint(np.outer(line, line) * 255)).max() <= 1
    assert abs(out.sum() / img.sum() - 0.49) < 0.03  # the area shrinks by about 0.7^2


def test_impulse_noise_sets_17_percent_of_pixels_to_0_or_255():
    flat = np.full((28, 28), 128, np.uint8)
    outs = np.stack([corrupt_grey(flat, "impulse_noise", rng(s)) for s in range(20)])
    hit = (outs == 0) | (outs == 255)
    assert abs(hit.mean() - 0.17) < 0.015
    assert abs((outs == 255).sum() / hit.sum() - 0.5) < 0.05
    assert (outs[~hit] == 128).all()


def test_shot_noise_is_poisson_with_3_photons():
    flat = np.full((28, 28), 128, np.uint8)
    outs = np.stack([corrupt_grey(flat, "shot_noise", rng(s)) for s in range(20)])
    assert set(np.unique(outs).tolist()) <= {0, 85, 170, 255}  # k / 3 clipped at 1
    lam = 3 * 128 / 255  # E[min(P, 3)] / 3 for P ~ Poisson(lam)
    expected = sum(min(k, 3) / 3 * math.exp(-lam) * lam**k / math.factorial(k) for k in range(40))
    assert abs(outs.mean() / 255 - expected) < 0.01


def test_stripe_inverts_the_outer_quarters_exactly():
    img = digit(28)
    out = corrupt_grey(img, "stripe", rng())
    inverted = np.r_[0:7, 21:28]
    assert np.array_equal(out[:, inverted], 255 - img[:, inverted])
    assert np.array_equal(out[:, 7:21], img[:, 7:21])
    assert np.array_equal(corrupt_grey(blob(8), "stripe", rng())[:, [0, 1, 6, 7]], np.full((8, 4), 255))


def test_canny_edges_are_binary_and_trace_a_square():
    out = corrupt_grey(blob(28, top=8, left=8, size=12), "canny_edges", rng())
    assert set(np.unique(out).tolist()) == {0, 255}
    assert out[11:17, 11:17].max() == 0 and out[:5].max() == 0  # inside and far outside: no edge
    assert out[6:11, 8:20].max() == 255  # the top side


def test_dotted_line_only_brightens_in_2_pixel_dashes():
    black = np.zeros((28, 28), np.uint8)
    for seed in range(5):
        out = corrupt_grey(black, "dotted_line", rng(seed))
        off = (np.arange(28) // 2) % 2 == 0
        assert out[:, off].max() == 0
        # every other column is within 0.5 rows of the line: 1 + log(1 - 0.5 / 2.3) = 0.755 or more
        on = np.flatnonzero(~off)[:-1]  # column 27 is past the segment's end (ceil(27) excluded)
        assert out[:, on].max(0).min() >= 0.755 * 255 - 1 and out[:, 27].max() == 0
        assert (corrupt_grey(digit(28), "dotted_line", rng(seed)) >= digit(28)).all()


def test_zigzag_corners_and_columns():
    cols, rows = zigzag_points(10, 10)
    assert np.allclose(cols, [2, 4, 8, 12, 16, 20, 24, 25]) and np.allclose(rows, [10, 12, 8, 12, 8, 12, 8, 9])
    out = corrupt_grey(np.zeros((28, 28), np.uint8), "zigzag", rng(3))
    assert out.max() == 255
    touched = np.flatnonzero(out.max(0))
    assert touched.min() >= 2 and touched.max() <= 24


def test_fog_blends_towards_a_layer_in_0_1():
    img = digit(28)
    x = img / 255.0
    out = corrupt_grey(img, "fog", rng(4)) / 255.0
    top = x.max()
    layer = (out * (top + 3) / top - x) / 3  # out = (x + 3 F) m / (m + 3), m = max(x), F in [0, 1]
    assert layer.min() > -0.01 and layer.max() < 1.01 and layer.std() > 0.02


def test_spatter_adds_only_mud_of_intensity_63():
    outs = np.stack([corrupt_grey(np.zeros((28, 28), np.uint8), "spatter", rng(s)) for s in range(10)])
    mud = outs[outs > 0]
    assert mud.size > 0 and mud.min() >= math.floor(0.8 * 63) and mud.max() <= 63


@pytest.mark.parametrize("name", ["glass_blur", "motion_blur"])
def test_blurs_keep_the_mass_of_a_centred_blob(name):
    img = blob(28, top=10, left=10, size=8)
    out = corrupt_grey(img, name, rng(7))
    assert abs(out.sum() / img.sum() - 1) < 0.05


def test_motion_blur_smears_to_one_side_by_the_half_gaussian_mean():
    img = blob(28, top=11, left=14, size=4)
    for seed in range(3):
        shift = centre_of_mass(corrupt_grey(img, "motion_blur", rng(seed))) - centre_of_mass(img)
        # weights exp(-i^2 / 18), i >= 0, sampled along the angle: mass moves back by 3 sqrt(2/pi)
        assert abs(np.hypot(*shift) - 3 * math.sqrt(2 / math.pi)) < 0.35
        assert shift[1] < 0 and abs(shift[0]) <= abs(shift[1]) + 0.2  # within 45 degrees of -x


def test_eight_by_eight_digits_through_the_public_call():
    from hemcli.data import load_digits

    data = load_digits()
    source, sets = corruption_sets("digits", data.test_x, data.test_y, None, samples=4, workers=1)
    assert source == "generated:mnist-c" and len(sets) == 15
    assert all(s.images.shape == (4, 1, 8, 8) and s.images.dtype == torch.float32 for s in sets)


# ---- RGB --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gaussian_noise", "contrast", "motion_blur"])
def test_rgb_32_matches_the_library_seeded_by_numpy(name):
    from imagecorruptions import corrupt

    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = corrupt_rgb(img, name, 3, seed=123)
    np.random.seed(123)
    assert np.array_equal(out, corrupt(img, corruption_name=name, severity=3))
    assert (out != img).any()


@pytest.mark.parametrize("name", ["shot_noise", "impulse_noise", "contrast"])
def test_rgb_16_is_padded_by_reflection_and_cropped_back(name):
    from imagecorruptions import corrupt

    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = corrupt_rgb(img, name, 2, seed=9)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8 and (out != img).any()
    assert np.array_equal(out, corrupt_rgb(img, name, 2, seed=9))
    np.random.seed(9)
    extra = {"seed": 9} if name == "impulse_noise" else {}
    reference = corrupt(np.pad(img, ((8, 8), (8, 8), (0, 0)), mode="reflect"), corruption_name=name,
                        severity=2, **extra)
    assert np.array_equal(out, reference[8:24, 8:24])


def test_rgb_sets_through_the_public_call(monkeypatch):
    monkeypatch.setattr(corruptions, "RGB_NAMES", ("gaussian_noise", "contrast"))
    x = torch.rand(3, 3, 16, 16)
    source, sets = corruption_sets("cifar10", x, torch.tensor([0, 1, 2]), None, samples=2, workers=1)
    assert source == "generated:imagecorruptions"
    assert sets.keys == [(n, s) for n in ("gaussian_noise", "contrast") for s in range(1, 6)]
    spread = [float((s.images - 0.5).abs().mean()) for s in sets if s.corruption == "contrast"]
    assert spread == sorted(spread, reverse=True)  # contrast factor 0.4 .. 0.05: ever flatter
    assert all(s.images.shape == (2, 3, 16, 16) for s in sets)


# ---- released sets ----------------------------------------------------------------------------


def test_mnist_c_release_skips_identity_and_takes_a_seeded_subset(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (3, 5, 28, 28, 1), dtype=np.uint8)
    for name, images in zip(("identity", "stripe", "shot_noise"), data):
        (tmp_path / "mnist_c" / name).mkdir(parents=True)
        np.save(tmp_path / "mnist_c" / name / "test_images.npy", images)
        np.save(tmp_path / "mnist_c" / name / "test_labels.npy", np.arange(5) + 1)
    x, y = torch.zeros(5, 1, 28, 28), torch.arange(5)
    source, sets = corruption_sets("mnist", x, y, tmp_path)
    assert source == f"released:{tmp_path / 'mnist_c'}"
    assert sets.keys == [("shot_noise", 1), ("stripe", 1)]  # MNIST-C's order; identity skipped
    assert torch.equal(sets[0].images * 255, torch.from_numpy(data[2]).permute(0, 3, 1, 2).float())
    assert sets[0].labels.tolist() == [1, 2, 3, 4, 5]
    _, sets = corruption_sets("mnist", x, y, tmp_path, samples=3, seed=4)
    rows = released.subset(5, 3, 4)
    assert len(rows) == 3 and sets[1].labels.tolist() == (rows + 1).tolist()
    assert torch.equal(sets[1].images[:, 0] * 255, torch.from_numpy(data[1][rows, :, :, 0]).float())


def cifar_c(root, folder="CIFAR-10-C", n=4, severities=2):
    """A corruption file whose row k is filled with the value k, labels 10 + k."""
    (root / folder).mkdir(parents=True)
    rows = np.arange(severities * n, dtype=np.uint8)
    np.save(root / folder / "fog.npy", np.broadcast_to(rows[:, None, None, None], (len(rows), 32, 32, 3)).copy())
    np.save(root / folder / "labels.npy", 10 + rows.astype(np.int64))


@pytest.mark.parametrize("dataset, folder", [("cifar10", "CIFAR-10-C"), ("cifar100", "CIFAR-100-C")])
def test_cifar_c_severity_s_is_rows_s_minus_1_times_n(tmp_path, dataset, folder):
    cifar_c(tmp_path, folder)
    source, sets = corruption_sets(dataset, torch.zeros(4, 3, 32, 32), torch.arange(4), tmp_path)
    assert source == f"released:{tmp_path / folder}" and sets.keys == [("fog", 1), ("fog", 2)]
    second = sets[1]
    assert second.images.shape == (4, 3, 32, 32)
    assert (second.images[:, 0, 0, 0] * 255).round().tolist() == [4, 5, 6, 7]
    assert second.labels.tolist() == [14, 15, 16, 17]


def test_cifar_c_rows_not_a_multiple_of_the_test_set(tmp_path):
    cifar_c(tmp_path, n=4, severities=2)
    with pytest.raises(HemError, match="fog.npy has 8 images, not 1 to 5 severities of the 3 test images"):
        corruption_sets("cifar10", torch.zeros(3, 3, 32, 32), torch.arange(3), tmp_path)


def tiny_c(root):
    colours = {"n01": (200, 30, 30), "n02": (30, 200, 30)}
    for severity in ("1", "3"):
        for wnid, colour in colours.items():
            folder = root / "Tiny-ImageNet-C" / "fog" / severity / wnid
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (64, 64), colour).save(folder / f"{wnid}_{i}.JPEG", quality=95)
    return colours


def test_tiny_imagenet_c_folders_labelled_by_wnid_and_resized(tmp_path):
    colours = tiny_c(tmp_path)
    source, sets = corruption_sets("tin", torch.zeros(2, 3, 16, 16), torch.arange(2), tmp_path,
                                   class_index={"n01": 7, "n02": 3})
    assert source == f"released:{tmp_path / 'Tiny-ImageNet-C'}" and sets.keys == [("fog", 1), ("fog", 3)]
    s = sets[1]
    assert s.images.shape == (4, 3, 16, 16) and s.labels.tolist() == [7, 7, 3, 3]
    assert torch.allclose(s.images[0, :, 5, 5] * 255, torch.tensor(colours["n01"]).float(), atol=3)
    with pytest.raises(HemError, match="needs the training set's wnid -> label map"):
        corruption_sets("tin", torch.zeros(2, 3, 16, 16), torch.arange(2), tmp_path)
    _, sets = corruption_sets("tin", torch.zeros(2, 3, 16, 16), torch.arange(2), tmp_path,
                              class_index={"n01": 0})
    with pytest.raises(HemError, match="class folder 'n02' is not a class of the training set"):
        sets[0]


def test_no_release_for_fashion_mnist_even_with_mnist_c_present(tmp_path):
    (tmp_path / "mnist_c" / "stripe").mkdir(parents=True)
    np.save(tmp_path / "mnist_c" / "stripe" / "test_images.npy", np.zeros((2, 28, 28, 1), np.uint8))
    np.save(tmp_path / "mnist_c" / "stripe" / "test_labels.npy", np.zeros(2, np.int64))
    x = torch.from_numpy(batch(28, 2)).float() / 255
    source, _ = corruption_sets("fashion-mnist", x, torch.arange(2), tmp_path, workers=1)
    assert source == "generated:mnist-c"


# ---- cache ------------------------------------------------------------------------------------


def digits_like(n=3, side=8):
    return torch.from_numpy(batch(side, n)).float() / 255, torch.arange(n)


def fail(*args, **kwargs):
    raise AssertionError("generator called although the sets are cached")


def test_second_call_reads_the_cache(hem_cache, monkeypatch):
    x, y = digits_like()
    calls = []
    record = lambda done, total: calls.append((done, total))  # noqa: E731
    _, first = corruption_sets("digits", x, y, None, seed=1, workers=1, progress=record)
    folders = list((hem_cache / "corruptions" / "digits").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("v1-seed1-nall-")
    assert sorted(p.name for p in folders[0].iterdir()) == sorted(f"{n}-s1.npy" for n in MNIST_C_NAMES)
    assert calls[0] == (0, 15) and calls[-1] == (15, 15)
    monkeypatch.setattr(generate, "corrupt_batch", fail)
    calls.clear()
    _, second = corruption_sets("digits", x, y, None, seed=1, workers=1, progress=record)
    assert calls == [(15, 15)]
    assert all(torch.equal(a.images, b.images) for a, b in zip(first, second))


def test_cache_key_changes_with_seed_samples_and_test_set(hem_cache):
    x, y = digits_like(4)
    x2 = x.clone()
    x2[0, 0, 0, 0] = 1 - x2[0, 0, 0, 0]
    for seed, samples, images in ((0, None, x), (1, None, x), (0, 2, x), (0, 4, x), (0, None, x2)):
        corruption_sets("digits", images, y, None, seed=seed, samples=samples, workers=1)
    keys = sorted(p.name for p in (hem_cache / "corruptions" / "digits").iterdir())
    assert len(keys) == 4  # samples=4 of 4 images is the whole set: the same key as None
    assert sum(k.startswith("v1-seed0-nall-") for k in keys) == 2 and any("-n2-" in k for k in keys)


def test_default_cache_is_home_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HEM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_root() == tmp_path / ".cache" / "hem"


def test_unwritable_cache_warns_once_and_still_generates(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HEM_CACHE", str(blocker))
    x, y = digits_like(2)
    for _ in range(2):
        source, sets = corruption_sets("digits", x, y, None, workers=1)
        assert source == "generated:mnist-c" and sets[0].images.shape == (2, 1, 8, 8)
    assert capsys.readouterr().err.count("hem: warning: cannot write the corruption cache") == 1
    assert blocker.read_text() == ""


def test_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    def broken(handle, array, allow_pickle):
        handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        cache.save(tmp_path / "fog-s1.npy", np.zeros(3, np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_subset_images_are_the_full_runs_images_at_the_same_index():
    x, y = digits_like(6)
    _, full = corruption_sets("digits", x, y, None, workers=1)
    _, part = corruption_sets("digits", x, y, None, samples=3, workers=1)
    rows = released.subset(6, 3, 0)
    assert part[0].labels.tolist() == rows.tolist()
    for a, b in zip(full, part):
        assert torch.equal(a.images[rows], b.images)


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"samples": 0}, "samples must be an integer >= 1"),
    ({"workers": 0}, "workers must be an integer >= 1"),
])
def test_bad_arguments(kwargs, message):
    x, y = digits_like(2)
    with pytest.raises(HemError, match=message):
        corruption_sets("digits", x, y, None, **kwargs)


def test_bad_images_and_dataset_name():
    with pytest.raises(HemError, match=r"need images \(N, 1 or 3, H, W\), got shape \(2, 2, 8, 8\)"):
        corruption_sets("digits", torch.zeros(2, 2, 8, 8), torch.arange(2), None)
    with pytest.raises(HemError, match="cannot name a cache folder"):
        corruption_sets("../x", *digits_like(2), None, workers=1)


@pytest.mark.slow
def test_two_workers_give_exactly_the_arrays_of_one(tmp_path, monkeypatch):
    x, y = digits_like(4)
    _, one = corruption_sets("digits", x, y, None, workers=1)
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "other"))
    _, two = corruption_sets("digits", x, y, None, workers=2)
    assert len(list((tmp_path / "other").rglob("*.npy"))) == 15
    assert all(torch.equal(a.images, b.images) for a, b in zip(one, two))
