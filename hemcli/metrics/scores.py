"""Post-hoc OOD scores from logits, oriented so that a higher score means "more likely known".

Each takes logits (N, C) (or (N, C, d1, ...), classes along dim 1) and returns scores (N,)
(or (N, d1, ...)) as a tensor in the logits' dtype and device. pytorch-ood's detectors return the
negatives of these (outlier scores, higher = more unknown). ``SCORES`` maps the command line's names
to the functions.
"""
from __future__ import annotations

from typing import Callable

import torch

from hemcli.errors import HemError, unknown_name

GEN_DEFAULT_TOP = 100  # the GEN paper's M (top classes kept), its ImageNet setting and OpenOOD's default


def logits_tensor(logits) -> torch.Tensor:
    """``logits`` as a floating tensor with classes along dim 1, or a one-line HemError."""
    logits = torch.as_tensor(logits)
    if logits.ndim < 2 or logits.shape[1] == 0:
        raise HemError(f"logits must have shape (N, C, ...) with C >= 1, got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise HemError(f"logits must be floating-point, got {logits.dtype}")
    return logits


def msp(logits) -> torch.Tensor:
    """Maximum softmax probability, max_c softmax(logits)_c (Hendrycks & Gimpel 2017)."""
    return torch.softmax(logits_tensor(logits), dim=1).amax(dim=1)


def max_logit(logits) -> torch.Tensor:
    """Maximum logit score (MLS), max_c logits_c (Hendrycks et al. 2022; Vaze et al. 2022)."""
    return logits_tensor(logits).amax(dim=1)


def energy(logits) -> torch.Tensor:
    """Minus the free energy at temperature 1, logsumexp_c logits_c (Liu et al. 2020)."""
    return torch.logsumexp(logits_tensor(logits), dim=1)


def gen(logits, gamma: float = 0.1, top: int | None = None) -> torch.Tensor:
    """Generalized ENtropy score (Liu, Lochman & Zach, CVPR 2023): -G_gamma(p) with
    G_gamma(p) = sum over the ``top`` largest softmax probabilities p_j of p_j^gamma (1 - p_j)^gamma.

    ``gamma`` = 0.1 and ``top`` (the paper's M) = min(C, 100) are the paper's defaults. pytorch-ood's
    ``GEN`` averages instead of summing (its score is G / M), which ranks samples the same.
    """
    logits = logits_tensor(logits)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
        raise HemError(f"gen's gamma must be > 0, got {gamma!r}")
    classes = logits.shape[1]
    top = min(classes, GEN_DEFAULT_TOP) if top is None else top
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= classes:
        raise HemError(f"gen's top must be an integer in [1, {classes}] (the number of classes), got {top!r}")
    probs = torch.softmax(logits, dim=1).topk(top, dim=1).values
    return -(probs.pow(gamma) * (1 - probs).pow(gamma)).sum(dim=1)


SCORES: dict[str, Callable[..., torch.Tensor]] = {"msp": msp, "mls": max_logit, "energy": energy, "gen": gen}


def score_fn(name: str) -> Callable[..., torch.Tensor]:
    """The score function the command line calls ``name`` (a key of ``SCORES``)."""
    try:
        return SCORES[name]
    except (KeyError, TypeError):
        raise unknown_name("score", name, SCORES) from None
