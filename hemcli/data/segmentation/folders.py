"""Readers of the four real segmentation layouts (nothing is downloaded). ``root`` is ``--data-root``
(else ``$HEM_DATA``, else ``./data``), and each set is also found one folder further down, under the
name its archive extracts to:

- CamVid, the SegNet tutorial's layout: ``train/``, ``trainannot/``, ``val/``, ``valannot/``, ``test/``,
  ``testannot/`` in ``root`` or ``root/CamVid``; an image and its label share a file name. Labels
  0-10, 11 = void (ignored). Read whole into memory at load, every file checked.
- Cityscapes, torchvision's layout: ``leftImg8bit/{split}/{city}/*_leftImg8bit.png`` and
  ``gtFine/{split}/{city}/*_gtFine_labelIds.png`` in ``root`` or ``root/cityscapes``; the label ids
  become the 19 train ids of the official table (cityscapesscripts' labels.py), every other id 255.
- SBD, torchvision's SBDataset layout: ``img/<id>.jpg``, ``cls/<id>.mat`` (``GTcls.Segmentation``)
  and ``{train,val,train_noval}.txt`` in ``root`` or ``root/benchmark_RELEASE/dataset``.
- ADE20k, the scene-parsing benchmark's ``ADEChallengeData2016/{images,annotations}/{training,
  validation}/`` (splits ``train`` and ``val``). Its raw label 0 is "other objects", none of the 150
  classes: it becomes the ignore index 255, and raw 1..150 become classes 0..149.

The streamed sets (all but CamVid) are paired at load, from the file listing only; an item's sizes
and label values are checked when it is read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hemcli.data.segmentation.files import (LabelTable, PairedFiles, check_split, files_in, find_base,
                                            identity_table, pair_by_key, read_pair, read_png_mask, read_sbd_mask)
from hemcli.data.segmentation.records import SegmentationData
from hemcli.errors import HemError

CAMVID_SPLITS = ("train", "val", "test")
CITYSCAPES_SPLITS = ("train", "val", "test")
SBD_SPLITS = ("train", "val", "train_noval")
ADE20K_SPLITS = {"train": "training", "val": "validation"}

CAMVID_LAYOUT = "the SegNet layout train/, trainannot/, val/, valannot/, test/, testannot/"
CITYSCAPES_LAYOUT = "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png"
SBD_LAYOUT = "img/<id>.jpg, cls/<id>.mat and train.txt, val.txt"
ADE20K_LAYOUT = "images/{training,validation}/*.jpg and annotations/{training,validation}/*.png"

# labelId -> trainId of the 19 evaluated classes; every other id of 0..33 is ignored (255)
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def cityscapes_table() -> LabelTable:
    lut = np.full(256, -1, dtype=np.int64)
    lut[:34] = 255
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    return LabelTable(lut, "not a Cityscapes label id (0..33); is this a *_gtFine_labelIds.png?")


def ade20k_table() -> LabelTable:
    lut = np.full(256, -1, dtype=np.int64)
    lut[0] = 255  # "other objects": outside the 150 classes, so ignored
    lut[1:151] = np.arange(150)
    return LabelTable(lut, "outside ADE20k's raw labels 0..150")


def _streamed(pairs: list[tuple[Path, Path]], read_mask, table: LabelTable, num_classes: int) -> SegmentationData:
    return SegmentationData(num_classes, 255, dataset=PairedFiles(pairs, read_mask, table),
                            files=tuple(label for _, label in pairs))


# ---- CamVid ----------------------------------------------------------------------------------------

def read_camvid(root: str | None, split: str) -> SegmentationData:
    """CamVid ``split`` in memory: images uint8 (N, 3, H, W), masks int64 (N, H, W), 11 classes, void 11."""
    check_split("camvid", split, CAMVID_SPLITS)
    base = find_base(root, "camvid", (split, f"{split}annot"), ("CamVid",), CAMVID_LAYOUT)
    image_dir, label_dir = base / split, base / f"{split}annot"
    images = {path.name: path for path in files_in(image_dir, (".png",))}
    labels = {path.name: path for path in files_in(label_dir, (".png",))}
    pairs = pair_by_key(images, labels, lambda p: label_dir / p.name, lambda p: image_dir / p.name, image_dir)
    table = identity_table(11, 11)
    images_out, masks_out = _stack(pairs, lambda pair: read_pair(*pair, read_png_mask, table))
    return SegmentationData(11, 11, images=images_out, masks=masks_out, files=tuple(label for _, label in pairs))


def _stack(pairs, read) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair read into one uint8 and one int64 tensor; all images must be of one size."""
    images = masks = None
    for i, pair in enumerate(pairs):
        image, mask = read(pair)
        if images is None:
            images = torch.empty((len(pairs), *image.shape), dtype=torch.uint8)
            masks = torch.empty((len(pairs), *mask.shape), dtype=torch.int64)
        elif image.shape != tuple(images.shape[1:]):
            raise HemError(f"{pair[0]} is {image.shape[2]}x{image.shape[1]}, the images before it "
                           f"{images.shape[3]}x{images.shape[2]}; a set held in memory needs one size")
        images[i], masks[i] = torch.from_numpy(image), torch.from_numpy(mask)
    return images, masks


