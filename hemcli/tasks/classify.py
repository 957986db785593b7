"""``hem classify``: train a classifier with loss X on a balanced dataset, then measure it as the
recipe's ``eval`` says (clean, shots, corrupt, ood, attack, calibration; ``hemcli.evaluation``).

``run(cfg, ...) -> dict`` is the whole task and needs no command line; the Typer command only
resolves the recipe and writes the result it returns.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.utils.data

from hemcli.data import DATASETS, StreamData, dataset_info, limited, load_dataset
from hemcli.engine import distributed
from hemcli.engine.batches import LoaderBatches, TensorBatches
from hemcli.engine.device import DeviceManager
from hemcli.engine.fields import common_fields
from hemcli.engine.loop import TrainParts, fit
from hemcli.engine.predict import accuracy
from hemcli.errors import HemError
from hemcli.evaluation.suite import Subject, evaluate, evaluation_fields
from hemcli.models import ARCHS, build_model, count_parameters
from hemcli.progress import Progress
from hemcli.recipes import Field
from hemcli.runs.record import build_result, environment

def schema() -> dict[str, Field]:
    return {
        "task": Field("str", "classify", "the task this recipe is for", ("classify",)),
        "dataset.name": Field("str", "digits", "dataset", tuple(DATASETS)),
        "dataset.root": Field("str?", None, "data folder (default $HEM_DATA, else ./data)"),
        "dataset.download": Field("bool", True, "let torchvision download missing files"),
        "dataset.limit": Field("int?", None, "use at most this many images of each split (smoke runs)",
                               minimum=1),
        "dataset.workers": Field("int", 2, "DataLoader workers of a set streamed from disk (imagenet)",
                                 minimum=0),
        "model.arch": Field("str", "lenet", "network", tuple(ARCHS)),
        "model.pretrained": Field("bool", False, "start from torchvision's ImageNet weights (downloads)"),
        **common_fields(),
        # digits has 1437 training images: batch 128 gives only 12 steps an epoch, too few.
        "epochs": Field("int", 30, "training epochs", minimum=1),
        "batch_size": Field("int", 32, "batch size", minimum=1),
        **evaluation_fields(),
    }


# The evaluations a set streamed from disk can have: those that need only the clean test logits
FROM_LOGITS = ("clean", "shots", "calibration")


def check(cfg: dict) -> None:
    """The checks that need neither the data nor the device (``hem sweep`` makes them for every run)."""
    from hemcli.engine.zero_loss import check_skip_zero_loss
    from hemcli.evaluation.suite import evaluation_names
    from hemcli.losses import check_loss
    from hemcli.models import ARCHS

    loss, info = cfg["loss"], dataset_info(cfg["dataset"]["name"])
    check_loss(loss["name"], num_classes=info.num_classes, **loss["params"])
    check_skip_zero_loss(cfg)
    reason = ARCHS[cfg["model"]["arch"]].misfit(info.input_shape)
    if reason:
        raise HemError(f"{reason}; dataset {info.name} has {info.input_shape[-2]}x{info.input_shape[-1]} "
                       f"images (hem archs --dataset {info.name} lists those that fit)")
    if cfg["augment"] not in info.augments:
        raise HemError(f"augment {cfg['augment']!r} does not apply to dataset {info.name}; "
                       f"valid choices: {', '.join(info.augments)}")
    others = [name for name in evaluation_names(cfg["eval"]) if name not in FROM_LOGITS]
    if info.streamed and others:
        raise HemError(f"dataset {info.name} streams from disk, so it is measured from its test logits only "
                       f"({', '.join(FROM_LOGITS)}); drop --eval {','.join(others)}")


def setup(cfg: dict, reshape=None):
    """Everything that can fail on bad input, done before any file is written.

    The loss's parameters are checked before the data is loaded, since loading may download;
    pretrained weights are fetched here too, so a failed download leaves nothing behind.
    ``reshape(data) -> data`` changes the training set before the loss sees its class counts (the
    long-tailed subset of ``hem longtail``).
    """
    from hemcli.losses import build_loss
    from hemcli.models import fetch_pretrained

    dm = DeviceManager.from_config(cfg)
    check(cfg)
    if cfg["model"]["pretrained"]:
        fetch_pretrained(cfg["model"]["arch"])
    loss = cfg["loss"]
    data = load_dataset(cfg["dataset"]["name"], cfg["dataset"]["root"], cfg["dataset"]["download"],
                        augment=cfg["augment"])
    data = limited(reshape(data) if reshape else data, cfg["dataset"]["limit"])
    loss_fn = build_loss(loss["name"], num_classes=data.num_classes, class_counts=data.class_counts(),
                         **loss["params"])
    from hemcli.evaluation.suite import preflight
    preflight(cfg, data)  # the files the evaluations will read, checked before any folder is made
    return dm, data, loss_fn


def run(cfg: dict, checkpoint: Path | None = None, resume: bool = False, quiet: bool = False,
        prepared=None, attack_state=None) -> dict | None:
    """Train and evaluate as ``cfg`` says; returns the result record (see ``hemcli.runs.record``), or
    None on the ranks other than 0 of a data-parallel run (``hemcli.engine.distributed``).

    ``attack_state(norm) -> Path``: where an AutoAttack keeps its finished batches, so a run killed
    during its attack resumes there (``--resume``) instead of attacking again from the start."""
    from hemcli.runs.condition import same_run

    dm, data, loss_fn = prepared or setup(cfg)

    def build(generator: torch.Generator) -> TrainParts:
        shard = distributed.start(dm.device)
        net = dm.prepare_model(build_model(cfg["model"]["arch"], data.input_shape, data.num_classes,
                                           pretrained=cfg["model"]["pretrained"]))
        heading = (f"{cfg['task']} {cfg['dataset']['name']} {cfg['model']['arch']} loss={cfg['loss']['name']} "
                   f"seed={cfg['seed']} on {dm.device}" + (f" x{shard.world} processes" if shard.world > 1 else ""))
        return TrainParts(net, loss_fn, training_batches(data, cfg, dm, generator, shard), heading,
                          measure=lambda trained: {"test_accuracy": test_accuracy(trained, data, dm, shard, cfg)},
                          shown={"train_accuracy": "train", "test_accuracy": "test"},
                          model=distributed.wrap(net, dm.device), rank=shard.rank)

    fitted = fit(build, cfg, dm, checkpoint, resume, quiet, same_run)
    if fitted.parts.rank != 0:
        return None
    return _measured(fitted.parts.net, data, cfg, dm, quiet, attack_state, fitted.history, fitted.began)


def _measured(net, data, cfg, dm, quiet, attack_state, history, began) -> dict:
    """The trained network measured as ``cfg["eval"]`` says, as a result record."""
    progress = Progress(cfg["epochs"], quiet)
    progress.say("evaluating: " + ", ".join(cfg["eval"]))
    subject = Subject(net, data, cfg, dm, quiet=quiet, attack_state=attack_state)
    if isinstance(data, StreamData):
        subject.test_logits = streamed_logits(net, data.test, dm, cfg)
    metrics, details, seconds = evaluate(subject, cfg["eval"])
    env = {**environment(dm.describe()), "parameters": count_parameters(net), "processes": distributed.env_shard().world,
           "train_size": len(data.train_y), "test_size": len(data.test_y), "class_counts": data.class_counts()}
    timings = {"total_seconds": time.perf_counter() - began,
               "train_seconds": sum(h["seconds"] for h in history), "evaluation_seconds": seconds}
    return {**build_result(cfg, metrics, history, env, timings), "evaluation": details}


def training_batches(data, cfg: dict, dm, generator: torch.Generator, shard):
    """Device-resident batches for a set in memory, a DataLoader stream for one read from disk."""
    if isinstance(data, StreamData):
        return LoaderBatches(data.train, cfg["batch_size"], generator, dm.device, cfg["dataset"]["workers"], shard,
                             balanced=cfg["sampling"] == "oversample")
    return TensorBatches(data.train_x.to(dm.device), data.train_y.to(dm.device), cfg["batch_size"], generator,
                         cfg["augment"], shard, balanced=cfg["sampling"] == "oversample")


def test_accuracy(net, data, dm, shard, cfg: dict) -> float:
    """% of the test set classified correctly, each rank measuring its share."""
    if isinstance(data, StreamData):
        start, end = shard.bounds(len(data.test))
        part = torch.utils.data.Subset(data.test, range(start, end))
        labels = data.test_y[start:end].to(dm.device)
        correct = (streamed_logits(net, part, dm, cfg).to(dm.device).argmax(1) == labels).sum().double()
        return 100.0 * distributed.sum_over_ranks(correct).item() / len(data.test)
    return accuracy(net, data.test_x.to(dm.device), data.test_y.to(dm.device), dm, shard)


@torch.no_grad()
def streamed_logits(net, dataset, dm, cfg: dict) -> torch.Tensor:
    """Logits (on the CPU) of every image of ``dataset``, in order, read by DataLoader workers."""
    from torch.utils.data import DataLoader

    net.eval()
    loader = DataLoader(dataset, batch_size=cfg["batch_size"], num_workers=cfg["dataset"]["workers"],
                        pin_memory=dm.device.type == "cuda")
    outs = []
    for x, _ in loader:
        with dm.autocast():
            outs.append(net(dm.prepare_input(x.to(dm.device, non_blocking=True))).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0, 0)
