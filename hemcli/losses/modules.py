"""The loss classes' former home, kept so that ``from hemcli.losses.modules import ...`` still works.

They live in ``hemcli.losses.classes`` now, one file per family; ``_LossModule`` is ``LossModule``.
"""
from hemcli.losses.classes import (CrossEntropyLoss, DiceLoss, EncouragingLoss, FocalLoss, HEMLoss,
                                   HighErrorMarginLoss, LabelSmoothingLoss, LogitAdjustedLoss, LogitNormLoss,
                                   LogitPenaltyLoss, LossModule, MultiMarginLoss, SharedMarginHEMLoss, SigmoidLoss,
                                   SquaredErrorLoss)
from hemcli.losses.classes.base import LossModule as _LossModule

__all__ = ["_LossModule", "LossModule", "CrossEntropyLoss", "LogitNormLoss", "LogitAdjustedLoss", "DiceLoss",
           "MultiMarginLoss", "HighErrorMarginLoss", "HEMLoss", "SharedMarginHEMLoss", "FocalLoss",
           "LabelSmoothingLoss", "LogitPenaltyLoss", "SigmoidLoss", "SquaredErrorLoss", "EncouragingLoss"]
