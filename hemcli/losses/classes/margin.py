"""The margin losses: multi-class margin (MM) and the high error margin loss of the paper (HEM, HEM-).

Notation in the docstrings: for sample n, y = logits[n] (C values), l = targets[n].
"""
from __future__ import annotations

import torch

from hemcli.losses import functional as LF
from hemcli.losses.classes.base import LossModule, documented, require
from hemcli.losses.classes.counts import COUNTS_ARGS, resolve_class_counts
from hemcli.losses.margins import DEFAULT_M, hem_margins, is_finite_number

HEM_MEAN = ("the mean of the per-sample losses that are > 0 (paper, Section 3: the losses of the "
            "samples in a batch are combined by the mean of the above-zero values), exactly 0 when "
            "none is; so not the plain mean of ``'none'``, which also counts the samples with loss 0")
HEM_EQUATIONS = """\
    Per sample, the mean of the margin errors at or above that sample's mean error (HEM paper,
    Section 3, Eq. 1-2):

        e_i = max(0, y_i - y_l + mu_i) for i != l,   e_l = 0
        loss_n = sum_i [e_i >= m] e_i / sum_i [e_i >= m],   m = (1/C) sum_j e_j

    ([.] is 1 when true, else 0.) The threshold m is detached, as the paper says: no gradient flows
    through it. A sample whose target logit clears every margin has loss 0."""


def _hem_doc(cls):
    """Write the equations and the class-size arguments into a HEM class's docstring."""
    cls.__doc__ = cls.__doc__.replace("    {equations}", HEM_EQUATIONS).replace("{counts}", COUNTS_ARGS)
    return cls


