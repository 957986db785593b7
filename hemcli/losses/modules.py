"""Thin ``nn.Module`` wrappers around ``hemcli.losses.functional``: check inputs, hold hyper-parameters.

Every module is called as ``loss(logits, targets)`` and returns a 0-dim tensor (float32 for
half/bfloat16/float32 logits).
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from hemcli.errors import HemError
from hemcli.losses import functional as LF
from hemcli.losses.margins import checked_class_counts, is_finite_number

SHAPES_DOC = """
    Input: logits (N, C) or (N, C, d1, d2, ...), float (half/bfloat16 are computed in float32);
    targets (N,) or (N, d1, d2, ...), integer class indices, ``ignore_index`` entries dropped.
    In the second form every position (pixel) is a sample. Output: 0-dim tensor (float32, or float64
    for float64 logits), the mean over the valid samples (exactly 0, zero gradient, when there is none).
"""


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def _with_shapes(cls):
    """Append the shared input/output description to a loss module's docstring."""
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + SHAPES_DOC
    return cls


def _require(ok: bool, loss: str, what: str, value) -> None:
    if not ok:
        raise HemError(f"loss {loss!r}: {what}, got {value!r}")


class _LossModule(nn.Module):
    """Checks the shapes, switches autocast off and calls ``self.loss(logits, targets)``."""

    loss_name = "?"

    def __init__(self, ignore_index: int = -100):
        super().__init__()
        _require(isinstance(ignore_index, int) and not isinstance(ignore_index, bool), self.loss_name,
                 "ignore_index must be an integer", ignore_index)
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self._check_inputs(logits, targets)
        if not _autocast_enabled(logits.device.type):  # entering the context costs as much as a small op
            return self.loss(logits, targets.long())
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.loss(logits, targets.long())

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_inputs(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        expected = logits.shape[:1] + logits.shape[2:]
        if logits.dim() < 2 or targets.shape != expected:
            raise HemError(f"loss {self.loss_name!r}: logits {tuple(logits.shape)} need targets of shape "
                           f"(N, d1, ...) = {tuple(expected)}, got {tuple(targets.shape)}")
        if not logits.is_floating_point():
            raise HemError(f"loss {self.loss_name!r}: logits must be floating point, got {logits.dtype}")

    def _check_num_classes(self, logits: torch.Tensor, num_classes: int) -> None:
        if logits.dim() >= 2 and logits.shape[1] != num_classes:
            raise HemError(f"loss {self.loss_name!r} was built for {num_classes} classes, "
                           f"logits have {logits.shape[1]} along dim 1")

    def extra_repr(self) -> str:
        names = [n for n in inspect.signature(type(self).__init__).parameters if n not in ("self", "class_counts")]
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names if hasattr(self, n))


@_with_shapes
class CrossEntropyLoss(_LossModule):
    """CE: -log softmax(y / tau)_l.  HEM paper, Appendix A.1 (Eq. 3-4); tau = 1 there."""

    loss_name = "ce"

    def __init__(self, tau: float = 1.0, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(tau) and tau > 0, self.loss_name, "tau must be > 0", tau)
        self.tau = float(tau)

    def loss(self, logits, targets):
        return LF.cross_entropy(logits, targets, self.tau, self.ignore_index)


@_with_shapes
class LogitNormLoss(_LossModule):
    """LogitNorm: CE of y / (tau * (||y||_2 + eps)).  Wei et al. 2022; HEM paper A.2 (tau = 0.04)."""

    loss_name = "ln"

    def __init__(self, tau: float = 0.04, eps: float = 1e-7, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(tau) and tau > 0, self.loss_name, "tau must be > 0", tau)
        _require(is_finite_number(eps) and eps >= 0, self.loss_name, "eps must be >= 0", eps)
        self.tau, self.eps = float(tau), float(eps)

    def loss(self, logits, targets):
        return LF.logit_norm(logits, targets, self.tau, self.eps, self.ignore_index)


