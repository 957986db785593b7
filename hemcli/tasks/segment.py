"""``hem segment``: train a segmentation network (segmentation_models_pytorch's FPN, paper Table 7,
Appendix B.4.4) with a registry loss applied per pixel, then measure mean IoU on the test split.

Every pixel is a sample of the loss; pixels of the set's ignore index (and the padding) are left out
of the loss and of every metric. Images are padded (bottom and right, masks with the ignore index) to
a multiple of 32 and the predictions cropped back, never resized. ``hem``/``la`` take the training
split's pixel counts per class (``hemcli.data.segmentation.counts``, cached outside the data folder).
The result's metrics: ``mean_iou`` (over the classes present in the prediction or the truth, from one
confusion matrix over the whole test split) and ``pixel_accuracy``; ``result["segmentation"]`` holds
the per-class IoU and the confusion matrix. With ``validate`` each epoch's progress line (and the
history) carries the validation split's mean IoU.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

from hemcli.errors import HemError
from hemcli.recipes import Field


def _datasets():
    from hemcli.data.segmentation import SEGMENTATION_DATASETS
    return list(SEGMENTATION_DATASETS)


def _encoders():
    from hemcli.models.segmentation import ENCODERS
    return list(ENCODERS)


def _archs():
    from hemcli.models.segmentation import SEGMENTATION_ARCHS
    return list(SEGMENTATION_ARCHS)


def schema() -> dict[str, Field]:
    from hemcli.engine.fields import common_fields

    common = common_fields()
    del common["augment"], common["sampling"]  # paired crop and flip below; every pixel counts, no oversampling
    return {
        "task": Field("str", "segment", "the task this recipe is for", ("segment",)),
        "dataset.name": Field("str", "shapes", "segmentation dataset (shapes: generated, offline)", _datasets),
        "dataset.root": Field("str?", None, "data folder (default $HEM_DATA, else ./data)"),
        "dataset.limit": Field("int?", None, "use at most this many images of each split (smoke runs)", minimum=1),
        "dataset.workers": Field("int", 2, "DataLoader workers of a set streamed from disk", minimum=0),
        "model.arch": Field("str", "fpn", "segmentation network of segmentation_models_pytorch", _archs),
        "model.encoder": Field("str", "resnet18", "encoder (the paper: resnet34, efficientnet-b4, densenet201, "
                               "resnext50_32x4d)", _encoders),
        "model.encoder_weights": Field("str?", None, "imagenet: the encoder's ImageNet weights (downloads once); "
                                       "null: random initialisation", ("imagenet",)),
        **common,
        # the offline default (shapes) learns in a few CPU minutes with these; the paper's recipes set SGD
        "optim.lr": Field("float", 0.003, "learning rate", minimum=0),
        # one epoch of warm-up: without it Adam's first steps saturate the softmax and dice stays at
        # "all background" on shapes (measured; ce and hem learn either way)
        "schedule.warmup_epochs": Field("int", 1, common["schedule.warmup_epochs"].help, minimum=0),
        "epochs": Field("int", 6, "training epochs", minimum=1),
        "batch_size": Field("int", 8, "batch size", minimum=1),
        "augment.crop": Field("list[int]", [], "random crop [height, width] of each training image, multiples of "
                              "32 (larger than the image: padded with ignored pixels); []: whole images", minimum=32),
        "augment.flip": Field("bool", True, "random horizontal flip of each training pair"),
        "validate": Field("bool", True, "measure the validation split's mean IoU after every epoch"),
        "eval_batch_size": Field("int", 8, "images per batch when measuring", minimum=1),
    }


def check(cfg: dict) -> None:
    """Every check that needs neither the data nor smp's weights."""
    from hemcli.data.segmentation import segmentation_info
    from hemcli.engine.zero_loss import check_skip_zero_loss
    from hemcli.losses import check_loss
    from hemcli.models.segmentation import STRIDE, check_model

    check_skip_zero_loss(cfg, per_pixel=True)
    info = segmentation_info(cfg["dataset"]["name"])
    check_model(cfg["model"]["arch"], cfg["model"]["encoder"], cfg["model"]["encoder_weights"])
    check_loss(cfg["loss"]["name"], num_classes=info.num_classes, **cfg["loss"]["params"])
    crop = cfg["augment"]["crop"]
    if crop and (len(crop) != 2 or any(side % STRIDE for side in crop)):
        raise HemError(f"augment.crop must be [height, width], both multiples of {STRIDE}, or []; got {crop}")


