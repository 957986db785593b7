"""Losses: the HEM paper's loss and those it is compared with, by name.

    from hemcli.losses import build_loss
    loss = build_loss("hem", num_classes=10, class_counts=[5000] * 10)
    value = loss(logits, targets)   # logits (N, C[, d1, ...]), targets (N[, d1, ...])

``LOSSES`` maps each name to its ``LossInfo``; ``functional`` holds the losses as pure functions and
``modules`` the ``nn.Module`` wrappers that ``build_loss`` returns.
"""
from hemcli.losses.margins import hem_margins
from hemcli.losses.registry import LOSSES, LossInfo, build_loss, check_loss, loss_params, register_loss

__all__ = ["LOSSES", "LossInfo", "build_loss", "check_loss", "loss_params", "register_loss", "hem_margins"]