@_with_shapes
class LogitAdjustedLoss(_LossModule):
    """LA: CE of y + tau * log p, p_j = s_j / sum_i s_i.  Menon et al. 2021; HEM paper A.3 (Eq. 5-6, tau = 1).

    ``class_counts``: the number of training samples s_j of each class j.
    """

    loss_name = "la"

    def __init__(self, class_counts, tau: float = 1.0, ignore_index: int = -100):
        super().__init__(ignore_index)
        counts = torch.tensor(checked_class_counts(class_counts, owner=f"loss {self.loss_name!r}"),
                              dtype=torch.float64)
        _require(is_finite_number(tau), self.loss_name, "tau must be a number", tau)
        self.tau = float(tau)
        self.register_buffer("log_prior", (counts / counts.sum()).log().float())

    def loss(self, logits, targets):
        self._check_num_classes(logits, self.log_prior.numel())
        return LF.logit_adjusted(logits, targets, self.log_prior, self.tau, self.ignore_index)


@_with_shapes
class DiceLoss(_LossModule):
    """DICE: mean over classes c of 1 - 2 sum_b t_bc z_bc / sum_b (t_bc + z_bc), z = softmax(y).

    Milletari et al. 2016; HEM paper A.4 (Eq. 7). Sums run over the batch (and pixels); every class
    counts in the mean, as in the paper (smp's DiceLoss instead skips classes absent from the batch).
    """

    loss_name = "dice"

    def loss(self, logits, targets):
        return LF.dice(logits, targets, self.ignore_index)


@_with_shapes
class MultiMarginLoss(_LossModule):
    """MM: (1/C) sum_{i != l} max(0, y_i - y_l + margin).  Crammer & Singer 2002; HEM paper A.5 (Eq. 8-9, margin 1).

    Equals ``torch.nn.functional.multi_margin_loss`` (p = 1) on (N, C) logits. Note: the MM column of
    the paper's Table 1 (mu = 0.5) does not follow from Eq. 8-9 (e.g. [0.6, 0.3, 0, -0.1] gives 0.05,
    the table prints 0.11); this follows the equations.
    """

    loss_name = "mm"

    def __init__(self, margin: float = 1.0, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(margin) and margin >= 0, self.loss_name, "margin must be >= 0", margin)
        self.margin = float(margin)

    def loss(self, logits, targets):
        return LF.multi_margin(logits, targets, self.margin, self.ignore_index)


