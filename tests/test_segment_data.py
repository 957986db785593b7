"""The segmentation data layer: the registry, the generated shapes, the four real layouts on small
files written in their formats, padding, paired augmentation and the cached class counts."""
import pickle

import numpy as np
import pytest
import torch

from conftest import needs_shared
from fakeseg import ade20k_tree, camvid_tree, cityscapes_tree, pattern, sbd_tree, write_png
from hemcli.data import DATASETS
from hemcli.data.segmentation import counts as segmentation_counts
from hemcli.data.segmentation import (SEGMENTATION_DATASETS, SegmentationData, SegmentationInfo, _registry,
                                      augment_pairs, crop_to, load_segmentation, pad_collate, pad_to_multiple,
                                      pixel_class_counts, segmentation_info)
from hemcli.data.segmentation.shapes import make_shapes
from hemcli.errors import HemError


@pytest.fixture(autouse=True)
def hem_cache(tmp_path, monkeypatch):
    """Every test caches under its own tmp folder, never in ~/.cache."""
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---- registry --------------------------------------------------------------------------------------

def test_registry_records_and_names():
    assert list(SEGMENTATION_DATASETS) == ["shapes", "camvid", "cityscapes", "sbd", "ade20k"]
    expected = {"shapes": (4, 255, True), "camvid": (11, 11, True), "cityscapes": (19, 255, False),
                "sbd": (21, 255, False), "ade20k": (150, 255, False)}
    for name, (classes, ignore, in_memory) in expected.items():
        info = segmentation_info(name)
        assert (info.num_classes, info.ignore_index, info.in_memory) == (classes, ignore, in_memory)
        assert len(info.class_names) == classes and info.test_split in info.splits
    ade = segmentation_info("ade20k").class_names
    assert (ade[0], ade[44], ade[149]) == ("wall", "chest of drawers", "flag")
    assert not set(SEGMENTATION_DATASETS) & set(DATASETS)  # a registry of its own
    with pytest.raises(HemError, match="unknown segmentation dataset 'voc'; valid choices: ade20k, camvid, "
                                       "cityscapes, sbd, shapes"):
        segmentation_info("voc")
    with pytest.raises(HemError, match="unknown camvid split 'training'; valid choices: test, train, val"):
        load_segmentation("camvid", None, "training")


def test_duplicate_name_raises():
    info = segmentation_info("shapes")
    with pytest.raises(ValueError, match="'shapes' registered twice"):
        _registry(info, info)
    with pytest.raises(ValueError, match="class names or splits do not match"):
        SegmentationInfo("x", info.loader, 5, 255, ("a",), True, "")


# ---- shapes ----------------------------------------------------------------------------------------

def test_shapes_deterministic_per_seed_every_class_present():
    images, masks = make_shapes(32, seed=3)
    again, again_masks = make_shapes(32, seed=3)
    other, _ = make_shapes(32, seed=4)
    assert torch.equal(images, again) and torch.equal(masks, again_masks) and not torch.equal(images, other)
    assert images.dtype == torch.uint8 and images.shape == (32, 3, 64, 64)
    assert masks.dtype == torch.int64 and masks.shape == (32, 64, 64)
    assert set(masks.unique().tolist()) == {0, 1, 2, 3, 255}
    # a one-pixel ignored frame, nothing ignored inside it
    assert (masks[:, 0] == 255).all() and (masks[:, :, -1] == 255).all() and (masks[:, 1:-1, 1:-1] != 255).all()
    for split, n in (("train", 512), ("test", 128)):
        data = load_segmentation("shapes", None, split)
        assert len(data) == n and data.in_memory and data.num_classes == 4
        assert torch.bincount(data.masks[data.masks != 255], minlength=4).min() > 0.02 * data.masks.numel()


def test_shapes_colour_carries_the_class_but_is_noisy():
    images, masks = make_shapes(64, seed=0, border=0)
    red = images[:, 0].float()
    circle, rectangle = red[masks == 1], red[masks == 2]
    assert circle.mean() > rectangle.mean() + 80  # circles are reddish, rectangles greenish
    assert circle.std() > 10  # jitter and noise: no class is one colour


