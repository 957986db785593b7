"""Adversarial-sample rejection: the detection accuracy rate (DAR) of Zhu et al. (2024) as used by
Spratling (2025), Appendix B.1.2.

A confidence threshold is set on the clean test set so that it accepts a share ``accept`` (95%) of
the *correctly classified* clean samples; a sample is accepted when its confidence >= the threshold.
An adversarial sample is handled correctly when it is accepted and classified right, or rejected and
classified wrong; DAR is the share handled correctly, a fraction in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np

from hemcli.errors import HemError
from hemcli.metrics.ranking import scores_array, to_numpy

# accept * n is a float product (0.95 * n); this slack keeps an exact integer from rounding up to the next
_CEIL_SLACK = 1e-9


def flags_array(values, name: str, size: int) -> np.ndarray:
    """A bool vector of length ``size`` from bools or 0/1 numbers, or a one-line HemError."""
    array = to_numpy(values, name)
    if array.size != size:
        raise HemError(f"{name} has {array.size} entries but the confidences have {size}")
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise HemError(f"{name} must hold booleans (or 0/1)")
    return array.astype(bool)


def acceptance_threshold(clean_conf, clean_correct, accept: float = 0.95) -> float:
    """The confidence t that accepts a share ``accept`` of the correctly classified clean samples:
    their confidences sorted in descending order, the one at index ceil(accept * n) - 1."""
    if not 0.0 < float(accept) <= 1.0:
        raise HemError(f"accept must be a fraction in (0, 1], got {accept!r}")
    conf = scores_array(clean_conf, "clean confidences")
    correct = flags_array(clean_correct, "clean correctness flags", conf.size)
    kept = np.sort(conf[correct])[::-1]
    if kept.size == 0:
        raise HemError("no clean sample is classified correctly, so no acceptance threshold can be set")
    index = math.ceil(float(accept) * kept.size - _CEIL_SLACK) - 1
    return float(kept[max(index, 0)])


def dar(clean_conf, clean_correct, adv_conf, adv_correct, accept: float = 0.95) -> float:
    """Detection accuracy rate in [0, 1]: the share of adversarial samples that are accepted
    (confidence >= ``acceptance_threshold(clean_conf, clean_correct, accept)``) and correct, or
    rejected and wrong. Confidences and flags are vectors (numpy or torch) of matching lengths."""
    threshold = acceptance_threshold(clean_conf, clean_correct, accept)
    conf = scores_array(adv_conf, "adversarial confidences")
    correct = flags_array(adv_correct, "adversarial correctness flags", conf.size)
    accepted = conf >= threshold
    return float(np.mean(accepted == correct))