def _validation_split(info) -> str:
    return "val" if "val" in info.splits and info.test_split != "val" else info.test_split


def setup(cfg: dict):
    """The device, the splits (loaded and checked) and the loss (with the training pixel counts); the
    encoder's weights, where the recipe asks for them, are fetched here. Nothing written."""
    from hemcli.data.segmentation import load_segmentation, pixel_class_counts, segmentation_info
    from hemcli.engine.device import DeviceManager
    from hemcli.losses import build_loss
    from hemcli.models.segmentation import build_segmenter

    dm = DeviceManager.from_config(cfg)
    check(cfg)
    info, root, limit = segmentation_info(cfg["dataset"]["name"]), cfg["dataset"]["root"], cfg["dataset"]["limit"]
    splits = {"train": "train", "test": info.test_split, "val": _validation_split(info) if cfg["validate"] else None}
    data = {role: load_segmentation(info.name, root, split).limited(limit) if split else None
            for role, split in splits.items()}
    counts = pixel_class_counts(info.name, root, data["train"], info.num_classes, info.ignore_index)
    loss_fn = build_loss(cfg["loss"]["name"], num_classes=info.num_classes, class_counts=[max(c, 1) for c in counts],
                         ignore_index=info.ignore_index, **cfg["loss"]["params"])
    if cfg["model"]["encoder_weights"]:  # fetched (downloaded once) now, so a failed download writes nothing
        build_segmenter(cfg["model"]["arch"], cfg["model"]["encoder"], info.num_classes,
                        cfg["model"]["encoder_weights"])
    return dm, info, data, counts, loss_fn


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None) -> dict:
    from hemcli.engine.loop import TrainParts, fit
    from hemcli.models.segmentation import build_segmenter
    from hemcli.runs.condition import same_run

    dm, info, data, counts, loss_fn = prepared or setup(cfg)

    def build(generator: torch.Generator) -> TrainParts:
        net = dm.prepare_model(_normalised(build_segmenter(cfg["model"]["arch"], cfg["model"]["encoder"],
                                                           info.num_classes, cfg["model"]["encoder_weights"]), cfg))

        def measure(trained) -> dict:
            if data["val"] is None:
                return {"val_mean_iou": None}
            return {"val_mean_iou": _summary(confusion(trained, data["val"], info, dm, cfg))["mean_iou"]}

        heading = (f"segment {info.name} {cfg['model']['arch']}-{cfg['model']['encoder']} loss={cfg['loss']['name']} "
                   f"seed={cfg['seed']} on {dm.device}")
        return TrainParts(net, loss_fn, training_batches(data["train"], cfg, dm, generator), heading, measure=measure,
                          shown={"train_pixel_accuracy": "train_pixel_acc", "val_mean_iou": "val_miou"},
                          train_metric="train_pixel_accuracy", ignore_index=info.ignore_index)

    fitted = fit(build, cfg, dm, checkpoint, resume, quiet, same_run)
    return _result(cfg, fitted.parts.net, info, data, counts, dm, fitted.history, fitted.began)


def _normalised(net, cfg: dict):
    """ImageNet weights expect standardised inputs; hem's batches are [0, 1]."""
    from hemcli.models import with_input_normalisation

    return with_input_normalisation(net) if cfg["model"]["encoder_weights"] else net


def training_batches(data, cfg: dict, dm, generator: torch.Generator):
    """Device-resident batches of a set in memory, DataLoader batches of one streamed from disk; each
    batch cropped and flipped alike for images and masks, then padded to the network's stride."""
    from hemcli.engine.batches import LoaderBatches, TensorBatches
    from hemcli.data.segmentation import pad_collate

    transform = functools.partial(_augment, crop=tuple(cfg["augment"]["crop"]) or None, flip=cfg["augment"]["flip"],
                                  ignore_index=data.ignore_index)
    if data.in_memory:
        return TensorBatches(data.images.to(dm.device), data.masks.to(dm.device), cfg["batch_size"], generator,
                             transform=transform)
    return LoaderBatches(data.dataset, cfg["batch_size"], generator, dm.device, cfg["dataset"]["workers"],
                         collate=functools.partial(pad_collate, ignore_index=data.ignore_index), transform=transform)


