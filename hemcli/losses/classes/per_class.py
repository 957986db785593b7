"""Losses that score every class's logit on its own, one-vs-rest: sigmoid cross-entropy and squared error.

Notation in the docstrings: for sample n, y = logits[n] (C values), l = targets[n], t = onehot(l).
"""
from __future__ import annotations

from hemcli.losses import functional as LF
from hemcli.losses.classes.base import LossModule, documented, require
from hemcli.losses.margins import is_finite_number


@documented
class SigmoidLoss(LossModule):
    """Sigmoid cross-entropy: a binary cross-entropy per class, summed over the classes.

    loss_n = -sum_k [t_k log sigmoid(y_k) + (1 - t_k) log(1 - sigmoid(y_k))]

    Kornblith et al. 2021, "Why do better loss functions lead to less transferable features?",
    Eq. 8. (They also start the last layer's biases at -log C; that belongs to the model.)
    ``torch.nn.BCEWithLogitsLoss()`` on one-hot targets averages over the N * C entries instead,
    which is this loss divided by C.
    """

    loss_name = "sigmoid"

    def loss(self, logits, targets):
        return LF.sigmoid(logits, targets, self.ignore_index, self.reduction)


@documented
class SquaredErrorLoss(LossModule):
    """Squared error on the logits: the target's pulled to M (weighted kappa), the others to 0.

    loss_n = (1/C) sum_k [kappa t_k (y_k - M)^2 + (1 - t_k) y_k^2]

    Hui & Belkin 2020, "Evaluation of neural architectures trained with square loss vs
    cross-entropy in classification tasks", as in Kornblith et al. 2021 (Eq. 9); kappa = 8 and
    M = 0.83 from their Table A.2, CIFAR-10 column (their CIFAR-100 column: kappa = 6, M = 12).

    Args:
        kappa (float, optional): the target class's weight, > 0. Default: 8.
        M (float, optional): the value the target's logit is pulled to. Default: 0.83.
    """

    loss_name = "squared"

    def __init__(self, kappa: float = 8.0, M: float = 0.83, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(kappa) and kappa > 0, self.loss_name, "kappa must be > 0", kappa)
        require(is_finite_number(M), self.loss_name, "M must be a number", M)
        self.kappa, self.M = float(kappa), float(M)

    def loss(self, logits, targets):
        return LF.squared_error(logits, targets, self.kappa, self.M, self.ignore_index, self.reduction)