@documented
class MultiMarginLoss(LossModule):
    """Multi-class margin loss (MM, hinge): the margin errors averaged over all C logits.

    loss_n = (1/C) sum_{i != l} max(0, y_i - y_l + margin)

    Crammer & Singer 2002; HEM paper, Appendix A.5 (Eq. 8-9, margin 1). Equals
    ``torch.nn.MultiMarginLoss(margin=margin)`` (p = 1) on (N, C) logits, and also takes
    (N, C, d1, ...). The MM column of the paper's Table 1 (margin 0.5) does not follow from
    Eq. 8-9 (y = [0.6, 0.3, 0, -0.1], l = 0 gives 0.05, the table prints 0.11); this follows the
    equations.

    Args:
        margin (float, optional): the margin, >= 0. Default: 1.
    """

    loss_name = "mm"

    def __init__(self, margin: float = 1.0, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(is_finite_number(margin) and margin >= 0, self.loss_name, "margin must be >= 0", margin)
        self.margin = float(margin)

    def loss(self, logits, targets):
        return LF.multi_margin(logits, targets, self.margin, self.ignore_index, self.reduction)


@documented
@_hem_doc
class HighErrorMarginLoss(LossModule):
    """High error margin loss (HEM paper, Section 3) with margins given directly.

    {equations}

    ``HEMLoss`` and ``SharedMarginHEMLoss`` set the margins from the class sizes, as the paper
    does; this class takes them as they are (e.g. one fixed margin for all classes). Per-class
    margins that are all equal take the shared-margin path (same result, faster).

    Follows the equations where the paper's Table 1 does not: its HEM column (margin 0.5) prints
    0.45 for y = [0.6, 0.3, 0, -0.1], l = 0; Eq. 1-2 give 0.2 (e = [0, 0.2, 0, 0]).
    Forward and backward are fused by hand (``hemcli.losses.hem_function``).

    Args:
        margins (float or sequence of floats): one margin mu for all logits, or one per class
            (each >= 0).
        margin_index (str, optional): how a per-class margin is picked: ``'logit'`` by the
            competing logit i, mu_i, as Eq. 1 is written; ``'target'`` the target's mu_l for every
            i (the LDAM-style reading). Default: ``'logit'``.
    """

    loss_name = "hem"
    MARGIN_INDEXES = ("logit", "target")
    MEAN = HEM_MEAN
    num_classes = None  # when known, the logits are checked to have this many classes

    def __init__(self, margins, margin_index: str = "logit", ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(ignore_index, reduction)
        require(margin_index in self.MARGIN_INDEXES, self.loss_name,
                f"margin_index must be one of {', '.join(self.MARGIN_INDEXES)}", margin_index)
        values = torch.as_tensor(margins, dtype=torch.float32).detach().cpu()
        require(values.dim() <= 1 and values.numel() > 0 and bool(torch.isfinite(values).all())
                and bool((values >= 0).all()), self.loss_name,
                "margins must be one non-negative number or one per class", margins)
        self.margin_index = margin_index
        self.register_buffer("margins", values)
        # A single value (also all-equal per-class values) is passed as a Python float: the fast path.
        self.shared_margin = float(values.flatten()[0]) if bool((values == values.flatten()[0]).all()) else None

    def loss(self, logits, targets):
        if self.num_classes is not None:
            self._check_num_classes(logits, self.num_classes)
        if self.shared_margin is not None:
            return LF.high_error_margin(logits, targets, self.shared_margin, ignore_index=self.ignore_index,
                                        reduction=self.reduction)
        self._check_num_classes(logits, self.margins.numel())
        return LF.high_error_margin(logits, targets, self.margins, self.margin_index, self.ignore_index,
                                    self.reduction)

    def extra_repr(self) -> str:
        shown = self.shared_margin if self.shared_margin is not None else self.margins.tolist()
        return f"margins={shown}, margin_index={self.margin_index!r}, {self._tail_repr()}"

    def _tail_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


@documented
@_hem_doc
class HEMLoss(HighErrorMarginLoss):
    """High error margin loss (HEM), the paper's loss: margins from the class sizes.

    {equations}

    The margins: one per class, larger for rarer classes, mu_i = sqrt(M / (C s_i)) for s_i training
    samples of class i. With balanced classes every margin is sqrt(M / S) for S training samples in
    all (0.2 for CIFAR-10's 50000, M = 2000), and HEM equals HEM- (``SharedMarginHEMLoss``).
    ``HighErrorMarginLoss`` takes margins directly.

    Example::

        >>> criterion = HEMLoss(num_classes=10, num_samples=50000)   # mu = 0.2 for every class
        >>> loss = criterion(model(images), labels)

    Args:{counts}
        M (float, optional): the margin scale, > 0 (the paper's only hyper-parameter). Default: 2000.
        margin_index (str, optional): ``'logit'``: mu_i on the competing logit i, as Eq. 1 is
            written; ``'target'``: the target's mu_l for every i (LDAM-style). Default: ``'logit'``.
    """

    loss_name = "hem"
    PER_CLASS = True

    def __init__(self, num_classes: int, class_counts=None, num_samples: float | None = None, M: float = DEFAULT_M,
                 margin_index: str = "logit", reduction: str = "mean", ignore_index: int = -100):
        counts = resolve_class_counts(self.loss_name, num_classes, class_counts, num_samples)
        require(is_finite_number(M) and M > 0, self.loss_name, "M must be a positive number", M)
        super().__init__(hem_margins(counts, M, self.PER_CLASS), margin_index, ignore_index, reduction)
        self.num_classes, self.M = num_classes, float(M)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, M={self.M}, " + super().extra_repr()


@documented
@_hem_doc
class SharedMarginHEMLoss(HEMLoss):
    """High error margin loss with one shared margin (HEM- in the paper), from the training set's size.

    {equations}

    The margin: mu_i = mu = sqrt(M / sum_i s_i) for every logit, the ablation of HEM without its
    class-specific margins (the same as HEM when the classes are balanced).

    Args:{counts}
        M (float, optional): the margin scale, > 0. Default: 2000.
    """

    loss_name = "hem-"
    PER_CLASS = False

    def __init__(self, num_classes: int, class_counts=None, num_samples: float | None = None, M: float = DEFAULT_M,
                 reduction: str = "mean", ignore_index: int = -100):
        super().__init__(num_classes, class_counts, num_samples, M, "logit", reduction, ignore_index)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, M={self.M}, margin={self.shared_margin}, {self._tail_repr()}"

