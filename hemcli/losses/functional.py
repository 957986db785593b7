"""The losses as pure functions: ``loss(logits, targets, <hyper-parameters>, ignore_index, reduction)``.

Shapes: logits (N, C) or (N, C, d1, d2, ...), targets (N,) or (N, d1, d2, ...) holding class indices;
in the second form every position (pixel) is a sample. Everything works along dim 1 in the given
layout. Targets equal to ``ignore_index`` are dropped. ``reduction``: 'mean' (default, what training
uses) is the mean over the valid samples, and a batch without any gives exactly 0 with a zero gradient
(HEM: the mean over the samples with a positive loss); 'none' the per-sample losses, shaped like the
targets, 0 at ignored positions; 'sum' their sum. DICE has no per-sample value: 'mean' only.
The arithmetic is float32 for half/bfloat16 logits (AMP) and float64 for float64 logits; the modules
also switch autocast off.

Notation: y = logits, l = target class, C = number of classes, z = softmax(y), t = one-hot(l).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hemcli.errors import HemError
from hemcli.losses.hem_function import HighErrorMarginFunction
from hemcli.losses.targets import may_hold_ignored

_DICE_EPS = 1e-7  # keeps the per-class denominator finite for an empty batch (smp's DiceLoss uses the same)
_ENCOURAGING_EPS = 1e-5  # the encouraging-loss paper clamps 1 - p at 1e-5 inside its log
REDUCTIONS = ("none", "mean", "sum")
DICE_REDUCTION = "loss 'dice': its sums run over the whole batch, so it has no per-sample value; reduction"


def as_float(logits: torch.Tensor) -> torch.Tensor:
    """float32 for half/bfloat16 logits (AMP); float32 and float64 stay as they are."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def split_targets(targets: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets with ignored entries replaced by class 0, bool mask of the valid samples)."""
    valid = targets != ignore_index
    return targets.masked_fill(~valid, 0), valid


