"""Evaluation metrics as pure functions: arrays (numpy or torch, any device) in, Python floats out.

Conventions: in unknown-class rejection the *known* (in-distribution) samples are the positive class,
and every score is oriented so that a higher score means "more likely known" (``scores`` turns logits
into such scores); ``ranking`` compares the scores of a known and an unknown set, ``rejection`` gives
the AutoAttack detection accuracy rate and ``calibration`` the calibration errors. Rates and
accuracies are fractions in [0, 1]; the evaluation layer turns them into the percentages it reports.
``segmentation`` is the exception, as the paper's Table 7: mean IoU, per-class IoU and pixel accuracy
in percent, from a confusion matrix summed over the test set's batches.
Nothing here reads files or knows about models.
"""
from __future__ import annotations

from hemcli.metrics.calibration import brier_score, expected_calibration_error, negative_log_likelihood
from hemcli.metrics.ranking import auroc, fpr_at_tpr
from hemcli.metrics.rejection import acceptance_threshold, dar
from hemcli.metrics.scores import SCORES, energy, gen, max_logit, msp, score_fn
from hemcli.metrics.segmentation import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    mean_iou_from_confusion,
    pixel_accuracy,
)

__all__ = [
    "auroc", "fpr_at_tpr", "dar", "acceptance_threshold",
    "expected_calibration_error", "negative_log_likelihood", "brier_score",
    "msp", "max_logit", "energy", "gen", "SCORES", "score_fn",
    "mean_iou", "confusion_matrix", "iou_per_class", "mean_iou_from_confusion", "pixel_accuracy",
]