# ---- CamVid ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("below", ["", "CamVid"])
def test_camvid_loads_what_was_written(tmp_path, below):
    written = camvid_tree(tmp_path / below if below else tmp_path)
    for split, pairs in written.items():
        data = load_segmentation("camvid", str(tmp_path), split)
        assert (data.num_classes, data.ignore_index, data.in_memory) == (11, 11, True)
        assert data.images.dtype == torch.uint8 and data.images.shape == (len(pairs), 3, 8, 12)
        assert data.masks.dtype == torch.int64 and data.masks.shape == (len(pairs), 8, 12)
        for i, (name, image, label) in enumerate(sorted(pairs, key=lambda p: p[0])):
            assert torch.equal(data.images[i], torch.from_numpy(image).permute(2, 0, 1))
            assert torch.equal(data.masks[i], torch.from_numpy(label).long())
            assert data.files[i].name == name and data.files[i].parent.name == f"{split}annot"


def test_camvid_missing_folder_names_layout_and_flag(tmp_path):
    with pytest.raises(HemError, match=rf"camvid not found in {tmp_path}: expected the SegNet layout train/, "
                                       r"trainannot/.* or in .*CamVid \(pass the folder with --data-root\)"):
        load_segmentation("camvid", str(tmp_path), "train")


def test_camvid_unpaired_files_named(tmp_path):
    written = camvid_tree(tmp_path)
    name = written["train"][1][0]
    (tmp_path / "trainannot" / name).unlink()
    with pytest.raises(HemError, match=rf"{tmp_path}/train/{name} has no label: expected .*trainannot/{name}"):
        load_segmentation("camvid", str(tmp_path), "train")
    write_png(tmp_path / "valannot" / "stray.png", np.zeros((8, 12), np.uint8))
    with pytest.raises(HemError, match=r"valannot/stray.png has no image: expected .*/val/stray.png"):
        load_segmentation("camvid", str(tmp_path), "val")


def test_camvid_bad_sizes_and_values_named(tmp_path):
    written = camvid_tree(tmp_path)
    name = written["train"][2][0]
    write_png(tmp_path / "trainannot" / name, np.zeros((8, 10), np.uint8))
    with pytest.raises(HemError, match=rf"trainannot/{name} is 10x8 but its image .*train/{name} is 12x8"):
        load_segmentation("camvid", str(tmp_path), "train")
    label = np.full((8, 12), 11, np.uint8)
    label[3, 4] = 12
    write_png(tmp_path / "trainannot" / name, label)
    with pytest.raises(HemError, match=rf"trainannot/{name}: label value 12 is outside the classes 0..10 "
                                       r"and not the ignore index 11"):
        load_segmentation("camvid", str(tmp_path), "train")
    write_png(tmp_path / "trainannot" / name, np.zeros((8, 12, 3), np.uint8))
    with pytest.raises(HemError, match=rf"trainannot/{name} is a RGB image; a label image must have one channel"):
        load_segmentation("camvid", str(tmp_path), "train")
    write_png(tmp_path / "test" / written["test"][1][0], pattern(9, 12, 3))
    write_png(tmp_path / "testannot" / written["test"][1][0], np.zeros((9, 12), np.uint8))
    with pytest.raises(HemError, match=r"test/0001TP_200001.png is 12x9, the images before it 12x8"):
        load_segmentation("camvid", str(tmp_path), "test")


# ---- Cityscapes ------------------------------------------------------------------------------------