def mean_over_valid(per_sample: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_sample`` over the valid samples; exactly 0 (zero gradient) when there is none."""
    total = torch.where(valid, per_sample, 0.0).sum()
    return total / valid.sum().clamp(min=1)


def reduced(per_sample: torch.Tensor, valid: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``per_sample`` losses reduced: 'mean' as ``mean_over_valid``; 'none' them with ignored positions 0;
    'sum' their sum. The losses at ignored positions may be anything (they are masked, not trusted)."""
    if reduction == "mean":
        return mean_over_valid(per_sample, valid)
    check_reduction(reduction)
    kept = torch.where(valid, per_sample, 0.0)
    return kept if reduction == "none" else kept.sum()


def check_reduction(reduction, valid: tuple[str, ...] = REDUCTIONS, owner: str = "reduction") -> str:
    """``reduction`` if it is one of ``valid``, else a HemError naming them."""
    if not isinstance(reduction, str) or reduction not in valid:
        choices = f"one of {', '.join(map(repr, valid))}" if len(valid) > 1 else repr(valid[0])
        raise HemError(f"{owner} must be {choices}, got {reduction!r}")
    return reduction


def target_values(values: torch.Tensor, safe_targets: torch.Tensor) -> torch.Tensor:
    """values[:, l] per sample, shape (N, d1, ...)."""
    return values.gather(1, safe_targets.unsqueeze(1)).squeeze(1)


def one_hot_like(y: torch.Tensor, safe_targets: torch.Tensor) -> torch.Tensor:
    """One-hot targets in y's layout (class along dim 1)."""
    return torch.zeros_like(y).scatter_(1, safe_targets.unsqueeze(1), 1.0)


def _class_shape(y: torch.Tensor) -> tuple[int, ...]:
    """Shape that broadcasts a (C,) vector along dim 1 of y."""
    return (1, -1) + (1,) * (y.dim() - 2)


def cross_entropy(logits, targets, tau: float = 1.0, ignore_index: int = -100, reduction: str = "mean"):
    """-log softmax(y / tau)_l  (HEM paper Eq. 3-4)."""
    y = as_float(logits)
    y = y / tau if tau != 1.0 else y
    if reduction != "mean":  # torch's 'none' already gives 0 at ignored positions
        return F.cross_entropy(y, targets, ignore_index=ignore_index, reduction=check_reduction(reduction))
    if not may_hold_ignored(targets, ignore_index):
        return F.cross_entropy(y, targets)
    # Ignored targets add 0 to the sum, and the count keeps a batch without valid samples at 0
    # (the mean reduction would give 0 / 0 = NaN there).
    total = F.cross_entropy(y, targets, ignore_index=ignore_index, reduction="sum")
    return total / (targets != ignore_index).sum().clamp(min=1)


def logit_norm(logits, targets, tau: float = 0.04, eps: float = 1e-7, ignore_index: int = -100,
               reduction: str = "mean"):
    """CE of y / (tau * (||y||_2 + eps))  (Wei et al. 2022; HEM paper A.2)."""
    y = as_float(logits)
    norm = torch.linalg.vector_norm(y, dim=1, keepdim=True) + eps
    return cross_entropy(y / (norm * tau), targets, ignore_index=ignore_index, reduction=reduction)


def logit_adjusted(logits, targets, log_prior: torch.Tensor, tau: float = 1.0, ignore_index: int = -100,
                   reduction: str = "mean"):
    """CE of y + tau * log p, p_j = s_j / sum(s)  (Menon et al. 2021; HEM paper Eq. 5-6)."""
    y = as_float(logits)
    adjustment = (tau * log_prior.to(y.device, y.dtype)).view(_class_shape(y))
    return cross_entropy(y + adjustment, targets, ignore_index=ignore_index, reduction=reduction)


def dice(logits, targets, ignore_index: int = -100, reduction: str = "mean"):
    """Mean over classes c of 1 - 2 sum_b t_bc z_bc / sum_b (t_bc + z_bc)  (HEM paper Eq. 7).

    The sums run over every valid sample of the batch (and every pixel). The denominator is clamped
    at 1e-7 only so that an empty batch stays finite; that batch then returns 0. Those sums make
    the loss one value per batch, so ``reduction`` can only be 'mean'.
    """
    check_reduction(reduction, ("mean",), DICE_REDUCTION)
    y = as_float(logits)
    safe, valid = split_targets(targets, ignore_index)
    keep = valid.unsqueeze(1)
    z = torch.where(keep, y.softmax(dim=1), 0.0)
    t = torch.where(keep, one_hot_like(y, safe), 0.0)
    sum_dims = [0] + list(range(2, y.dim()))
    overlap = (t * z).sum(sum_dims)
    total = (t + z).sum(sum_dims).clamp(min=_DICE_EPS)
    per_class = 1.0 - 2.0 * overlap / total
    return torch.where(valid.any(), per_class.mean(), 0.0)


def multi_margin(logits, targets, margin: float = 1.0, ignore_index: int = -100, reduction: str = "mean"):
    """(1/C) sum_{i != l} max(0, y_i - y_l + margin)  (Crammer & Singer; HEM paper Eq. 8-9).

    Equals ``F.multi_margin_loss(y, l, margin=margin)`` for (N, C) input, and works for (N, C, ...).
    """
    y = as_float(logits)
    safe, valid = split_targets(targets, ignore_index)
    index = safe.unsqueeze(1)
    errors = (y - y.gather(1, index) + margin).clamp(min=0).scatter(1, index, 0.0)
    return reduced(errors.mean(dim=1), valid, reduction)


HEM_PATHS = ("auto", "function", "fused")


def hem_path(logits: torch.Tensor, path: str = "auto") -> str:
    """Which HEM runs: the hand-fused autograd Function (CPU, where it is the fastest) or the
    compiled plain-ops one (``fused``; CUDA). ``HEM_FUSED=0`` in the environment keeps the Function."""
    if path != "auto":
        return path
    import os

    return "fused" if logits.is_cuda and os.environ.get("HEM_FUSED", "1") != "0" else "function"


def high_error_margin(logits, targets, margins, margin_index: str = "logit", ignore_index: int = -100,
                      reduction: str = "mean", path: str = "auto"):
    """HEM (paper Eq. 1-2): per sample, the mean of the margin errors at or above that sample's mean error.

    e_i = max(0, y_i - y_l + mu_i) for i != l, e_l = 0; threshold = mean over all C entries
    (detached); sample loss = mean of the e_i >= threshold; batch loss ('mean') = mean of the sample
    losses that are > 0 (exactly 0 when none is); 'none' / 'sum' the sample losses / their sum.
    ``margins``: a float (shared, HEM-) or a (C,) tensor indexed by the competing logit
    (``margin_index='logit'``, Eq. 1) or by the target (``'target'``). Forward and backward are
    hand-fused for the CPU, see ``hem_function``; on CUDA the compiled plain-ops form of
    ``fused`` runs (``hem_path``).
    """
    if isinstance(margins, torch.Tensor):
        margins = margins.to(device=logits.device, dtype=as_float(logits).dtype)
    reduction = check_reduction(reduction)
    if hem_path(logits, path) == "fused":
        from hemcli.losses.fused import high_error_margin_fused

        loss = high_error_margin_fused(logits, targets, margins, margin_index, ignore_index, reduction)
        if loss is not None:
            return loss
    return HighErrorMarginFunction.apply(logits, targets, margins, margin_index, ignore_index, reduction)


def focal(logits, targets, gamma: float = 2.0, ignore_index: int = -100,
          reduction: str = "mean"):
    """-(1 - p_l)^gamma log p_l, p = softmax(y)  (Lin et al. 2017)."""
    safe, valid = split_targets(targets, ignore_index)
    log_p = target_values(as_float(logits).log_softmax(dim=1), safe)
    one_minus_p = -torch.expm1(log_p)  # 1 - exp(log p), precise when p is close to 1
    per_sample = -one_minus_p.pow(gamma) * log_p
    return reduced(per_sample, valid, reduction)


def label_smoothing(logits, targets, alpha: float = 0.1, ignore_index: int = -100,
                    reduction: str = "mean"):
    """CE against the smoothed targets t (1 - alpha) + alpha / C  (Szegedy et al. 2016).

    Unscaled, as ``F.cross_entropy(label_smoothing=alpha)``; Kornblith et al. (related paper, Eq. 2)
    also divide by 1 - alpha, which only rescales the loss.
    """
    per_sample = F.cross_entropy(as_float(logits), targets, ignore_index=ignore_index,
                                 label_smoothing=alpha, reduction="none")
    return reduced(per_sample, targets != ignore_index, reduction)


def logit_penalty(logits, targets, beta: float = 10 ** -2.83, ignore_index: int = -100,
                  reduction: str = "mean"):
    """CE + beta ||y||_2^2  (Kornblith et al. 2021, "logit penalty")."""
    y = as_float(logits)
    per_sample = F.cross_entropy(y, targets, ignore_index=ignore_index, reduction="none")
    per_sample = per_sample + beta * y.square().sum(dim=1)
    return reduced(per_sample, targets != ignore_index, reduction)


def sigmoid(logits, targets, ignore_index: int = -100,
            reduction: str = "mean"):
    """sum_k BCE(sigmoid(y_k), t_k), one-vs-rest  (Kornblith et al. 2021, Eq. 8)."""
    y = as_float(logits)
    safe, valid = split_targets(targets, ignore_index)
    bce = F.binary_cross_entropy_with_logits(y, one_hot_like(y, safe), reduction="none")
    return reduced(bce.sum(dim=1), valid, reduction)


def squared_error(logits, targets, kappa: float = 8.0, M: float = 0.83, ignore_index: int = -100,
                  reduction: str = "mean"):
    """(1/C) sum_k [kappa t_k (y_k - M)^2 + (1 - t_k) y_k^2]  (Hui & Belkin 2020; Kornblith et al. 2021)."""
    y = as_float(logits)
    safe, valid = split_targets(targets, ignore_index)
    index = safe.unsqueeze(1)
    target_term = kappa * (y.gather(1, index) - M).square()
    per_class = y.square().scatter(1, index, target_term)
    return reduced(per_class.mean(dim=1), valid, reduction)


def encouraging(logits, targets, LE: float = 1.0, ignore_index: int = -100,
                reduction: str = "mean"):
    """CE + bonus, bonus = log(1 - p_l) (clamped at 1e-5); for p_l > LE the bonus follows its tangent at LE.

    Zhao et al. 2022, Eq. 6 (LE = 1, normal bonus) and Eq. 7 (LE < 1, conservative bonus):
    bonus = log(1 - LE) - (p - LE) / (1 - LE) for p > LE.
    """
    safe, valid = split_targets(targets, ignore_index)
    log_p = target_values(as_float(logits).log_softmax(dim=1), safe)
    p = log_p.exp()
    bonus = torch.log(torch.clamp(1.0 - p, min=_ENCOURAGING_EPS))
    if LE < 1.0:
        tangent = (p - LE) / (LE - 1.0) + math.log(1.0 - LE)
        bonus = torch.where(p > LE, tangent, bonus)
    return reduced(bonus - log_p, valid, reduction)
