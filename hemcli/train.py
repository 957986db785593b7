"""Pieces every training task shares: recipe fields, batching on the device, optimisers,
schedules, one epoch of training, accuracy, and checkpoints that let a run resume.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from hemcli.batches import Shard, to_unit
from hemcli.device import AMP_MODES, check_device_name
from hemcli.distributed import sum_over_ranks
from hemcli.errors import HemError
from hemcli.recipes import Field
from hemcli.runs.files import write_atomic

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")
# crop_flip: batches in memory (pad 4, random crop, flip); resized_crop_flip: a set streamed from disk
AUGMENTS = ("none", "crop_flip", "resized_crop_flip")
SAMPLINGS = ("shuffle", "oversample")


def _loss_names():
    from hemcli.losses import LOSSES
    return list(LOSSES)


def common_fields() -> dict[str, Field]:
    """Recipe keys shared by the training tasks (a task adds dataset/model keys of its own)."""
    return {
        "loss.name": Field("str", "hem", "loss from the registry (hem losses)", _loss_names),
        "loss.params": Field("dict", {}, "loss hyper-parameters, e.g. {M: 2000}"),
        "optim.name": Field("str", "adam", "optimiser", OPTIMIZERS),
        "optim.lr": Field("float", 1e-3, "learning rate", minimum=0),
        "optim.momentum": Field("float", 0.9, "SGD momentum", minimum=0),
        "optim.weight_decay": Field("float", 0.0, "weight decay", minimum=0),
        "optim.nesterov": Field("bool", False, "Nesterov momentum (SGD)"),
        "schedule.name": Field("str", "constant", "learning-rate schedule", SCHEDULES),
        "schedule.milestones": Field("list[int]", [], "epochs after which multistep multiplies the lr by gamma",
                                     minimum=1),
        "schedule.gamma": Field("float", 0.1, "multistep factor", minimum=0),
        "schedule.warmup_epochs": Field("int", 0, "epochs of exponential warm-up before the schedule", minimum=0),
        "schedule.warmup_start": Field("float", 0.01, "lr factor of the warm-up's first epoch", minimum=1e-12,
                                       maximum=1),
        "epochs": Field("int", 20, "training epochs", minimum=1),
        "batch_size": Field("int", 128, "batch size", minimum=1),
        "augment": Field("str", "none", "batch augmentation", AUGMENTS),
        "sampling": Field("str", "shuffle", "shuffle: each sample once an epoch; oversample: each class as often "
                          "as the largest (random oversampling)", SAMPLINGS),
        "seed": Field("int", 0, "seed for python, numpy and torch", minimum=0),
        "device": Field("str", "auto", "auto, cpu, cuda, cuda:N or mps", check=check_device_name),
        "amp": Field("str", "none", "mixed precision on CUDA", AMP_MODES),
        "channels_last": Field("bool", False, "channels_last memory format on CUDA"),
        "deterministic": Field("bool", False, "ask torch for deterministic kernels"),
    }


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


# torchvision's Inception v3 recipe: the auxiliary head's loss counts 0.4 of the main one
AUX_LOSS_WEIGHT = 0.4


def train_epoch(model, loss_fn, batches, optimizer, dm, on_batch=None,
                ignore_index: int | None = None) -> tuple[float, float]:
    """One pass over ``batches`` of (x, y, weight); returns (mean loss, accuracy %) over every
    sample of every rank. Syncs with the device once.

    With ``ignore_index`` (segmentation: y are masks (N, H, W)) the accuracy is over the pixels that
    are not ignored, counted per batch: an epoch's masks would not fit in memory.

    ``weight`` scales the loss of a rank's share of a global batch (see ``batches.Shard``). A
    network that leaves auxiliary logits in ``aux_out`` (Inception) adds their loss, weighted by
    ``AUX_LOSS_WEIGHT``. The running totals are summed once at the end: per batch only the loss and
    the predicted classes are kept, since every extra small op shows in a small network's epoch time.
    """
    model.train()
    net = getattr(model, "module", model)  # the network itself inside DDP
    scaler = dm.grad_scaler()
    losses, sizes, predicted, labels = [], [], [], []
    for i, (x, y, weight) in enumerate(batches, 1):
        with dm.autocast():
            logits = model(dm.prepare_input(x))
            loss = loss_fn(logits, y)
            objective = loss if getattr(net, "aux_out", None) is None else (
                loss + AUX_LOSS_WEIGHT * loss_fn(net.aux_out, y))
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
            on_batch(i, len(batches))
    loss_sum = (torch.stack(losses).float() * torch.tensor(sizes, device=dm.device)).sum()
    if ignore_index is None:
        correct, counted = (torch.cat(predicted) == torch.cat(labels)).sum(), torch.tensor(sum(sizes))
    else:
        correct, counted = torch.stack(predicted).sum(), torch.stack(labels).sum()
    totals = sum_over_ranks(torch.stack([loss_sum.double(), correct.double(), counted.to(dm.device).double(),
                                         torch.tensor(float(sum(sizes)), device=dm.device).double()]))
    loss_total, correct_total, counted_total, seen = totals.tolist()
    return loss_total / seen, 100.0 * correct_total / max(counted_total, 1)


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, dm, batch_size: int = 1024) -> torch.Tensor:
    """Logits of images ``x`` (float in [0, 1], or uint8), ``batch_size`` at a time, in eval mode."""
    model.eval()
    outs = []
    for start in range(0, len(x), batch_size):
        with dm.autocast():
            outs.append(model(dm.prepare_input(to_unit(x[start:start + batch_size]))).float())
    return torch.cat(outs)


def accuracy(model, x: torch.Tensor, y: torch.Tensor, dm, shard: Shard = Shard()) -> float:
    """% correct, from the integer count (a float32 mean would print 89.73999619 for 8974 / 10000).
    Each rank of a data-parallel run predicts its ``shard`` of the images; the counts are added."""
    start, end = shard.bounds(len(y))
    correct = torch.zeros((), device=dm.device)
    if end > start:
        correct = (predict_logits(model, x[start:end], dm).argmax(1) == y[start:end]).sum()
    return 100.0 * sum_over_ranks(correct.double()).item() / len(y)


CHECKPOINT_FORMAT = "hem-checkpoint/1"
# What a hem checkpoint holds, and of which type; anything else is "not a hem checkpoint".
_CHECKPOINT_FIELDS = {"format": str, "epoch": int, "recipe": dict, "history": list, "model": dict,
                      "optimizer": dict, "scheduler": dict, "generator": torch.Tensor, "torch_rng": torch.Tensor}


def same_run(saved: dict, recipe: dict) -> bool:
    """The same condition and seed: a run may resume on another device, data folder or machine."""
    from hemcli.runs.condition import canonical, condition_of

    return (canonical(condition_of(saved)) == canonical(condition_of(recipe))
            and saved.get("seed") == recipe.get("seed"))


class Checkpointer:
    """Saves model, optimiser, schedule, RNG and history after each epoch, atomically; loads weights-only."""

    def __init__(self, path: Path, recipe: dict):
        self.path, self.recipe = path, recipe

    def save(self, epoch: int, model, optimizer, scheduler, generator, history: list) -> None:
        state = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "recipe": self.recipe, "history": history,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                 "torch_rng": torch.get_rng_state()}
        write_atomic(self.path, lambda handle: torch.save(state, handle), what="checkpoint")

    def load(self) -> dict | None:
        """The checkpoint's state, None when there is no file; a HemError for anything else."""
        if not self.path.exists():
            return None
        from hemcli.fileio import load_weights_only

        try:
            state = load_weights_only(self.path)  # a planted pickle builds nothing
        except OSError as err:
            raise self._unreadable(err.strerror or str(err)) from None
        except Exception:  # empty, truncated, another format, or a pickle that is not weights-only
            raise self._unreadable("not a hem checkpoint") from None
        if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
                and all(isinstance(state.get(key), kind) for key, kind in _CHECKPOINT_FIELDS.items())):
            raise self._unreadable("not a hem checkpoint")
        if not same_run(state["recipe"], self.recipe):
            raise HemError(f"checkpoint {self.path} was made with another recipe; "
                           "resume with the same options or pass --overwrite to start again")
        return state

    def restore(self, state: dict, model, optimizer, scheduler, generator) -> None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError):
            raise self._unreadable("not a hem checkpoint (it does not fit this model and optimiser)") from None

    def _unreadable(self, why: str) -> HemError:
        return HemError(f"cannot read checkpoint {self.path}: {why}; pass --overwrite to start again")
