"""Unknown-class rejection from two sets of scores: AUROC and FPR at a given TPR.

The known (in-distribution) samples are the positive class and a higher score means "more likely
known". Both metrics follow scikit-learn's ``roc_auc_score`` / ``roc_curve`` (labels 1 = known),
ties included. Scores of any shape are flattened.
"""
from __future__ import annotations

import numpy as np

from hemcli.errors import HemError


def to_numpy(values, name: str) -> np.ndarray:
    """``values`` (numpy array, torch tensor on any device, or sequence) as a flat numpy array;
    floating tensors become float64 (numpy cannot hold bfloat16)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        values = values.double() if values.is_floating_point() else values
        values = values.numpy()
    try:
        return np.asarray(values).reshape(-1)
    except (TypeError, ValueError) as err:
        raise HemError(f"{name} must be an array of numbers ({err})") from None


def scores_array(values, name: str) -> np.ndarray:
    """A non-empty, finite float64 score vector, or a one-line HemError naming ``name``."""
    array = to_numpy(values, name)
    if array.size == 0:
        raise HemError(f"{name} is empty; need at least one score")
    if array.dtype.kind not in "biuf":
        raise HemError(f"{name} must hold numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise HemError(f"{name} holds NaN or infinite scores ({int((~np.isfinite(array)).sum())} of {array.size})")
    return array


def auroc(known_scores, unknown_scores) -> float:
    """Area under the ROC curve, known = positive: P(s_known > s_unknown) + 1/2 P(s_known = s_unknown)
    over all (known, unknown) pairs (Mann-Whitney U / (n_known n_unknown)); in [0, 1], 0.5 = chance.

    Equal to ``sklearn.metrics.roc_auc_score([1]*n_known + [0]*n_unknown, concat(scores))``.
    """
    known = scores_array(known_scores, "known scores")
    unknown = np.sort(scores_array(unknown_scores, "unknown scores"))
    below = np.searchsorted(unknown, known, side="left")  # unknowns strictly below each known score
    tied = np.searchsorted(unknown, known, side="right") - below
    # integer sums keep the pair count exact for large sets; a tied pair counts one half
    pairs = 2 * int(below.sum()) + int(tied.sum())
    return pairs / (2 * known.size * unknown.size)


def fpr_at_tpr(known_scores, unknown_scores, tpr: float = 0.95) -> float:
    """False-positive rate (share of unknowns accepted) at the first ROC point whose TPR (share of
    knowns accepted) reaches ``tpr``; a sample is accepted when its score >= the threshold.

    The ROC points are those of ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` with
    known = positive: one per distinct score, taken from the highest down, after the point (0, 0).
    This is the usual "FPR@95TPR" of OpenOOD and pytorch-ood; in [0, 1], lower is better.
    """
    if not 0.0 <= float(tpr) <= 1.0:
        raise HemError(f"tpr must be a fraction in [0, 1], got {tpr!r}")
    known = np.sort(scores_array(known_scores, "known scores"))
    unknown = np.sort(scores_array(unknown_scores, "unknown scores"))
    if tpr <= 0.0:
        return 0.0  # sklearn's first point (threshold +inf) accepts nothing
    thresholds = np.unique(np.concatenate([known, unknown]))[::-1]
    true_pos = known.size - np.searchsorted(known, thresholds, side="left")
    false_pos = unknown.size - np.searchsorted(unknown, thresholds, side="left")
    # tp / n like roc_curve, so a share that equals tpr exactly compares equal in floating point
    first = int(np.argmax(true_pos / known.size >= tpr))  # the lowest threshold always has TPR 1
    return float(false_pos[first] / unknown.size)
