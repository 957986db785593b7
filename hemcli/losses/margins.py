"""HEM margins from the class sizes (paper, Section 3).

HEM:  mu_i = sqrt(M / (C * s_i))   one margin per class (rare classes get larger margins)
HEM-: mu   = sqrt(M / sum_i s_i)   one margin shared by all classes

With equal class sizes both give the same value, e.g. CIFAR10 (10 x 5000, M = 2000): 0.2.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from hemcli.errors import HemError

DEFAULT_M = 2000.0


def is_finite_number(value) -> bool:
    """A real, finite number; True/False do not count (a YAML `true` is no margin), nor do integers
    too large for a float (10**400)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def checked_class_counts(class_counts, num_classes: int | None = None, owner: str = "class_counts"):
    """``class_counts`` as a tuple of floats, or a HemError (naming ``owner``) saying what is wrong."""
    if isinstance(class_counts, torch.Tensor):
        class_counts = class_counts.detach().cpu().flatten().tolist()
    try:
        counts = [c.item() if hasattr(c, "item") else c for c in class_counts]
    except TypeError:
        raise HemError(f"{owner}: class counts must be a list of numbers, got {class_counts!r}") from None
    if num_classes is not None and len(counts) != num_classes:
        raise HemError(f"{owner}: got {len(counts)} class counts for {num_classes} classes")
    for count in counts:
        if not is_finite_number(count) or count <= 0:
            raise HemError(f"{owner}: every class count must be a positive number, got {count!r}")
    return tuple(float(c) for c in counts)


def hem_margins(class_counts: Sequence[float], M: float = DEFAULT_M, per_class: bool = True) -> torch.Tensor:
    """HEM margins: shape (C,) when ``per_class`` (HEM), a 0-dim tensor when shared (HEM-); float32.

    Computed in float64 and rounded once, so balanced CIFAR10 gives exactly float32(0.2).
    """
    counts = checked_class_counts(class_counts, owner="hem_margins")
    if not is_finite_number(M) or M <= 0:
        raise HemError(f"hem_margins: M must be a positive number, got {M!r}")
    counts64 = torch.tensor(counts, dtype=torch.float64)
    if per_class:
        margins = torch.sqrt(M / (len(counts) * counts64))
    else:
        margins = torch.sqrt(M / counts64.sum())
    return margins.to(torch.float32)