def test_cityscapes_label_ids_become_train_ids(tmp_path):
    # checked by hand against cityscapesscripts' labels.py: unlabeled 0 -> 255, road 7 -> 0,
    # sidewalk 8 -> 1, parking 9 -> 255, building 11 -> 2, guard rail 14 -> 255, pole 17 -> 5,
    # sky 23 -> 10, person 24 -> 11, car 26 -> 13, caravan 29 -> 255, train 31 -> 16, bicycle 33 -> 18
    ids = np.array([[0, 7, 8, 9, 11, 14, 17], [23, 24, 26, 29, 31, 33, 6]], np.uint8)
    train_ids = [[255, 0, 1, 255, 2, 255, 5], [10, 11, 13, 255, 16, 18, 255]]
    written = cityscapes_tree(tmp_path / "cityscapes", "val", ids=ids)
    data = load_segmentation("cityscapes", str(tmp_path), "val")
    assert (data.num_classes, data.ignore_index, data.in_memory, len(data)) == (19, 255, False, 2)
    for i, (image_path, label_path, image) in enumerate(written):
        got_image, got_mask = data.dataset[i]
        assert torch.equal(got_image, torch.from_numpy(image).permute(2, 0, 1)) and got_image.dtype == torch.uint8
        assert got_mask.dtype == torch.int64 and got_mask.tolist() == train_ids
        assert data.files[i] == label_path
    images, masks = data.as_tensors()
    assert images.shape == (2, 3, 2, 7) and masks[1].tolist() == train_ids


def test_cityscapes_bad_input_named(tmp_path):
    written = cityscapes_tree(tmp_path, "train")
    written[1][1].unlink()
    with pytest.raises(HemError, match=r"leftImg8bit/train/bochum/bochum_000001_000002_leftImg8bit.png has no "
                                       r"label: expected .*gtFine/train/bochum/bochum_000001_000002_gtFine_labelIds"):
        load_segmentation("cityscapes", str(tmp_path), "train")
    with pytest.raises(HemError, match=r"leftImg8bit/val is missing"):
        load_segmentation("cityscapes", str(tmp_path), "val")
    # sizes and values are checked when an item is read
    write_png(written[1][1], np.full((6, 10), 40, np.uint8))
    data = load_segmentation("cityscapes", str(tmp_path), "train")
    with pytest.raises(HemError, match=r"bochum_000001_000002_gtFine_labelIds.png: label value 40 is not a "
                                       r"Cityscapes label id \(0..33\)"):
        data.dataset[1]
    write_png(written[0][1], np.zeros((5, 10), np.uint8))
    with pytest.raises(HemError, match=r"aachen_000000_000019_gtFine_labelIds.png is 10x5 but its image "
                                       r".*aachen_000000_000019_leftImg8bit.png is 10x6"):
        data.dataset[0]


# ---- SBD -------------------------------------------------------------------------------------------

def test_sbd_reads_gtcls_segmentation(tmp_path):
    masks = {"2008_000002": np.array([[0, 1, 20], [15, 255, 3]], np.uint8),
             "2008_000003": np.array([[5, 5, 5], [0, 0, 7]], np.uint8)}
    colours = sbd_tree(tmp_path, masks, size=(3, 2))
    data = load_segmentation("sbd", str(tmp_path), "train")
    assert (data.num_classes, data.ignore_index, len(data)) == (21, 255, 2)
    for i, (image_id, mask) in enumerate(masks.items()):
        image, got = data.dataset[i]
        assert got.tolist() == mask.tolist() and image.shape == (3, 2, 3)
        assert (image.float().mean((1, 2)) - torch.tensor(colours[image_id], dtype=torch.float)).abs().max() < 4
    assert data.dataset.mask(1).tolist() == masks["2008_000003"].tolist()


