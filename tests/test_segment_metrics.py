"""Segmentation metrics (hemcli.metrics.segmentation): a confusion matrix and IoUs worked out by hand,
ignored pixels, a class absent from both truth and prediction, torchmetrics' Jaccard index on random
masks, batch-wise accumulation, and the input checks.
"""
from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from hemcli.errors import HemError
from hemcli.metrics import confusion_matrix, iou_per_class, mean_iou, mean_iou_from_confusion, pixel_accuracy

IGNORE = 255

# Two 3x3 masks, 3 classes, three ignored pixels (255).
TARGETS = torch.tensor([[[0, 0, 1],
                         [0, 1, 1],
                         [2, 2, IGNORE]],
                        [[0, 0, 0],
                         [1, 1, IGNORE],
                         [IGNORE, 2, 2]]])
PREDICTIONS = torch.tensor([[[0, 1, 1],
                             [0, 1, 2],
                             [2, 0, 1]],
                            [[0, 0, 2],
                             [1, 1, 0],
                             [2, 2, 1]]])
# (truth, prediction) pairs of the 15 counted pixels:
#   image 0: (0,0) (0,1) (1,1) (0,0) (1,1) (1,2) (2,2) (2,0)
#   image 1: (0,0) (0,0) (0,2) (1,1) (1,1) (2,2) (2,1)
# rows = truth, columns = prediction:
HAND_CONFUSION = [[4, 1, 1],
                  [0, 4, 1],
                  [1, 1, 2]]
# row sums 6, 5, 4; column sums 5, 6, 4; IoU_c = diag / (row + column - diag)
HAND_IOU = [100 * 4 / 7, 100 * 4 / 7, 100 * 2 / 6]
HAND_MEAN_IOU = 100 * 31 / 63  # (4/7 + 4/7 + 1/3) / 3 = (12 + 12 + 7) / 63
HAND_PIXEL_ACCURACY = 100 * 10 / 15


def test_confusion_matrix_by_hand():
    confusion = confusion_matrix(PREDICTIONS, TARGETS, 3, IGNORE)
    assert confusion.dtype == torch.int64
    assert confusion.tolist() == HAND_CONFUSION


def test_reductions_by_hand():
    confusion = torch.tensor(HAND_CONFUSION)
    assert iou_per_class(confusion) == pytest.approx(HAND_IOU)
    assert mean_iou_from_confusion(confusion) == pytest.approx(HAND_MEAN_IOU)
    assert pixel_accuracy(confusion) == pytest.approx(HAND_PIXEL_ACCURACY)
    assert mean_iou(PREDICTIONS, TARGETS, 3, IGNORE) == pytest.approx(HAND_MEAN_IOU)


def test_ignored_pixels_do_not_count_whatever_is_predicted_there():
    ignored = TARGETS == IGNORE
    for fill in range(3):
        predictions = PREDICTIONS.masked_fill(ignored, fill)
        assert confusion_matrix(predictions, TARGETS, 3, IGNORE).tolist() == HAND_CONFUSION


def test_negative_ignore_index_and_small_integer_dtypes():
    targets = TARGETS.masked_fill(TARGETS == IGNORE, -1).to(torch.int8)
    confusion = confusion_matrix(PREDICTIONS.to(torch.uint8), targets, 3, -1)
    assert confusion.tolist() == HAND_CONFUSION


def test_a_class_absent_from_both_is_left_out_of_the_mean():
    # the same masks with a fourth class that is neither in the truth nor predicted
    confusion = confusion_matrix(PREDICTIONS, TARGETS, 4, IGNORE)
    assert confusion[3].sum() == 0 and confusion[:, 3].sum() == 0
    assert iou_per_class(confusion)[:3] == pytest.approx(HAND_IOU)
    assert iou_per_class(confusion)[3] is None
    assert mean_iou_from_confusion(confusion) == pytest.approx(HAND_MEAN_IOU)


def test_a_class_only_predicted_or_only_true_counts_as_zero():
    targets = torch.tensor([0, 0, 1, 1])
    predictions = torch.tensor([0, 2, 1, 1])  # class 2 predicted once, never true: IoU 0, not None
    assert iou_per_class(confusion_matrix(predictions, targets, 3, IGNORE)) == pytest.approx([50.0, 100.0, 0.0])
    # class 2 true once, never predicted: also 0
    assert iou_per_class(confusion_matrix(targets, predictions, 3, IGNORE)) == pytest.approx([50.0, 100.0, 0.0])


def test_nothing_counted_gives_nan():
    targets = torch.full((2, 2), IGNORE)
    confusion = confusion_matrix(torch.zeros(2, 2, dtype=torch.long), targets, 3, IGNORE)
    assert confusion.sum() == 0
    assert iou_per_class(confusion) == [None, None, None]
    assert math.isnan(mean_iou_from_confusion(confusion)) and math.isnan(pixel_accuracy(confusion))


