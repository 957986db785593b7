"""``hem classify``: train a classifier with loss X on a balanced dataset, then measure it as the
recipe's ``eval`` says (clean, corrupt, ood, attack, calibration; ``hemcli.evaluate``).

``run(cfg, ...) -> dict`` is the whole task and needs no command line; the Typer command only
resolves the recipe and writes the result it returns.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from hemcli.data import DATASETS, dataset_info, load_dataset
from hemcli.device import DeviceManager, seed_everything
from hemcli.evaluate.suite import Subject, evaluate, evaluation_fields
from hemcli.errors import RunFailed
from hemcli.models import ARCHS, build_model, count_parameters
from hemcli.progress import Progress, warn
from hemcli.recipes import Field
from hemcli.results import build_result, environment
from hemcli.train import (Checkpointer, TensorBatches, accuracy, common_fields, make_optimizer,
                          make_scheduler, train_epoch)

def schema() -> dict[str, Field]:
    return {
        "task": Field("str", "classify", "the task this recipe is for", ("classify",)),
        "dataset.name": Field("str", "digits", "dataset", tuple(DATASETS)),
        "dataset.root": Field("str?", None, "data folder (default $HEM_DATA, else ./data)"),
        "dataset.download": Field("bool", True, "let torchvision download missing files"),
        "model.arch": Field("str", "lenet", "network", tuple(ARCHS)),
        **common_fields(),
        # digits has 1437 training images: batch 128 gives only 12 steps an epoch, too few.
        "epochs": Field("int", 30, "training epochs", minimum=1),
        "batch_size": Field("int", 32, "batch size", minimum=1),
        **evaluation_fields(),
    }


def check(cfg: dict) -> None:
    """The checks that need neither the data nor the device (``hem sweep`` makes them for every run)."""
    from hemcli.losses import check_loss

    loss = cfg["loss"]
    check_loss(loss["name"], num_classes=dataset_info(cfg["dataset"]["name"]).num_classes, **loss["params"])


def setup(cfg: dict):
    """Everything that can fail on bad input, done before any file is written.

    The loss's parameters are checked before the data is loaded, since loading may download.
    """
    from hemcli.losses import build_loss

    dm = DeviceManager.from_config(cfg)
    check(cfg)
    loss = cfg["loss"]
    data = load_dataset(cfg["dataset"]["name"], cfg["dataset"]["root"], cfg["dataset"]["download"])
    loss_fn = build_loss(loss["name"], num_classes=data.num_classes, class_counts=data.class_counts(),
                         **loss["params"])
    return dm, data, loss_fn


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None, attack_state=None) -> dict:
    """Train and evaluate as ``cfg`` says; returns the result record (see ``hemcli.results``).

    ``attack_state(norm) -> Path``: where an AutoAttack keeps its finished batches, so a run killed
    during its attack resumes there (``--resume``) instead of attacking again from the start."""
    seed_everything(cfg["seed"], cfg["deterministic"])
    dm, data, loss_fn = prepared or setup(cfg)
    model = dm.prepare_model(build_model(cfg["model"]["arch"], data.input_shape, data.num_classes))
    optimizer, generator = make_optimizer(cfg, model.parameters()), torch.Generator().manual_seed(cfg["seed"])
    scheduler = make_scheduler(cfg, optimizer)
    train_x, train_y = data.train_x.to(dm.device), data.train_y.to(dm.device)
    test_x, test_y = data.test_x.to(dm.device), data.test_y.to(dm.device)
    batches = TensorBatches(train_x, train_y, cfg["batch_size"], generator, cfg["augment"])
    saver = Checkpointer(checkpoint, cfg) if checkpoint else None
    history, start = [], 1
    state = saver.load() if saver and resume else None
    if saver and resume and state is None:
        warn(f"no checkpoint at {checkpoint}; starting from epoch 1")
    if state:
        saver.restore(state, model, optimizer, scheduler, generator)
        history, start = state["history"], state["epoch"] + 1
    progress = Progress(cfg["epochs"], quiet)
    progress.say(f"classify {cfg['dataset']['name']} {cfg['model']['arch']} loss={cfg['loss']['name']} "
                 f"seed={cfg['seed']} on {dm.device}" + (f", resuming at epoch {start}" if state else ""))
    began = time.perf_counter()
    for epoch in range(start, cfg["epochs"] + 1):
        tick = time.perf_counter()
        loss, train_acc = train_epoch(model, loss_fn, batches, optimizer, dm,
                                      lambda i, n: progress.batch(epoch, i, n))
        seconds = time.perf_counter() - tick
        if not math.isfinite(loss):
            kept = (f"last good checkpoint (epoch {history[-1]['epoch']}) kept at {checkpoint}"
                    if saver and history else "no checkpoint was written yet")
            raise RunFailed(f"loss became {loss} in epoch {epoch}; stopped, {kept}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        test_acc = accuracy(model, test_x, test_y, dm)
        history.append({"epoch": epoch, "train_loss": loss, "train_accuracy": train_acc,
                        "test_accuracy": test_acc, "lr": lr, "seconds": seconds})
        progress.epoch(epoch, seconds, loss=loss, train=train_acc, test=test_acc)
        if saver:
            saver.save(epoch, model, optimizer, scheduler, generator, history)
    progress.say("evaluating: " + ", ".join(cfg["eval"]))
    subject = Subject(model, data, cfg, dm, quiet=quiet, attack_state=attack_state)
    metrics, details, seconds = evaluate(subject, cfg["eval"])
    env = {**environment(dm.describe()), "parameters": count_parameters(model),
           "train_size": len(train_y), "test_size": len(test_y), "class_counts": data.class_counts()}
    timings = {"total_seconds": time.perf_counter() - began,
               "train_seconds": sum(h["seconds"] for h in history), "evaluation_seconds": seconds}
    return {**build_result(cfg, metrics, history, env, timings), "evaluation": details}