def test_sbd_bad_input_named(tmp_path):
    sbd_tree(tmp_path, {"a": np.zeros((2, 3), np.uint8), "b": np.full((2, 3), 21, np.uint8)})
    with pytest.raises(HemError, match=r"val.txt is missing; it lists the ids of SBD's val split"):
        load_segmentation("sbd", str(tmp_path), "val")
    data = load_segmentation("sbd", str(tmp_path), "train")
    with pytest.raises(HemError, match=r"cls/b.mat: label value 21 is outside the classes 0..20 and not the "
                                       r"ignore index 255"):
        data.dataset[1]
    (tmp_path / "cls" / "a.mat").write_bytes(b"not a mat file")
    with pytest.raises(HemError, match=r"cannot read GTcls.Segmentation from .*cls/a.mat"):
        data.dataset[0]
    (tmp_path / "cls" / "a.mat").unlink()
    with pytest.raises(HemError, match=r"img/a.jpg has no label: expected .*cls/a.mat"):
        load_segmentation("sbd", str(tmp_path), "train")
    (tmp_path / "img" / "b.jpg").unlink()
    (tmp_path / "train.txt").write_text("b\n")
    with pytest.raises(HemError, match=r"train.txt:1 names b, but .*img/b.jpg is missing"):
        load_segmentation("sbd", str(tmp_path), "train")


# ---- ADE20k ----------------------------------------------------------------------------------------

def test_ade20k_shifts_labels_and_ignores_other(tmp_path):
    raw = np.array([[0, 1, 2], [150, 75, 0]], np.uint8)
    ade20k_tree(tmp_path, {"ADE_val_00000001": raw}, folder="validation")
    data = load_segmentation("ade20k", str(tmp_path), "val")
    assert (data.num_classes, data.ignore_index) == (150, 255)
    image, mask = data.dataset[0]
    assert mask.tolist() == [[255, 0, 1], [149, 74, 255]] and image.shape == (3, 2, 3)
    # the dataset folder itself is accepted as the root too
    assert len(load_segmentation("ade20k", str(tmp_path / "ADEChallengeData2016"), "val")) == 1


def test_ade20k_bad_input_named(tmp_path):
    base = ade20k_tree(tmp_path, {"ADE_train_00000001": np.full((2, 3), 151, np.uint8)})
    data = load_segmentation("ade20k", str(tmp_path), "train")
    with pytest.raises(HemError, match=r"ADE_train_00000001.png: label value 151 is outside ADE20k's raw labels "
                                       r"0..150"):
        data.dataset[0]
    write_png(base / "annotations" / "training" / "ADE_train_00000002.png", np.zeros((2, 3), np.uint8))
    with pytest.raises(HemError, match=r"annotations/training/ADE_train_00000002.png has no image: expected "
                                       r".*images/training/ADE_train_00000002.jpg"):
        load_segmentation("ade20k", str(tmp_path), "train")
    with pytest.raises(HemError, match=r"ade20k not found in .*: expected images/\{training,validation\}"):
        load_segmentation("ade20k", str(tmp_path / "elsewhere"), "train")


# ---- padding and augmentation ----------------------------------------------------------------------

def test_pad_and_crop_round_trip():
    images = torch.randint(0, 256, (2, 3, 45, 70), dtype=torch.uint8)
    masks = torch.randint(0, 11, (2, 45, 70))
    padded, padded_masks, size = pad_to_multiple(images, masks, 32, ignore_index=11)
    assert padded.shape == (2, 3, 64, 96) and padded_masks.shape == (2, 64, 96) and size == (45, 70)
    assert (padded[:, :, 45:] == 0).all() and (padded[..., 70:] == 0).all()
    assert (padded_masks[:, 45:] == 11).all() and (padded_masks[:, :, 70:] == 11).all()
    assert torch.equal(crop_to(padded, size), images) and torch.equal(crop_to(padded_masks, size), masks)
    logits = torch.randn(2, 5, 64, 96)
    assert crop_to(logits, size).shape == (2, 5, 45, 70)
    same, same_masks, _ = pad_to_multiple(padded, padded_masks, 32, ignore_index=11)
    assert same is padded and same_masks is padded_masks
    assert pad_to_multiple(images, None)[1] is None
    with pytest.raises(TypeError, match="needs ignore_index"):
        pad_to_multiple(images, masks)


