"""What every loss class shares: input checks, autocast off, ``ignore_index`` and ``reduction``, and
the common part of the docstrings (the ``ignore_index`` and ``reduction`` arguments and the shapes)."""
from __future__ import annotations

import inspect
import textwrap

import torch
from torch import nn

from hemcli.errors import HemError
from hemcli.losses.functional import REDUCTIONS, check_reduction

PLAIN_MEAN = ("the mean over the samples whose target is not ``ignore_index``: ``'none'`` summed and "
              "divided by their number; a batch with none gives exactly 0 (torch's losses: NaN)")

IGNORE_INDEX = ("a target value that is ignored: those samples (pixels) add nothing to the loss and get "
                "a zero gradient. Default: -100.")
REDUCTION = "{choices}. {meanings} Default: ``'mean'``, the paper's batch reduction, which training uses: {mean}."
ALL_REDUCTIONS = ("``'none'``: the per-sample losses, 0 at ignored positions; ``'sum'``: their sum; "
                  "``'mean'``: see below.")

SHAPES = """
    Shape:
        - Input: :math:`(N, C)` or :math:`(N, C, d_1, d_2, ...)` logits, float (half and bfloat16
          are computed in float32); in the second form every position (pixel) is a sample.
        - Target: :math:`(N)` or :math:`(N, d_1, d_2, ...)`, the targets: integer class indices
          in :math:`[0, C)` or ``ignore_index``.
        - Output: a scalar (float32, float64 for float64 logits){per_sample}.
"""
PER_SAMPLE_OUTPUT = "; with ``reduction='none'``\n          the shape of the target"


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def documented(cls):
    """Append the ``ignore_index`` and ``reduction`` arguments and the shapes to a loss class's docstring.

    The class's own docstring ends with its ``Args:`` section (or has none); ``ARGS`` is appended to
    it, ``MEAN`` says what 'mean' is for the class, ``REDUCTIONS`` which reductions it takes.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    doc = "\n".join("    " + line if line else "" for line in doc.splitlines()).strip()
    if "\n    Args:" not in doc:
        doc += "\n\n    Args:"
    doc += cls.ARGS.rstrip()
    choices = " | ".join(f"``{r!r}``" for r in cls.REDUCTIONS)
    note = cls.REDUCTION_NOTE
    meanings = ALL_REDUCTIONS if len(cls.REDUCTIONS) > 1 else note[:1].upper() + note[1:] + "."
    reduction = REDUCTION.format(choices=choices, meanings=meanings, mean=cls.MEAN)
    cls.__doc__ = "\n".join([doc, _arg("ignore_index (int, optional)", IGNORE_INDEX),
                             _arg("reduction (str, optional)", reduction)])
    cls.__doc__ += "\n" + SHAPES.format(per_sample=PER_SAMPLE_OUTPUT if "none" in cls.REDUCTIONS else "")
    return cls


def _arg(name: str, text: str) -> str:
    """One argument of an ``Args:`` section, wrapped as the hand-written ones are."""
    return textwrap.fill(text, 100, initial_indent=f"        {name}: ", subsequent_indent=" " * 12,
                         break_on_hyphens=False)


def require(ok: bool, loss: str, what: str, value) -> None:
    if not ok:
        raise HemError(f"loss {loss!r}: {what}, got {value!r}")


class LossModule(nn.Module):
    """Checks the shapes, switches autocast off and calls ``self.loss(logits, targets)``.

    A subclass implements ``loss`` for ``self.reduction`` (one of ``REDUCTIONS``, checked here).
    """

    loss_name = "?"
    REDUCTIONS = REDUCTIONS
    REDUCTION_NOTE = ""  # why a loss takes fewer reductions than REDUCTIONS
    MEAN = PLAIN_MEAN  # what 'mean' is, for the docstring
    ARGS = ""  # arguments described alike for several classes, appended to the class's own

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        require(isinstance(ignore_index, int) and not isinstance(ignore_index, bool), self.loss_name,
                "ignore_index must be an integer", ignore_index)
        owner = f"loss {self.loss_name!r}: " + (f"{self.REDUCTION_NOTE.rstrip('.')}; " if self.REDUCTION_NOTE else "")
        self.ignore_index = ignore_index
        self.reduction = check_reduction(reduction, self.REDUCTIONS, owner + "reduction")

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
