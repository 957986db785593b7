"""HEM (paper Eq. 1-2) in plain differentiable torch ops, for ``torch.compile`` to fuse on CUDA.

Why a second formulation: ``hem_function.HighErrorMarginFunction`` is hand-fused for the CPU (seven
passes, an analytic backward), but on a GPU each of its passes is its own kernel launch over the
logits (issue 29 measured its forward+backward at 3.3x ``F.cross_entropy`` at 512x1000 on an H200).
Written without in-place ops, data-dependent branches or a custom autograd Function, the same
equations compile (inductor) into a few fused kernels, and autograd derives the backward.

The gradient is the hand-written one's: the threshold and the kept mask are detached (the paper's
detached mean), and a sample whose loss is 0 passes no gradient at all: each of its errors is 0 after
the clamp, whose gradient is 0 at and below the kink (tested with an error exactly on it).

``high_error_margin_fused`` is selected by ``functional.high_error_margin`` for CUDA logits
(``hem_path``); where compilation is unavailable it warns once and the hand-written Function runs.
"""
from __future__ import annotations

import torch

BACKEND = "inductor"  # torch.compile's; bench/gpu_check.py --tiny sets "eager" (traces, generates no code)
_COMPILED = {}
_FAILED: list[str] = []


def hem_eager(logits: torch.Tensor, targets: torch.Tensor, margins, margin_index: str = "logit",
              ignore_index: int = -100, reduction: str = "mean") -> torch.Tensor:
    """The HEM loss of ``functional.high_error_margin``, as plain ops (uncompiled: a reference)."""
    x = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    valid = targets != ignore_index
    index = torch.where(valid, targets, 0).unsqueeze(1)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if isinstance(margins, torch.Tensor):
        margins = margins.to(device=x.device, dtype=x.dtype)
        mu = margins.view(shape) if margin_index == "logit" else margins[index]
    else:
        mu = margins
    errors = (x - x.gather(1, index) + mu).clamp(min=0)
    classes = torch.arange(x.shape[1], device=x.device).view(shape)
    errors = errors.masked_fill(classes == index, 0.0)  # e_l = 0
    errors = errors * valid.unsqueeze(1)
    with torch.no_grad():
        kept = (errors >= errors.mean(1, keepdim=True)).to(x.dtype)
        count = kept.sum(1).clamp(min=1)
    sample = (errors * kept).sum(1) / count
    positive = (sample != 0).detach()  # NaN counts as positive: NaN logits give a NaN loss
    if reduction == "none":
        return sample
    if reduction == "sum":
        return sample.sum()
    return sample.sum() / positive.sum().clamp(min=1)


def high_error_margin_fused(logits, targets, margins, margin_index: str = "logit", ignore_index: int = -100,
                            reduction: str = "mean"):
    """``hem_eager`` compiled (once per process and reduction); None where compilation failed."""
    if _FAILED:
        return None
    compiled = _COMPILED.get("hem")
    if compiled is None:
        compiled = _COMPILED["hem"] = torch.compile(hem_eager, backend=BACKEND)
    try:
        return compiled(logits, targets, margins, margin_index, ignore_index, reduction)
    except Exception as err:  # no compiler, an unsupported platform: eager from now on, said once
        from hemcli.progress import warn

        _FAILED.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        warn(f"the fused HEM kernel could not be compiled ({_FAILED[0]}); HEM runs unfused")
        return None