def encoded_pair(n=6, height=20, width=30):
    """Images whose red channel is 10 * (mask + 1) and green channel the column, so both the mask
    alignment and the flip can be read back from the pixels."""
    masks = torch.randint(0, 5, (n, height, width))
    images = torch.zeros(n, 3, height, width, dtype=torch.uint8)
    images[:, 0] = (10 * (masks + 1)).to(torch.uint8)
    images[:, 1] = torch.arange(width, dtype=torch.uint8) + 100
    return images, masks


@pytest.mark.parametrize("crop", [(12, 16), (28, 40), None])
def test_augment_keeps_image_and_mask_aligned(crop):
    images, masks = encoded_pair()
    out, out_masks = augment_pairs(images, masks, crop, True, torch.Generator().manual_seed(1), ignore_index=255)
    height, width = crop or (20, 30)
    assert out.shape == (6, 3, height, width) and out_masks.shape == (6, height, width)
    real = out_masks != 255
    assert torch.equal(out[:, 0][real], (10 * (out_masks[real] + 1)).to(torch.uint8))
    assert (out[:, 0][~real] == 0).all()  # padding: image 0 where the mask is ignored
    # every row of a crop runs over consecutive columns, forwards or mirrored, and both occur
    columns = out[:, 1].long()
    steps = {int(d) for d in (columns[:, :, 1:] - columns[:, :, :-1])[real[:, :, 1:] & real[:, :, :-1]].unique()}
    assert steps == {1, -1}
    again = augment_pairs(images, masks, crop, True, torch.Generator().manual_seed(1), ignore_index=255)
    assert torch.equal(again[0], out) and torch.equal(again[1], out_masks)


def test_augment_without_crop_or_flip_is_identity_and_crops_vary():
    images, masks = encoded_pair()
    out, out_masks = augment_pairs(images, masks, None, False, torch.Generator().manual_seed(0), 255)
    assert torch.equal(out, images) and torch.equal(out_masks, masks)
    _, cropped = augment_pairs(images, masks, (20, 10), False, torch.Generator().manual_seed(0), 255)
    offsets = {next(x for x in range(21) if torch.equal(masks[i, :, x:x + 10], cropped[i])) for i in range(6)}
    assert len(offsets) > 1


def test_pad_collate_pads_to_the_largest():
    batch = [(torch.ones(3, 4, 5, dtype=torch.uint8), torch.zeros(4, 5, dtype=torch.int64)),
             (torch.ones(3, 6, 3, dtype=torch.uint8), torch.ones(6, 3, dtype=torch.int64))]
    images, masks = pad_collate(batch, ignore_index=255)
    assert images.shape == (2, 3, 6, 5) and masks.shape == (2, 6, 5)
    assert masks[0, 4:].eq(255).all() and masks[1, :, 3:].eq(255).all() and images[1, :, :, 3:].eq(0).all()


# ---- class counts ----------------------------------------------------------------------------------

def test_class_counts_equal_bincount_and_are_cached(tmp_path, hem_cache, monkeypatch):
    written = camvid_tree(tmp_path / "CamVid")
    data = load_segmentation("camvid", str(tmp_path), "train")
    expected = torch.bincount(data.masks[data.masks != 11], minlength=11).tolist()
    assert pixel_class_counts("camvid", str(tmp_path), data, 11, 11) == expected
    [cached] = (hem_cache / "segmentation").glob("camvid-*.json")

    def must_not_count(*args):
        raise AssertionError("counted again instead of reading the cache")

    with monkeypatch.context() as patch:
        patch.setattr(segmentation_counts, "count_pixels", must_not_count)
        assert pixel_class_counts("camvid", str(tmp_path), data, 11, 11) == expected
    # a changed label file is a new key, so it is counted again
    name = written["train"][0][0]
    write_png(tmp_path / "CamVid" / "trainannot" / name, np.zeros((8, 12), np.uint8))
    changed = load_segmentation("camvid", str(tmp_path), "train")
    counts = pixel_class_counts("camvid", str(tmp_path), changed, 11, 11)
    assert counts == torch.bincount(changed.masks[changed.masks != 11], minlength=11).tolist() != expected
    assert len(list((hem_cache / "segmentation").glob("camvid-*.json"))) == 2 and cached.exists()


