"""Cross-entropy and the losses built on it: CE, LogitNorm, logit adjustment, label smoothing, logit penalty.

Notation in the docstrings: for sample n, y = logits[n] (C values), l = targets[n], p = softmax(y).
"""
from __future__ import annotations

import torch

from hemcli.losses import functional as LF
from hemcli.losses.classes.base import LossModule, documented, require
from hemcli.losses.classes.counts import check_num_classes, resolve_class_counts
from hemcli.losses.margins import checked_class_counts, is_finite_number


@documented
class CrossEntropyLoss(LossModule):
    """Cross-entropy (CE), optionally with a temperature.

    loss_n = -log softmax(y / tau)_l

    HEM paper, Appendix A.1 (Eq. 3-4), with tau = 1. With tau = 1 and reduction 'none' or 'sum' it
    equals ``torch.nn.CrossEntropyLoss``; 'mean' too, except on a batch without a valid target.

    Args:
        tau (float, optional): the temperature, > 0. Default: 1.
    """

    loss_name = "ce"

    def __init__(self, tau: float = 1.0, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(tau) and tau > 0, self.loss_name, "tau must be > 0", tau)
        self.tau = float(tau)

    def loss(self, logits, targets):
        return LF.cross_entropy(logits, targets, self.tau, self.ignore_index, self.reduction)


@documented
class LogitNormLoss(LossModule):
    """LogitNorm (LN): cross-entropy of the logits scaled to norm 1 / tau.

    loss_n = -log softmax(y / (tau * (||y||_2 + eps)))_l

    Wei et al. 2022, "Mitigating neural network overconfidence with logit normalization";
    HEM paper, Appendix A.2 (tau = 0.04).

    Args:
        tau (float, optional): the temperature, > 0. Default: 0.04.
        eps (float, optional): added to the norm, so that all-zero logits stay finite. Default: 1e-7.
    """

    loss_name = "ln"

    def __init__(self, tau: float = 0.04, eps: float = 1e-7, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(tau) and tau > 0, self.loss_name, "tau must be > 0", tau)
        require(is_finite_number(eps) and eps >= 0, self.loss_name, "eps must be >= 0", eps)
        self.tau, self.eps = float(tau), float(eps)

    def loss(self, logits, targets):
        return LF.logit_norm(logits, targets, self.tau, self.eps, self.ignore_index, self.reduction)


@documented
class LogitAdjustedLoss(LossModule):
    """Logit-adjusted cross-entropy (LA): CE of the logits shifted by the log class prior.

    loss_n = -log softmax(y + tau * log pi)_l,   pi_j = s_j / sum_i s_i

    where s_j is the number of training samples of class j. Menon et al. 2021, "Long-tail learning
    via logit adjustment"; HEM paper, Appendix A.3 (Eq. 5-6, tau = 1). With balanced classes
    (``num_samples``) the shift is the same for every class and LA is plain cross-entropy.
    The class sizes are given as for ``HEMLoss`` (``class_counts`` may also come first, positionally;
    ``num_classes`` is then optional and checked against it).

    Args:
        class_counts (sequence of numbers, optional): the number of training samples of each class
            (a list, tuple or 1-D tensor of positive numbers).
        tau (float, optional): the scale of the adjustment. Default: 1.
        num_classes (int, optional): the number of classes C; needed with ``num_samples``.
        num_samples (number, optional): the total number of training samples, for balanced classes
            (``class_counts = [num_samples / C] * C``). Give this or ``class_counts``.
    """

    loss_name = "la"

    def __init__(self, class_counts=None, tau: float = 1.0, ignore_index: int = -100, reduction: str = "mean",
                 num_classes: int | None = None, num_samples: float | None = None):
        super().__init__(ignore_index, reduction)
        if num_classes is None and class_counts is not None:  # the older call: the counts alone
            counts = checked_class_counts(class_counts, owner=f"loss {self.loss_name!r}")
            num_classes = check_num_classes(self.loss_name, len(counts))
        counts = resolve_class_counts(self.loss_name, num_classes, class_counts, num_samples)
        require(is_finite_number(tau), self.loss_name, "tau must be a number", tau)
        self.tau = float(tau)
        counts64 = torch.tensor(counts, dtype=torch.float64)
        self.register_buffer("log_prior", (counts64 / counts64.sum()).log().float())

    def loss(self, logits, targets):
        self._check_num_classes(logits, self.log_prior.numel())
        return LF.logit_adjusted(logits, targets, self.log_prior, self.tau, self.ignore_index, self.reduction)


@documented
class LabelSmoothingLoss(LossModule):
    """Cross-entropy against smoothed targets (LS).

    loss_n = -sum_k q_k log p_k,   q = (1 - alpha) * onehot(l) + alpha / C

    Szegedy et al. 2016, "Rethinking the Inception architecture"; equals ``torch.nn.CrossEntropyLoss(
    label_smoothing=alpha)`` for 'none' and 'sum'. Kornblith et al. 2021 (Eq. 2) also divide by
    1 - alpha; this one, like PyTorch, does not.

    Args:
        alpha (float, optional): the smoothing, in [0, 1]. Default: 0.1.
    """

    loss_name = "ls"

    def __init__(self, alpha: float = 0.1, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(alpha) and 0 <= alpha <= 1, self.loss_name, "alpha must be in [0, 1]", alpha)
        self.alpha = float(alpha)

    def loss(self, logits, targets):
        return LF.label_smoothing(logits, targets, self.alpha, self.ignore_index, self.reduction)


@documented
class LogitPenaltyLoss(LossModule):
    """Cross-entropy plus a penalty on the squared norm of the logits.

    loss_n = -log p_l + beta * ||y||_2^2

    Kornblith et al. 2021, "Why do better loss functions lead to less transferable features?",
    Section 2; beta = 10^-2.83 from their Table A.2 (CIFAR-10 and -100).

    Args:
        beta (float, optional): the penalty's weight, >= 0. Default: 10^-2.83.
    """

    loss_name = "logit-penalty"

    def __init__(self, beta: float = 10 ** -2.83, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(beta) and beta >= 0, self.loss_name, "beta must be >= 0", beta)
        self.beta = float(beta)

    def loss(self, logits, targets):
        return LF.logit_penalty(logits, targets, self.beta, self.ignore_index, self.reduction)