# ---- Cityscapes ------------------------------------------------------------------------------------

def read_cityscapes(root: str | None, split: str) -> SegmentationData:
    """Cityscapes ``split`` streamed: 19 train ids, everything else 255."""
    check_split("cityscapes", split, CITYSCAPES_SPLITS)
    base = find_base(root, "cityscapes", ("leftImg8bit", "gtFine"), ("cityscapes",), CITYSCAPES_LAYOUT)
    image_dir, label_dir = base / "leftImg8bit" / split, base / "gtFine" / split
    image_end, label_end = "_leftImg8bit.png", "_gtFine_labelIds.png"

    def keyed(folder: Path, end: str) -> dict[str, Path]:
        # "<city>/<city>_<seq>_<frame>": the file's path below the split folder, less its ending
        return {str(path.relative_to(folder))[:-len(end)]: path
                for path in files_in(folder, (end.lower(),), recursive=True)}

    pairs = pair_by_key(keyed(image_dir, image_end), keyed(label_dir, label_end),
                        lambda p: label_dir / (str(p.relative_to(image_dir))[:-len(image_end)] + label_end),
                        lambda p: image_dir / (str(p.relative_to(label_dir))[:-len(label_end)] + image_end),
                        image_dir)
    return _streamed(pairs, read_png_mask, cityscapes_table(), 19)


# ---- SBD -------------------------------------------------------------------------------------------

def read_sbd(root: str | None, split: str) -> SegmentationData:
    """SBD ``split`` (the ids of ``<split>.txt``) streamed: 21 classes (0 background), 255 ignored."""
    check_split("sbd", split, SBD_SPLITS)
    base = find_base(root, "sbd", ("img", "cls"), ("benchmark_RELEASE/dataset",), SBD_LAYOUT)
    listing = base / f"{split}.txt"
    if not listing.is_file():
        raise HemError(f"{listing} is missing; it lists the ids of SBD's {split} split")
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        image, label = base / "img" / f"{line.strip()}.jpg", base / "cls" / f"{line.strip()}.mat"
        if not image.is_file():
            raise HemError(f"{listing}:{number} names {line.strip()}, but {image} is missing")
        if not label.is_file():
            raise HemError(f"{image} has no label: expected {label}")
        pairs.append((image, label))
    if not pairs:
        raise HemError(f"{listing} lists no images")
    return _streamed(pairs, read_sbd_mask, identity_table(21, 255), 21)


# ---- ADE20k ----------------------------------------------------------------------------------------

def read_ade20k(root: str | None, split: str) -> SegmentationData:
    """ADE20k (SceneParsing, 150 classes) ``split`` streamed: raw 0 -> 255 (ignored), raw k -> k - 1."""
    check_split("ade20k", split, ADE20K_SPLITS)
    base = find_base(root, "ade20k", ("images", "annotations"), ("ADEChallengeData2016",), ADE20K_LAYOUT)
    image_dir = base / "images" / ADE20K_SPLITS[split]
    label_dir = base / "annotations" / ADE20K_SPLITS[split]
    images = {path.stem: path for path in files_in(image_dir, (".jpg",))}
    labels = {path.stem: path for path in files_in(label_dir, (".png",))}
    pairs = pair_by_key(images, labels, lambda p: label_dir / f"{p.stem}.png", lambda p: image_dir / f"{p.stem}.jpg",
                        image_dir)
    return _streamed(pairs, read_png_mask, ade20k_table(), 150)