def test_class_counts_of_streamed_and_generated_sets(tmp_path):
    ids = np.array([[7, 7, 8], [26, 0, 33]], np.uint8)
    cityscapes_tree(tmp_path, "train", ids=ids)
    data = load_segmentation("cityscapes", str(tmp_path), "train")
    counts = pixel_class_counts("cityscapes", str(tmp_path), data, 19, 255)
    assert counts[0] == 4 and counts[1] == 2 and counts[13] == 2 and counts[18] == 2 and sum(counts) == 10
    shapes = load_segmentation("shapes", None, "test")
    expected = torch.bincount(shapes.masks[shapes.masks != 255], minlength=4).tolist()
    assert pixel_class_counts("shapes", None, shapes, 4, 255) == expected
    assert pixel_class_counts("shapes", None, shapes, 4, 255) == expected


def test_read_only_cache_warns_once_and_still_counts(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HEM_CACHE", str(blocker))
    data = SegmentationData(3, 255, torch.zeros(2, 3, 2, 2, dtype=torch.uint8),
                            torch.tensor([[[0, 1], [2, 255]], [[1, 1], [255, 255]]]))
    for _ in range(2):
        assert pixel_class_counts("tiny", None, data, 3, 255) == [1, 3, 1]
    assert capsys.readouterr().err.count("hem: warning: cannot write the class-count cache") == 1
    assert blocker.read_text() == ""


# ---- SegmentationData ------------------------------------------------------------------------------

def test_streamed_as_tensors_and_limited(tmp_path):
    ade20k_tree(tmp_path, {f"ADE_train_{i:08d}": np.full((4, 6), i, np.uint8) for i in range(1, 6)})
    data = load_segmentation("ade20k", str(tmp_path), "train")
    images, masks = data.as_tensors()
    assert images.shape == (5, 3, 4, 6) and [int(m[0, 0]) for m in masks] == [0, 1, 2, 3, 4]
    with pytest.raises(HemError, match=r"5 images of 6x4 take .* GiB as tensors"):
        data.as_tensors(max_bytes=100)
    small = data.limited(2)
    assert len(small) == 2 and set(small.files) < set(data.files) and small.limited(1).whole is data
    # a limited part counts the whole split's pixels, as classify's limited sets keep their class counts
    assert pixel_class_counts("ade20k", str(tmp_path), small, 150, 255)[:5] == [24] * 5
    assert [int(small.dataset.mask(i)[0, 0]) for i in range(2)] == [int(f.stem[-1]) - 1 for f in small.files]
    assert data.limited(None) is data and data.limited(10) is data
    # DataLoader workers receive the dataset pickled
    copy = pickle.loads(pickle.dumps(data.dataset))
    assert torch.equal(copy[3][1], data.dataset[3][1])
    shapes = load_segmentation("shapes", None, "test").limited(3)
    assert shapes.images.shape == (3, 3, 64, 64) and shapes.masks.shape == (3, 64, 64)


# ---- the real CamVid (../shared/data/camvid_half) --------------------------------------------------

def test_real_camvid_half():
    root = needs_shared("camvid_half", "CamVid")
    sizes = {}
    for split, count in (("train", 367), ("val", 101), ("test", 233)):
        data = load_segmentation("camvid", str(root.parent), split)
        assert data.images.shape == (count, 3, 180, 240) and data.masks.shape == (count, 180, 240)
        sizes[split] = len(data)
        values = set(data.masks.unique().tolist())
        assert values <= set(range(12)) and 11 in values
    assert sizes == {"train": 367, "val": 101, "test": 233}
    direct = load_segmentation("camvid", str(root), "val")  # the folder holding train/ itself
    assert len(direct) == 101 and direct.num_classes == 11 and direct.ignore_index == 11
