"""The training loop every task shares: ``fit`` and the epoch it repeats, ``train_epoch``.

``fit(build, cfg, dm, ...)`` owns what every training run does in the same order: seed (before
anything is built, so the initial weights are the seed's), build the task's parts, the optimiser and
the schedule, resume from the checkpoint, then per epoch train, step the schedule, ask the task's
``measure`` callback for the epoch's numbers, report progress, checkpoint and send the epoch's
history row to the run's experiment loggers (``hemcli.loggers``). What differs between
tasks -- the network, its batches, what an epoch measures -- is in the ``TrainParts`` the task's
``build(generator)`` returns. The evaluation after the last epoch is the task's.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hemcli.engine.checkpoint import Checkpointer, identical
from hemcli.engine.device import seed_everything
from hemcli.engine.distributed import sum_over_ranks
from hemcli.engine.optim import make_optimizer, make_scheduler
from hemcli.engine.compiled import compiled_or_eager
from hemcli.engine.zero_loss import ZeroLoss, zero_loss_for
from hemcli.errors import RunFailed
from hemcli.loggers import current as current_log
from hemcli.progress import Progress, warn


@dataclass
class TrainParts:
    """What a task trains, built after ``fit`` has seeded.

    ``net`` is checkpointed and measured; ``model`` is what the batches go through (a DDP wrapper of
    ``net``; ``net`` itself by default). ``measure(net) -> {history key: value}`` runs after every
    epoch; ``shown`` maps those keys (and ``train_metric``) to their names on the progress line.
    ``rank``: only rank 0 of a data-parallel run checkpoints and reports."""

    net: nn.Module
    loss_fn: Callable
    batches: object  # iterable of (x, y, weight) with len(); hemcli.engine.batches
    heading: str
    measure: Callable[[nn.Module], dict] = lambda net: {}
    shown: dict = field(default_factory=dict)
    train_metric: str = "train_accuracy"
    model: nn.Module | None = None
    ignore_index: int | None = None
    rank: int = 0


@dataclass
class Fitted:
    parts: TrainParts
    history: list
    began: float  # perf_counter when the first epoch of this process started


def fit(build: Callable[[torch.Generator], TrainParts], cfg: dict, dm, checkpoint: Path | None = None,
        resume: bool = False, quiet: bool = False, same_run: Callable[[dict, dict], bool] = identical) -> Fitted:
    """Train as ``cfg`` says (``epochs``, ``optim``, ``schedule``, ``seed``); ``same_run(saved recipe,
    cfg)`` decides whether a checkpoint at ``checkpoint`` belongs to this run."""
    seed_everything(cfg["seed"], cfg["deterministic"])
    generator = torch.Generator().manual_seed(cfg["seed"])  # the batches' order and augmentation
    parts = build(generator)
    train = cfg.get("train", {})
    zero = zero_loss_for(parts.loss_fn, cfg["loss"]["name"], train.get("skip_zero_loss", False),
                         parts.ignore_index)
    model = parts.model or parts.net
    model = compiled_or_eager(model) if train.get("compile") else model
    optimizer = make_optimizer(cfg, parts.net.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    saver = Checkpointer(checkpoint, cfg, same_run) if checkpoint else None
    state = saver.load() if saver and resume else None
    if saver and resume and state is None and parts.rank == 0:
        warn(f"no checkpoint at {checkpoint}; starting from epoch 1")
    history, start = [], 1
    if state:
        saver.restore(state, parts.net, optimizer, scheduler, generator)
        history, start = state["history"], state["epoch"] + 1
    progress = Progress(cfg["epochs"], quiet or parts.rank != 0)
    progress.say(parts.heading + (f", resuming at epoch {start}" if state else ""))
    run_log = current_log()  # the run's experiment loggers (none outside hem's runs)
    run_log.begin(history)
    began = time.perf_counter()
    for epoch in range(start, cfg["epochs"] + 1):
        progress.start_epoch(epoch)
        tick = time.perf_counter()
        loss, train_metric = train_epoch(model, parts.loss_fn, parts.batches, optimizer, dm,
                                         lambda i, n, size: progress.batch(epoch, i, n, size),
                                         ignore_index=parts.ignore_index, zero=zero)
        seconds = time.perf_counter() - tick
        if not math.isfinite(loss):
            kept = (f"last good checkpoint (epoch {history[-1]['epoch']}) kept at {checkpoint}"
                    if saver and history else "no checkpoint was written yet")
            raise RunFailed(f"loss became {loss} in epoch {epoch}; stopped, {kept}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        share = {} if zero is None else {"zero_loss_share": zero.share()}
        history.append({"epoch": epoch, "train_loss": loss, parts.train_metric: train_metric, **share,
                        **parts.measure(parts.net), "lr": lr, "seconds": seconds})
        progress.epoch(epoch, seconds, loss=loss, **{name: history[-1][key] for key, name in parts.shown.items()
                                                     if history[-1].get(key) is not None})
        if saver and parts.rank == 0:
            saver.save(epoch, parts.net, optimizer, scheduler, generator, history)
        run_log.step(epoch, history[-1])  # after the checkpoint: a resumed run logs no epoch twice
    return Fitted(parts, history, began)

# torchvision's Inception v3 recipe: the auxiliary head's loss counts 0.4 of the main one
AUX_LOSS_WEIGHT = 0.4


def train_epoch(model, loss_fn, batches, optimizer, dm, on_batch=None,
                ignore_index: int | None = None, zero: ZeroLoss | None = None) -> tuple[float, float]:
    """One pass over ``batches`` of (x, y, weight); returns (mean loss, accuracy %) over every
    sample of every rank. Syncs with the device once. ``on_batch(i, batches, images)`` after batch i.

    With ``ignore_index`` (segmentation: y are masks (N, H, W)) the accuracy is over the pixels that
    are not ignored, counted per batch: an epoch's masks would not fit in memory.

    ``weight`` scales the loss of a rank's share of a global batch (see ``batches.Shard``). A
    network that leaves auxiliary logits in ``aux_out`` (Inception) adds their loss, weighted by
    ``AUX_LOSS_WEIGHT``. ``zero`` counts the samples of zero loss, and with ``zero.skip`` trains on
    the others only (``engine.zero_loss``). The running totals are summed once at the end: per batch
    only the loss and the predicted classes are kept, since every extra small op shows in a small
    network's epoch time.
    """
    model.train()
    net = getattr(model, "module", model)  # the network itself inside DDP
    net = getattr(net, "eager", net)  # inside compiled_or_eager
    scaler = dm.grad_scaler()
    skip = zero is not None and zero.skip
    losses, sizes, predicted, labels = [], [], [], []
    for i, (x, y, weight) in enumerate(batches, 1):
        x = dm.prepare_input(x)
        with dm.autocast():
            if skip:  # the whole batch without gradients, then only its samples of positive loss
                logits, keep, factor = zero.positive_subset(model, x, y)
                loss, objective = _subset_loss(model, net, loss_fn, x, y, keep, factor)
            else:
                logits = model(x)
                loss = loss_fn(logits, y)
                objective = _with_aux(net, loss_fn, loss, y)
        if zero is not None and not skip:
            zero.count(logits, y)
        objective = objective * weight if weight != 1 else objective
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(objective).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            objective.backward()
            optimizer.step()
        losses.append(loss.detach())
        sizes.append(len(y))
        if ignore_index is None:
            predicted.append(logits.detach().argmax(1))
            labels.append(y)
        else:  # (right pixels, counted pixels) of the batch
            counted = y != ignore_index
            predicted.append(((logits.detach().argmax(1) == y) & counted).sum())
            labels.append(counted.sum())
        if on_batch:
            on_batch(i, len(batches), len(y))
    loss_sum = (torch.stack(losses).float() * torch.tensor(sizes, device=dm.device)).sum()
    if ignore_index is None:
        correct, counted = (torch.cat(predicted) == torch.cat(labels)).sum(), torch.tensor(sum(sizes))
    else:
        correct, counted = torch.stack(predicted).sum(), torch.stack(labels).sum()
    totals = sum_over_ranks(torch.stack([loss_sum.double(), correct.double(), counted.to(dm.device).double(),
                                         torch.tensor(float(sum(sizes)), device=dm.device).double()]))
    loss_total, correct_total, counted_total, seen = totals.tolist()
    return loss_total / seen, 100.0 * correct_total / max(counted_total, 1)


def _with_aux(net, loss_fn, loss, y):
    """The objective: ``loss`` and, for a network with auxiliary logits, their weighted loss."""
    aux = getattr(net, "aux_out", None)
    return loss if aux is None else loss + AUX_LOSS_WEIGHT * loss_fn(aux, y)


def _subset_loss(model, net, loss_fn, x, y, keep, factor: float):
    """(the batch's loss, the objective) from the samples ``keep`` indexes, scaled by ``factor``
    (``ZeroLoss.positive_subset``); with none, zeros that still reach every weight, so that the
    optimiser steps as it does on a batch of zero loss (momentum, weight decay)."""
    if len(keep) == 0:
        zero = sum(p.sum() * 0.0 for p in net.parameters())
        return zero.detach(), zero
    sub_y = y[keep]
    loss = loss_fn(model(x[keep]), sub_y)
    return loss * factor, _with_aux(net, loss_fn, loss, sub_y) * factor

