"""Semantic segmentation: confusion matrix, per-class IoU, mean IoU and pixel accuracy (the paper's Appendix B.4.2).

Every pixel is a sample; pixels whose target is ``ignore_index`` are left out. Over a whole test set,
sum the per-batch confusion matrices and reduce once at the end (mean IoU is not the mean of the
per-batch mean IoUs)::

    confusion = sum(confusion_matrix(logits.argmax(1), masks, C, ignore_index) for logits, masks in batches)
    mean_iou_from_confusion(confusion), iou_per_class(confusion), pixel_accuracy(confusion)

``mean_iou(predictions, targets, ...)`` does both steps for one set of masks. The confusion matrix
stays on the device of its inputs; the reductions return Python floats, in percent.
"""
from __future__ import annotations

import math

import torch

from hemcli.errors import HemError


def confusion_matrix(predictions, targets, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(C, C) int64 counts on the inputs' device: entry [i, j] = pixels of true class i predicted as j.

    ``predictions`` and ``targets``: integer tensors of the same shape, e.g. (N, H, W); a target equal
    to ``ignore_index`` (which must lie outside [0, C)) drops its pixel. Any other value outside
    [0, C), in either tensor, is a HemError (a ValueError). One ``bincount`` on the device, no loop
    over pixels; the range check (and CUDA's bincount) wait for the device once each.
    """
    predictions, targets = _label_tensors(predictions, targets, num_classes, ignore_index)
    predictions, targets = predictions.reshape(-1).long(), targets.reshape(-1).long()
    valid = targets != ignore_index
    if bool(_out_of_range(predictions, num_classes).any() | (valid & _out_of_range(targets, num_classes)).any()):
        raise HemError(f"predictions and targets must lie in [0, {num_classes - 1}] "
                       f"(targets may also be the ignore index {ignore_index})")
    # Pixel (truth i, prediction j) lands in bin i * C + j, i.e. row i, column j. Ignored pixels go to
    # one extra bin that is dropped, which spares copying out the valid pixels (boolean indexing).
    bins = torch.where(valid, targets * num_classes + predictions, num_classes ** 2)
    counts = torch.bincount(bins, minlength=num_classes ** 2 + 1)[:-1]
    return counts.view(num_classes, num_classes)


def iou_per_class(confusion) -> list[float | None]:
    """IoU_c = TP_c / (TP_c + FP_c + FN_c) in percent, from a (C, C) confusion matrix (rows = truth);
    None for a class that is neither in the truth nor in the predictions (0 / 0)."""
    tp, union = _true_positives_and_unions(confusion)
    return [None if u == 0 else 100.0 * t / u for t, u in zip(tp, union)]


def mean_iou_from_confusion(confusion) -> float:
    """Mean IoU (%) over the classes whose IoU is defined (absent from both truth and prediction: left
    out); nan when none is."""
    defined = [iou for iou in iou_per_class(confusion) if iou is not None]
    return sum(defined) / len(defined) if defined else math.nan


def pixel_accuracy(confusion) -> float:
    """Share (%) of the counted (non-ignored) pixels predicted right: trace / total; nan for no pixels."""
    tp, _ = _true_positives_and_unions(confusion)
    total = int(_square(confusion).sum())
    return 100.0 * sum(tp) / total if total else math.nan


def mean_iou(predictions, targets, num_classes: int, ignore_index: int) -> float:
    """Mean IoU (%) of one set of integer masks: ``mean_iou_from_confusion(confusion_matrix(...))``.

    For a test set in batches, sum ``confusion_matrix`` over the batches instead (module docstring).
    """
    return mean_iou_from_confusion(confusion_matrix(predictions, targets, num_classes, ignore_index))


def _label_tensors(predictions, targets, num_classes, ignore_index) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise HemError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or 0 <= ignore_index < num_classes:
        # inside [0, C) the ignored class would still collect predictions and count as IoU 0
        raise HemError(f"ignore_index must be an integer outside [0, {num_classes - 1}], got {ignore_index!r}")
    predictions, targets = torch.as_tensor(predictions), torch.as_tensor(targets)
    for name, labels in (("predictions", predictions), ("targets", targets)):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise HemError(f"{name} must be integer class indices (argmax the logits first), got {labels.dtype}")
    if predictions.shape != targets.shape:
        raise HemError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    return predictions, targets


def _out_of_range(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return (labels < 0) | (labels >= num_classes)


def _square(confusion) -> torch.Tensor:
    confusion = torch.as_tensor(confusion)
    if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise HemError(f"a confusion matrix must be (C, C) with C >= 1, got {tuple(confusion.shape)}")
    return confusion.detach().cpu().long()


def _true_positives_and_unions(confusion) -> tuple[list[int], list[int]]:
    """Per class: (TP = diagonal, TP + FP + FN = column sum + row sum - diagonal), as Python ints."""
    confusion = _square(confusion)
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return tp.tolist(), union.tolist()
