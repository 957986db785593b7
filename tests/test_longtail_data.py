"""Long-tailed subsets: sizes by the paper's formula, first samples in stored order, shot groups."""
import math

import pytest
import torch

from hemcli.data.longtail import factor_from_ratio, kept_counts, longtail_indices, shot_groups
from hemcli.errors import HemError


def test_cifar10_lt_sizes_for_f_0_6():
    """floor(5000 * 0.6 ** j), worked out by hand: 5000, 3000, 1800, 1080, 648, 388.8, 233.28, 139.97,
    83.98, 50.39 -> the list of the paper's set-up, and a largest/smallest ratio of 100."""
    sizes = kept_counts([5000] * 10, 0.6)
    assert sizes == [5000, 3000, 1800, 1080, 648, 388, 233, 139, 83, 50]
    assert sizes[0] / sizes[-1] == 100
    assert sizes == [math.floor(5000 * 0.6 ** j + 1e-9) for j in range(10)]


def test_factor_from_imbalance_ratio():
    """R = f ** -(C - 1): CIFAR10 R 100 -> 0.5995 (the paper's 0.6), R 10 -> 0.7743 (0.7744);
    CIFAR100 R 100 -> 0.9546 (0.955), R 10 -> 0.9770 (0.9771)."""
    assert factor_from_ratio(100, 10) == pytest.approx(0.59948, abs=1e-5)
    assert factor_from_ratio(10, 10) == pytest.approx(0.77426, abs=1e-5)
    assert factor_from_ratio(100, 100) == pytest.approx(0.95455, abs=1e-5)
    assert factor_from_ratio(10, 100) == pytest.approx(0.97700, abs=1e-5)
    assert factor_from_ratio(1, 10) == 1.0
    sizes = kept_counts([5000] * 10, factor_from_ratio(100, 10))
    assert sizes[0] == 5000 and sizes[-1] == 50


def test_the_first_samples_of_each_class_in_stored_order():
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])  # four of each, interleaved
    kept = longtail_indices(labels, 2, 0.5)  # class 0 keeps 4, class 1 floor(4 * 0.5) = 2
    assert kept.tolist() == [0, 1, 2, 3, 5, 7]


@pytest.mark.parametrize("ratio", [0.5, 0, -3, float("nan"), float("inf")])
def test_ratio_below_one_is_refused(ratio):
    with pytest.raises(HemError, match="imbalance ratio must be a number >= 1"):
        factor_from_ratio(ratio, 10)


@pytest.mark.parametrize("factor", [0, -0.1, 1.5, float("nan")])
def test_factor_outside_0_1_is_refused(factor):
    with pytest.raises(HemError, match=r"long-tail factor f must be in \(0, 1\]"):
        kept_counts([10, 10], factor)


def test_a_class_left_empty_is_refused():
    with pytest.raises(HemError, match="long-tail factor 0.1 leaves classes 1, 2 without a training sample"):
        longtail_indices(torch.arange(3).repeat(5), 3, 0.1)  # keeps 5, floor(0.5) = 0, floor(0.05) = 0


def test_shot_groups_by_training_samples():
    """many: more than 100, medium: 20 to 100, few: fewer than 20 (OLTR's convention)."""
    assert shot_groups([5000, 101, 100, 20, 19, 1]) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