def _augment(images, masks, generator, crop, flip: bool, ignore_index: int):
    from hemcli.data.segmentation import augment_pairs, pad_to_multiple
    from hemcli.models.segmentation import STRIDE

    if crop is not None or flip:
        images, masks = augment_pairs(images, masks, crop, flip, generator, ignore_index)
    images, masks, _ = pad_to_multiple(images, masks, STRIDE, ignore_index)
    return images, masks


def eval_batches(data, cfg: dict):
    """(uint8 images, masks) of ``data`` in order, ``eval_batch_size`` at a time."""
    from torch.utils.data import DataLoader

    from hemcli.engine.batches import worker_errors_as_one_line
    from hemcli.data.segmentation import pad_collate

    size = cfg["eval_batch_size"]
    if data.in_memory:
        for start in range(0, len(data), size):
            yield data.images[start:start + size], data.masks[start:start + size]
        return
    yield from worker_errors_as_one_line(DataLoader(
        data.dataset, batch_size=size, num_workers=cfg["dataset"]["workers"],
        collate_fn=functools.partial(pad_collate, ignore_index=data.ignore_index)))


@torch.no_grad()
def confusion(net, data, info, dm, cfg: dict) -> torch.Tensor:
    """The (C, C) confusion matrix of ``net`` over all of ``data``: images padded to the stride, the
    predictions cropped back to the images' size."""
    from hemcli.engine.batches import to_unit
    from hemcli.data.segmentation import crop_to, pad_to_multiple
    from hemcli.metrics import confusion_matrix
    from hemcli.models.segmentation import STRIDE

    net.eval()
    total = torch.zeros(info.num_classes, info.num_classes, dtype=torch.int64, device=dm.device)
    for images, masks in eval_batches(data, cfg):
        images, masks = images.to(dm.device, non_blocking=True), masks.to(dm.device, non_blocking=True)
        padded, _, size = pad_to_multiple(to_unit(images), None, STRIDE)
        with dm.autocast():
            logits = net(dm.prepare_input(padded))
        total += confusion_matrix(crop_to(logits, size).argmax(1), masks, info.num_classes, info.ignore_index)
    return total.cpu()


def _summary(matrix: torch.Tensor) -> dict:
    from hemcli.metrics import iou_per_class, mean_iou_from_confusion, pixel_accuracy

    return {"mean_iou": mean_iou_from_confusion(matrix), "pixel_accuracy": pixel_accuracy(matrix),
            "per_class_iou": iou_per_class(matrix)}


def _result(cfg: dict, net, info, data, counts, dm, history, began: float) -> dict:
    import segmentation_models_pytorch as smp

    from hemcli.models import count_parameters
    from hemcli.runs.record import build_result, environment

    tick = time.perf_counter()
    matrix = confusion(net, data["test"], info, dm, cfg)
    summary = _summary(matrix)
    metrics = {"mean_iou": summary["mean_iou"], "pixel_accuracy": summary["pixel_accuracy"]}
    env = {**environment(dm.describe()), "segmentation_models_pytorch": smp.__version__,
           "parameters": count_parameters(net), "train_size": len(data["train"]), "test_size": len(data["test"]),
           "test_split": info.test_split, "class_pixel_counts": counts}
    timings = {"total_seconds": time.perf_counter() - began, "train_seconds": sum(h["seconds"] for h in history),
               "evaluation_seconds": time.perf_counter() - tick}
    detail = {"classes": list(info.class_names), "ignore_index": info.ignore_index,
              "per_class_iou": dict(zip(info.class_names, summary["per_class_iou"])),
              "confusion_matrix": matrix.tolist()}
    return {**build_result(cfg, metrics, history, env, timings), "segmentation": detail}