def random_masks(seed, num_classes, absent=(), shape=(3, 17, 13)):
    """Random (predictions, targets) with about 20% ignored pixels; classes in ``absent`` nowhere."""
    gen = torch.Generator().manual_seed(seed)
    present = torch.tensor([c for c in range(num_classes) if c not in absent])
    targets = present[torch.randint(0, len(present), shape, generator=gen)]
    predictions = present[torch.randint(0, len(present), shape, generator=gen)]
    targets[torch.rand(shape, generator=gen) < 0.2] = IGNORE
    return predictions, targets


def torchmetrics_iou(predictions, targets, num_classes, average):
    metric = MulticlassJaccardIndex(num_classes=num_classes, average=average, ignore_index=IGNORE)
    return 100 * metric(predictions, targets).double()


@pytest.mark.parametrize("seed", range(4))
def test_equals_torchmetrics_when_every_class_occurs(seed):
    predictions, targets = random_masks(seed, 5)
    confusion = confusion_matrix(predictions, targets, 5, IGNORE)
    assert iou_per_class(confusion) == pytest.approx(torchmetrics_iou(predictions, targets, 5, None).tolist())
    assert mean_iou(predictions, targets, 5, IGNORE) == pytest.approx(
        torchmetrics_iou(predictions, targets, 5, "macro").item())


@pytest.mark.parametrize("seed", range(4))
def test_equals_torchmetrics_with_classes_absent_from_both(seed):
    """torchmetrics gives an absent class IoU 0 (zero_division) per class, and whether its macro
    average skips such classes depends on the version (1.9 does). So compare per class where the IoU is
    defined, and average torchmetrics' per-class values over the classes that occur in either mask,
    found from the masks themselves."""
    predictions, targets = random_masks(seed, 6, absent=(1, 4))
    ours = iou_per_class(confusion_matrix(predictions, targets, 6, IGNORE))
    theirs = torchmetrics_iou(predictions, targets, 6, None)
    occurs = [bool((predictions == c).any() or (targets == c).any()) for c in range(6)]
    assert occurs == [True, False, True, True, False, True]
    assert [iou is not None for iou in ours] == occurs
    assert [iou for iou in ours if iou is not None] == pytest.approx(theirs[occurs].tolist())
    assert mean_iou(predictions, targets, 6, IGNORE) == pytest.approx(theirs[occurs].mean().item())


def test_batchwise_accumulation_equals_one_shot():
    predictions, targets = random_masks(7, 5, shape=(6, 9, 11))
    one_shot = confusion_matrix(predictions, targets, 5, IGNORE)
    summed = sum(confusion_matrix(p, t, 5, IGNORE) for p, t in zip(predictions.split(2), targets.split(2)))
    assert torch.equal(summed, one_shot)
    assert mean_iou_from_confusion(summed) == mean_iou(predictions, targets, 5, IGNORE)
    # ... which is why the task accumulates: the mean of per-batch mIoUs is another number
    per_batch = [mean_iou(p, t, 5, IGNORE) for p, t in zip(predictions.split(2), targets.split(2))]
    assert sum(per_batch) / len(per_batch) != pytest.approx(mean_iou_from_confusion(summed), abs=1e-6)


@pytest.mark.parametrize("bad", [-1, 3])
def test_prediction_out_of_range_is_a_value_error(bad):
    predictions = PREDICTIONS.clone()
    predictions[0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\]"):
        confusion_matrix(predictions, TARGETS, 3, IGNORE)


def test_target_out_of_range_that_is_not_the_ignore_index_is_a_value_error():
    with pytest.raises(ValueError, match=r"ignore index 254"):
        confusion_matrix(PREDICTIONS, TARGETS, 3, 254)


@pytest.mark.parametrize("ignore_index", [0, 2])
def test_ignore_index_inside_the_class_range_is_refused(ignore_index):
    with pytest.raises(HemError, match="ignore_index must be an integer outside"):
        confusion_matrix(PREDICTIONS, TARGETS, 3, ignore_index)


def test_logits_or_mismatched_shapes_are_refused():
    with pytest.raises(HemError, match="argmax the logits first"):
        confusion_matrix(PREDICTIONS.float(), TARGETS, 3, IGNORE)
    with pytest.raises(HemError, match="differ in shape"):
        confusion_matrix(PREDICTIONS[:1], TARGETS, 3, IGNORE)
    with pytest.raises(HemError, match=r"must be \(C, C\)"):
        iou_per_class(torch.ones(2, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_confusion_matrix_stays_on_the_device_and_matches_cpu():
    predictions, targets = random_masks(3, 5)
    confusion = confusion_matrix(predictions.cuda(), targets.cuda(), 5, IGNORE)
    assert confusion.is_cuda
    assert torch.equal(confusion.cpu(), confusion_matrix(predictions, targets, 5, IGNORE))
    assert mean_iou_from_confusion(confusion) == mean_iou(predictions, targets, 5, IGNORE)
