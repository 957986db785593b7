"""Samples whose loss is exactly zero: counted every epoch, and optionally left out of the backward pass.

The HEM paper (Section 6) notes that a sample whose HEM loss is 0 changes no weight, so training
could skip it. ``ZeroLoss`` does this for the losses whose per-sample value can be exactly 0
(``LossInfo.zero_loss``: hem, hem-, mm) when ``train.skip_zero_loss`` is set: each batch is first
forwarded without gradients to find the samples with positive loss, then only those are forwarded
and backpropagated.

Why the update is the same: HEM's batch loss is the mean over the positive samples ('positive'), so
the subset's loss is the batch's loss; MM's is the mean over all valid samples ('valid'), so the
subset's loss is scaled by (positive / valid). A batch without a positive sample still takes the
optimiser's step (with zero gradients), as it does unskipped: momentum and weight decay move the
weights even then. Networks whose layers see the whole batch (BatchNorm in train mode) compute their
statistics over the subset instead: an approximation. The probing forward leaves BatchNorm's running
statistics as they were.

Without skipping the share is still counted, from the training forward's own logits (no second
forward): ``zero_loss_share`` in every epoch's history row, for those losses.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn


class ZeroLoss:
    """Per-sample losses of ``loss_fn`` (a registry loss module), their zero count over an epoch, and
    the subset of a batch that training needs when ``skip`` is set.

    ``mean_over``: 'positive' (the batch loss is the mean over samples with positive loss) or
    'valid' (over every sample not ignored)."""

    def __init__(self, loss_fn: nn.Module, mean_over: str, skip: bool, ignore_index: int | None = None):
        if mean_over not in ("positive", "valid"):
            raise ValueError(f"mean_over must be 'positive' or 'valid', got {mean_over!r}")
        self.per_sample = copy.copy(loss_fn)  # shares the margins; only the reduction differs
        self.per_sample.reduction = "none"
        self.mean_over, self.skip, self.ignore_index = mean_over, skip, ignore_index
        self.zeros, self.counted = [], []

    def count(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch's per-sample losses (no gradient); their zeros are added to the epoch's count."""
        with torch.no_grad():
            per = self.per_sample(logits.detach(), y)
        valid = y != self.ignore_index if self.ignore_index is not None else torch.ones_like(per, dtype=torch.bool)
        self.zeros.append(((per == 0) & valid).sum())
        self.counted.append(valid.sum())
        return per

    def share(self) -> float | None:
        """The share of the epoch's samples whose loss was exactly 0; resets the count."""
        if not self.counted:
            return None
        zeros, counted = torch.stack(self.zeros).sum().item(), torch.stack(self.counted).sum().item()
        self.zeros, self.counted = [], []
        return zeros / max(counted, 1)

    def positive_subset(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        """(logits of the whole batch from a gradient-free forward, indices of the samples with positive
        loss, the factor that turns the subset's loss into the batch's)."""
        with torch.no_grad(), frozen_batch_norm(model):
            logits = model(x)
        per = self.count(logits, y)
        keep = (per != 0).nonzero().flatten()  # a NaN loss is kept: it must still stop the run
        if self.mean_over == "positive":
            factor = 1.0
        else:
            valid = (y != self.ignore_index).sum() if self.ignore_index is not None else len(y)
            factor = len(keep) / max(int(valid), 1)
        return logits, keep, factor


@contextmanager
def frozen_batch_norm(model: nn.Module):
    """BatchNorm layers keep their running statistics (momentum 0) but still normalise by the batch's."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [(m, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def check_skip_zero_loss(cfg: dict, per_pixel: bool = False) -> None:
    """A HemError before any work where ``train.skip_zero_loss`` cannot apply: a loss that is never
    exactly 0, or per-pixel losses (an image is one forward, whatever its pixels' losses)."""
    from hemcli.errors import HemError
    from hemcli.losses import LOSSES

    if not cfg.get("train", {}).get("skip_zero_loss"):
        return
    if per_pixel:
        raise HemError("train.skip_zero_loss skips samples of one label each (hem classify, hem longtail); "
                       "a segmentation loss is per pixel")
    name = cfg["loss"]["name"]
    if LOSSES[name].zero_loss is None:
        able = ", ".join(loss for loss, info in LOSSES.items() if info.zero_loss)
        raise HemError(f"train.skip_zero_loss needs a loss whose per-sample value can be exactly 0 ({able}); "
                       f"loss {name!r} is never 0")


def zero_loss_for(loss_fn, loss_name: str, skip: bool, ignore_index: int | None = None) -> ZeroLoss | None:
    """The counter for ``loss_name`` when its per-sample value can be exactly 0 (None for the others
    and for plug-ins); ``skip``: train on the positive ones only (checked by ``check_skip_zero_loss``)."""
    from hemcli.losses import LOSSES

    mean_over = LOSSES[loss_name].zero_loss
    if mean_over is None or not hasattr(loss_fn, "reduction"):
        return None
    return ZeroLoss(loss_fn, mean_over, skip, ignore_index)
