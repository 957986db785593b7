"""Every loss of the registry as an ``nn.Module`` class, to drop into a training loop of your own.

    from hemcli.losses import HEMLoss
    criterion = HEMLoss(num_classes=10, num_samples=60000)    # in place of nn.CrossEntropyLoss()
    loss = criterion(logits, targets)

Every class takes ``ignore_index`` and ``reduction`` ('none', 'mean', 'sum'; DICE: 'mean' only);
'mean' is the paper's batch reduction, the value ``build_loss`` trains with. ``LOSS_CLASSES`` maps
each built-in registry name to its class. One file per family of losses.
"""
from hemcli.losses.classes.base import LossModule
from hemcli.losses.classes.cross_entropy import (CrossEntropyLoss, LabelSmoothingLoss, LogitAdjustedLoss,
                                                 LogitNormLoss, LogitPenaltyLoss)
from hemcli.losses.classes.dice import DiceLoss
from hemcli.losses.classes.margin import HEMLoss, HighErrorMarginLoss, MultiMarginLoss, SharedMarginHEMLoss
from hemcli.losses.classes.per_class import SigmoidLoss, SquaredErrorLoss
from hemcli.losses.classes.target_probability import EncouragingLoss, FocalLoss

LOSS_CLASSES = {cls.loss_name: cls for cls in (
    CrossEntropyLoss, LogitNormLoss, LogitAdjustedLoss, DiceLoss, MultiMarginLoss, SharedMarginHEMLoss, HEMLoss,
    FocalLoss, LabelSmoothingLoss, LogitPenaltyLoss, SigmoidLoss, SquaredErrorLoss, EncouragingLoss)}

__all__ = ["LOSS_CLASSES", "LossModule", "CrossEntropyLoss", "LogitNormLoss", "LogitAdjustedLoss", "DiceLoss",
           "MultiMarginLoss", "HighErrorMarginLoss", "HEMLoss", "SharedMarginHEMLoss", "FocalLoss",
           "LabelSmoothingLoss", "LogitPenaltyLoss", "SigmoidLoss", "SquaredErrorLoss", "EncouragingLoss"]