@_with_shapes
class HighErrorMarginLoss(_LossModule):
    """HEM / HEM-: high error margin loss, HEM paper Section 3, Eq. 1 and 2.

    e_i = max(0, y_i - y_l + mu_i) for i != l, e_l = 0                                  (Eq. 1)
    sample loss = mean of the e_i >= mean_j(e_j), the mean over all C entries detached   (Eq. 2)
    batch loss  = mean of the sample losses that are > 0; exactly 0 when none is.

    ``margins``: one number (HEM-, or any shared margin) or one per class (HEM, see ``hem_margins``).
    ``margin_index='logit'`` (default) indexes a per-class margin by the competing logit i, as Eq. 1
    is written; ``'target'`` uses the target's margin mu_l for every i (LDAM-style reading).
    Per-class margins that are all equal take the shared-margin path (same result, faster).

    Follows the equations where the paper's Table 1 does not: its HEM column (mu = 0.5) prints 0.45
    for [0.6, 0.3, 0, -0.1], Eq. 1-2 give 0.2 (e = [0, 0.2, 0, 0]). Fast path: ``hem_function``.
    """

    loss_name = "hem"
    MARGIN_INDEXES = ("logit", "target")

    def __init__(self, margins, margin_index: str = "logit", ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(margin_index in self.MARGIN_INDEXES, self.loss_name,
                 f"margin_index must be one of {', '.join(self.MARGIN_INDEXES)}", margin_index)
        values = torch.as_tensor(margins, dtype=torch.float32).detach().cpu()
        _require(values.dim() <= 1 and values.numel() > 0 and bool(torch.isfinite(values).all())
                 and bool((values >= 0).all()), self.loss_name,
                 "margins must be one non-negative number or one per class", margins)
        self.margin_index = margin_index
        self.register_buffer("margins", values)
        # A single value (also all-equal per-class values) is passed as a Python float: the fast path.
        self.shared_margin = float(values.flatten()[0]) if bool((values == values.flatten()[0]).all()) else None

    def loss(self, logits, targets):
        if self.shared_margin is not None:
            return LF.high_error_margin(logits, targets, self.shared_margin, ignore_index=self.ignore_index)
        self._check_num_classes(logits, self.margins.numel())
        return LF.high_error_margin(logits, targets, self.margins, self.margin_index, self.ignore_index)

    def extra_repr(self) -> str:
        shown = self.shared_margin if self.shared_margin is not None else self.margins.tolist()
        return f"margins={shown}, margin_index={self.margin_index!r}, ignore_index={self.ignore_index}"


@_with_shapes
class FocalLoss(_LossModule):
    """Focal: -(1 - p_l)^gamma log p_l, p = softmax(y).  Lin et al. 2017; HEM paper Appendix (gamma = 2)."""

    loss_name = "focal"

    def __init__(self, gamma: float = 2.0, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(gamma) and gamma >= 0, self.loss_name, "gamma must be >= 0", gamma)
        self.gamma = float(gamma)

    def loss(self, logits, targets):
        return LF.focal(logits, targets, self.gamma, self.ignore_index)


@_with_shapes
class LabelSmoothingLoss(_LossModule):
    """LS: CE against t (1 - alpha) + alpha / C.  Szegedy et al. 2016; as F.cross_entropy(label_smoothing=alpha).

    Kornblith et al. 2021 (Eq. 2) also divide by 1 - alpha; this one, like PyTorch, does not.
    """

    loss_name = "ls"

    def __init__(self, alpha: float = 0.1, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(alpha) and 0 <= alpha <= 1, self.loss_name, "alpha must be in [0, 1]", alpha)
        self.alpha = float(alpha)

    def loss(self, logits, targets):
        return LF.label_smoothing(logits, targets, self.alpha, self.ignore_index)


@_with_shapes
class LogitPenaltyLoss(_LossModule):
    """Logit penalty: CE + beta ||y||_2^2.  Kornblith et al. 2021 ("Why do better loss functions lead to
    less transferable features?"), Section 2; beta = 10^-2.83 from their Table A.2 (CIFAR-10 and -100).
    """

    loss_name = "logit-penalty"

    def __init__(self, beta: float = 10 ** -2.83, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(beta) and beta >= 0, self.loss_name, "beta must be >= 0", beta)
        self.beta = float(beta)

    def loss(self, logits, targets):
        return LF.logit_penalty(logits, targets, self.beta, self.ignore_index)


@_with_shapes
class SigmoidLoss(_LossModule):
    """Sigmoid CE: sum_k BCE(sigmoid(y_k), t_k), one-vs-rest.  Kornblith et al. 2021, Eq. 8.

    (They also start the last layer's biases at -log C; that belongs to the model, not the loss.)
    """

    loss_name = "sigmoid"

    def loss(self, logits, targets):
        return LF.sigmoid(logits, targets, self.ignore_index)


@_with_shapes
class SquaredErrorLoss(_LossModule):
    """Squared error: (1/C) sum_k [kappa t_k (y_k - M)^2 + (1 - t_k) y_k^2].  Hui & Belkin 2020, as in
    Kornblith et al. 2021 (Eq. 9); kappa = 8, M = 0.83 from their Table A.2, CIFAR-10 column (their
    CIFAR-100 column has kappa = 6, M = 12; pass those for many classes).
    """

    loss_name = "squared"

    def __init__(self, kappa: float = 8.0, M: float = 0.83, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(kappa) and kappa > 0, self.loss_name, "kappa must be > 0", kappa)
        _require(is_finite_number(M), self.loss_name, "M must be a number", M)
        self.kappa, self.M = float(kappa), float(M)

    def loss(self, logits, targets):
        return LF.squared_error(logits, targets, self.kappa, self.M, self.ignore_index)


@_with_shapes
class EncouragingLoss(_LossModule):
    """Encouraging loss: CE + log(1 - p_l) (the "bonus", 1 - p clamped at 1e-5).  Zhao et al. 2022,
    "Well-classified examples are underestimated in classification with deep neural networks", Eq. 6.

    LE < 1 gives their conservative bonus (Eq. 7): beyond p_l = LE the bonus continues on its tangent,
    log(1 - LE) - (p_l - LE) / (1 - LE). LE = 1 (default) is the normal bonus; the paper recommends
    LE = 0.5 or 0.75 when the training hyper-parameters are kept as tuned for CE.
    """

    loss_name = "encouraging"

    def __init__(self, LE: float = 1.0, ignore_index: int = -100):
        super().__init__(ignore_index)
        _require(is_finite_number(LE) and 0 < LE <= 1, self.loss_name, "LE must be in (0, 1]", LE)
        self.LE = float(LE)

    def loss(self, logits, targets):
        return LF.encouraging(logits, targets, self.LE, self.ignore_index)
