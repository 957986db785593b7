"""HEM loss (paper Eq. 1 and 2) as one autograd Function with an analytic backward.

Why not plain autograd: every elementwise op is a full pass over the logits, and autograd keeps the
float intermediates of each one alive. Here the forward makes seven passes and allocates two
logits-sized tensors (the errors, and the 0/1 mask of kept errors that the backward needs); the
backward writes the gradient in one pass into the errors' storage. Everything runs in the logits'
own layout along dim 1, so (N, C, H, W) is never permuted. See bench/bench_losses.py for timings.

Gradient (threshold detached, as the paper says): for a sample with loss L_s = mean of its kept
errors, batch loss = mean over the P positive samples, so with w_s = 1 / (P * count_s)

    dLoss/dy_i = w_s       for every kept i (a kept error of a positive sample is > 0, so its max(0, .) passes)
    dLoss/dy_l = -1 / P    (y_l enters each kept error with sign -1; e_l itself is 0 and never kept there)

and 0 everywhere else, including every sample whose loss is 0 and every ignored sample. With
reduction 'sum' the weight of sample s is 1 / count_s (and -1 for its target logit), with 'none' it is
g_s / count_s (and -g_s) for the upstream gradient g_s of that sample's loss: the same pass, scaled.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from hemcli.losses.targets import may_hold_ignored


def margin_errors(x: torch.Tensor, index: torch.Tensor, valid, margins, margin_index: str):
    """e_i = max(0, y_i - y_l + mu), e_l = 0 (Eq. 1): a fresh tensor shaped like ``x``, all 0 where not ``valid``.

    ``margins`` is a float (one shared margin) or a (C,) tensor indexed by the competing logit i
    (``margin_index='logit'``, Eq. 1) or by the target l (``'target'``, LDAM-style).
    An ignored sample gets an infinite target logit, which zeroes all its errors on the way.
    """
    target_logit = x.gather(1, index)
    if isinstance(margins, torch.Tensor) and margin_index == "logit":
        per_logit = margins.view((1, -1) + (1,) * (x.dim() - 2))
        errors = (x + per_logit).sub_(_ignored_to_inf(target_logit, valid))
    else:
        row_margin = margins[index] if isinstance(margins, torch.Tensor) else margins
        # One margin per sample folds into the sample's shift: the logits see a single subtraction.
        errors = x - _ignored_to_inf(target_logit - row_margin, valid)
    errors.clamp_(min=0)
    return errors.scatter_(1, index, 0.0)


def _ignored_to_inf(row_values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return row_values if valid is None else torch.where(valid, row_values, torch.inf)


def _target_index(targets: torch.Tensor, ignore_index: int):
    """(index (N, 1, ...) for gather/scatter, valid mask or None when no sample is ignored).

    Ignored samples point at class 0 so that gather/scatter stay in range. Without any (known for
    sure on CPU only), the common batch skips two passes.
    """
    targets = targets.unsqueeze(1)
    if not may_hold_ignored(targets, ignore_index):
        return targets, None
    valid = targets != ignore_index
    return torch.where(valid, targets, 0), valid


class HighErrorMarginFunction(torch.autograd.Function):
    """apply(logits, targets, margins, margin_index, ignore_index, reduction='mean') -> the loss.

    'mean' and 'sum': 0-dim; 'none': the per-sample losses, shaped like ``targets`` (0 where ignored).
    float32, or float64 for float64 logits.
    """

    @staticmethod
    def forward(ctx, logits, targets, margins, margin_index, ignore_index, reduction="mean"):
        # float32 for half/bfloat16 logits (float64 stays); autocast does not touch these ops.
        x = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
        index, valid = _target_index(targets, ignore_index)
        errors = margin_errors(x, index, valid, margins, margin_index)
        threshold = errors.mean(1, keepdim=True)
        # 0/1 written as float: on CPU a comparison into float and float sums run several times faster
        # than the bool equivalents, and the backward multiplies by it directly.
        kept = torch.ge(errors, threshold, out=torch.empty_like(errors))
        # The largest error is never below the mean, so count >= 1; the clamp only guards rounding.
        count = kept.sum(1, keepdim=True).clamp_(min=1)
        sample_loss = errors.mul_(kept).sum(1, keepdim=True).div_(count)
        # Sample losses are >= 0, so "!= 0" means "> 0" -- and it also keeps a NaN sample, so NaN logits
        # give a NaN loss rather than a silent 0. Samples with loss 0 add exactly 0 to the sum.
        positive = torch.ne(sample_loss, 0, out=torch.empty_like(sample_loss))
        if reduction == "mean":
            n_positive = positive.sum().clamp_(min=1)
            loss = sample_loss.sum() / n_positive
        else:  # no count to divide by: None is what save_for_backward keeps for it
            n_positive = None
            # 'none' hands out a copy: a view of sample_loss could not be modified in place by the caller.
            loss = sample_loss.sum() if reduction == "sum" else sample_loss.squeeze(1).clone()
        ctx.reduction = reduction
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(kept, count, positive, n_positive, index)
            # The errors' storage becomes the gradient: no fresh allocation (page faults) in backward.
            ctx.scratch = errors
        ctx.input_dtype = logits.dtype
        return loss

    @staticmethod
    @once_differentiable  # the gradient is piecewise constant in the logits: nothing to differentiate again
    def backward(ctx, grad_loss):
        kept, count, positive, n_positive, index = ctx.saved_tensors
        # A second backward (retain_graph=True) must not overwrite the gradient handed out by the first.
        out, ctx.scratch = ctx.scratch, None
        if ctx.reduction == "mean":
            sample_weight = positive * (grad_loss / n_positive)
        else:  # 'sum': a 0-dim grad_loss; 'none': one per sample, given the class dim ``positive`` has
            sample_weight = positive * (grad_loss if ctx.reduction == "sum" else grad_loss.unsqueeze(1))
        grad = torch.mul(kept, sample_weight / count, out=out)
        grad.scatter_(1, index, -sample_weight)
        return grad.to(ctx.input_dtype), None, None, None, None, None
