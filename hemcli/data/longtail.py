"""Long-tailed training sets (paper Appendix B.2.1, after Cao et al. 2019 and Cui et al. 2019).

Class j (j = 0 .. C-1, the dataset's own label order, so class 0 keeps the most) keeps its first
``floor(s_j * f ** j)`` training samples, "first" in the order the dataset's files store them, so the
subset is the same for every loss and seed. ``f`` comes from the imbalance ratio R = largest / smallest
class as ``f = R ** (-1 / (C - 1))`` (CIFAR10, R = 100: f = 0.5995; the paper rounds it to 0.6), or is
given directly. The test set stays balanced. The floor is taken of ``s_j * f ** j + 1e-9``, so a product
that is a whole number in exact arithmetic (5000 * 0.6 ** 2 = 1800) is not lost to rounding below it.

Shot groups follow the usual convention (Liu et al. 2019, OLTR): many-shot classes have more than
100 training samples, medium-shot 20 to 100, few-shot fewer than 20.
"""
from __future__ import annotations

import math

import torch

from hemcli.errors import HemError

ROUNDING_SLACK = 1e-9
MANY_ABOVE, FEW_BELOW = 100, 20  # many: > 100 training samples; few: < 20; medium: 20..100


def factor_from_ratio(ratio: float, num_classes: int) -> float:
    """f such that the largest class keeps ``ratio`` times as many samples as the smallest."""
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 1):
        raise HemError(f"imbalance ratio must be a number >= 1 (largest / smallest class), got {ratio!r}")
    if num_classes < 2:
        raise HemError("a long-tailed set needs at least 2 classes")
    return float(ratio) ** (-1.0 / (num_classes - 1))


def check_factor(factor: float) -> float:
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and 0 < factor <= 1):
        raise HemError(f"long-tail factor f must be in (0, 1], got {factor!r}")
    return float(factor)


def kept_counts(class_counts: list[int], factor: float) -> list[int]:
    """floor(s_j * f ** j) per class j: how many of its first training samples class j keeps."""
    check_factor(factor)
    return [min(count, math.floor(count * factor ** j + ROUNDING_SLACK)) for j, count in enumerate(class_counts)]


def longtail_indices(labels: torch.Tensor, num_classes: int, factor: float) -> torch.Tensor:
    """Indices (in stored order) of the training samples a long-tailed subset keeps; HemError when a
    class would keep none."""
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    keep = kept_counts(counts, factor)
    empty = [j for j, k in enumerate(keep) if k == 0]
    if empty:
        raise HemError(f"long-tail factor {factor:g} leaves class{'es' if len(empty) > 1 else ''} "
                       f"{', '.join(map(str, empty[:5]))}{', ...' if len(empty) > 5 else ''} without a training "
                       f"sample (it keeps floor(s_j * f^j)); use a larger factor or a smaller imbalance ratio")
    rank = torch.zeros_like(labels)
    for j in range(num_classes):  # the position of each sample among those of its class
        members = (labels == j).nonzero().flatten()
        rank[members] = torch.arange(len(members))
    return (rank < torch.tensor(keep)[labels]).nonzero().flatten()


def shot_groups(train_counts: list[int]) -> dict[str, list[int]]:
    """Class indices of the many-, medium- and few-shot groups."""
    groups = {"many": [], "medium": [], "few": []}
    for j, count in enumerate(train_counts):
        groups["many" if count > MANY_ABOVE else "few" if count < FEW_BELOW else "medium"].append(j)
    return groups
