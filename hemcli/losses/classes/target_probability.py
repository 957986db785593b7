"""Losses of the target's softmax probability p_l that reweight cross-entropy: focal and encouraging.

Notation in the docstrings: for sample n, y = logits[n] (C values), l = targets[n], p = softmax(y).
"""
from __future__ import annotations

from hemcli.losses import functional as LF
from hemcli.losses.classes.base import LossModule, documented, require
from hemcli.losses.margins import is_finite_number


@documented
class FocalLoss(LossModule):
    """Focal loss: cross-entropy scaled down for samples that are already classified well.

    loss_n = -(1 - p_l)^gamma * log p_l

    Lin et al. 2017, "Focal loss for dense object detection"; HEM paper, Table 7 (segmentation,
    gamma = 2). gamma = 0 gives cross-entropy.

    Args:
        gamma (float, optional): the focusing parameter, >= 0. Default: 2.
    """

    loss_name = "focal"

    def __init__(self, gamma: float = 2.0, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(gamma) and gamma >= 0, self.loss_name, "gamma must be >= 0", gamma)
        self.gamma = float(gamma)

    def loss(self, logits, targets):
        return LF.focal(logits, targets, self.gamma, self.ignore_index, self.reduction)


@documented
class EncouragingLoss(LossModule):
    """Encouraging loss: cross-entropy plus a bonus that keeps rewarding well-classified samples.

    loss_n = -log p_l + log(max(1 - p_l, 1e-5))                       (LE = 1, the normal bonus)

    For LE < 1 the bonus continues on its tangent beyond p_l = LE (the conservative bonus):
    log(1 - LE) - (p_l - LE) / (1 - LE) in place of log(1 - p_l) there.

    Zhao et al. 2022, "Well-classified examples are underestimated in classification with deep
    neural networks", Eq. 6 (normal) and Eq. 7 (conservative); they recommend LE = 0.5 or 0.75
    when the training hyper-parameters are kept as tuned for cross-entropy.

    Args:
        LE (float, optional): where the conservative bonus leaves the log curve, in (0, 1]. Default: 1.
    """

    loss_name = "encouraging"

    def __init__(self, LE: float = 1.0, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(LE) and 0 < LE <= 1, self.loss_name, "LE must be in (0, 1]", LE)
        self.LE = float(LE)

    def loss(self, logits, targets):
        return LF.encouraging(logits, targets, self.LE, self.ignore_index, self.reduction)
