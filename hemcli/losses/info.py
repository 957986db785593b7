"""What the loss registry records of a loss (``LossInfo``), shared by the registry and the plug-ins."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from torch import nn

from hemcli.errors import HemError

BUILT_IN = "built-in"


@dataclass(frozen=True)
class LossInfo:
    name: str
    builder: Callable[..., nn.Module]
    description: str  # one line, shown by `hem losses`
    defaults: Mapping[str, object]  # parameter name -> default
    needs_class_counts: bool = False
    source: str = BUILT_IN  # a plug-in's: package.module:NAME, or "entry point <distribution>"
    # Where a sample's loss can be exactly 0: what the batch mean divides by, "positive" (the samples
    # with positive loss: HEM) or "valid" (every sample not ignored: MM); None where it cannot be 0.
    zero_loss: str | None = None

    def __post_init__(self):
        # A read-only copy, so that a frozen record really is frozen.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


def require_counts(name: str, class_counts, why: str = "") -> tuple[float, ...]:
    if class_counts is None:
        raise HemError(f"loss {name!r} needs class_counts (training samples per class){why}")
    return class_counts
