"""Losses: the HEM paper's loss and those it is compared with, by name or as classes.

By name, as the recipes use them (reduction 'mean', what training uses):

    from hemcli.losses import build_loss
    loss = build_loss("hem", num_classes=10, class_counts=[5000] * 10)
    value = loss(logits, targets)   # logits (N, C[, d1, ...]), targets (N[, d1, ...])

As ``nn.Module`` classes with torch's conventions (``reduction``, ``ignore_index``), for a training
loop of your own:

    from hemcli.losses import HEMLoss
    criterion = HEMLoss(num_classes=10, num_samples=60000)

``LOSSES`` maps each name to its ``LossInfo`` and ``available()`` lists the names; ``functional``
holds the losses as pure functions and ``classes`` the modules (``LOSS_CLASSES``: name -> class).
"""
from hemcli.losses.classes import (LOSS_CLASSES, CrossEntropyLoss, DiceLoss, EncouragingLoss, FocalLoss, HEMLoss,
                                   HighErrorMarginLoss, LabelSmoothingLoss, LogitAdjustedLoss, LogitNormLoss,
                                   LogitPenaltyLoss, LossModule, MultiMarginLoss, SharedMarginHEMLoss, SigmoidLoss,
                                   SquaredErrorLoss)
from hemcli.losses.margins import hem_margins
from hemcli.losses.registry import (LOSSES, LossInfo, available, build_loss, check_loss, loss_params,
                                    register_loss)

__all__ = ["LOSSES", "LossInfo", "available", "build_loss", "check_loss", "loss_params", "register_loss",
           "hem_margins", "LOSS_CLASSES", "LossModule", "CrossEntropyLoss", "LogitNormLoss", "LogitAdjustedLoss",
           "DiceLoss", "MultiMarginLoss", "HighErrorMarginLoss", "HEMLoss", "SharedMarginHEMLoss", "FocalLoss",
           "LabelSmoothingLoss", "LogitPenaltyLoss", "SigmoidLoss", "SquaredErrorLoss", "EncouragingLoss"]
