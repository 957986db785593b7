"""Optimisers and learning-rate schedules as a recipe names them, with the paper's exponential warm-up."""
from __future__ import annotations

import math

import torch

def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    opt = cfg["optim"]
    if opt["name"] == "sgd":
        return torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"],
                               weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    cls = torch.optim.Adam if opt["name"] == "adam" else torch.optim.AdamW
    return cls(params, lr=opt["lr"], weight_decay=opt["weight_decay"])


def make_scheduler(cfg: dict, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch; with ``warmup_epochs`` W > 0 the lr factor is ``lr_factor``'s."""
    sched = cfg["schedule"]
    if sched["warmup_epochs"] > 0:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(sched, cfg["epochs"], epoch))
    if sched["name"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, sched["milestones"], sched["gamma"])
    if sched["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def lr_factor(sched: dict, epochs: int, epoch: int) -> float:
    """The lr multiplier of (0-based) ``epoch``: an exponential warm-up over the first W =
    ``warmup_epochs`` epochs, growing geometrically from ``warmup_start`` (s) to 1, s ** (1 - e / W),
    then the schedule (the paper's Swin / ViT recipe: AdamW at a
    fixed lr after a 5- or 10-epoch exponential warm-up). Multistep milestones count epochs of the
    whole run; a cosine schedule spans the epochs after the warm-up."""
    warmup = sched["warmup_epochs"]
    if epoch < warmup:
        return sched["warmup_start"] ** (1 - epoch / warmup)
    if sched["name"] == "multistep":
        return sched["gamma"] ** sum(epoch >= m for m in sched["milestones"])
    if sched["name"] == "cosine":
        span = max(epochs - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(epoch - warmup, span) / span))
    return 1.0

