"""Pieces every training task shares: recipe fields, batching on the device, optimisers,
schedules, one epoch of training, accuracy, and checkpoints that let a run resume.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from hemcli.device import AMP_MODES, check_device_name
from hemcli.errors import HemError
from hemcli.recipes import Field
from hemcli.runs.files import write_atomic

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")
AUGMENTS = ("none", "crop_flip")


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
        "epochs": Field("int", 20, "training epochs", minimum=1),
        "batch_size": Field("int", 128, "batch size", minimum=1),
        "augment": Field("str", "none", "batch augmentation", AUGMENTS),
        "seed": Field("int", 0, "seed for python, numpy and torch", minimum=0),
        "device": Field("str", "auto", "auto, cpu, cuda, cuda:N or mps", check=check_device_name),
        "amp": Field("str", "none", "mixed precision on CUDA", AMP_MODES),
        "channels_last": Field("bool", False, "channels_last memory format on CUDA"),
        "deterministic": Field("bool", False, "ask torch for deterministic kernels"),
    }


class TensorBatches:
    """Shuffled mini-batches of tensors that already live on the device (no workers, no copies)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator,
                 augment: str = "none"):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator, self.augment = generator, augment

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y), generator=self.generator).to(self.y.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.x[idx]
            yield (crop_flip(x, self.generator) if self.augment == "crop_flip" else x), self.y[idx]


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad``, and a random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
    cols = torch.where(flip, cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    opt = cfg["optim"]
    if opt["name"] == "sgd":
        return torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"],
                               weight_decay=opt["weight_decay"], nesterov=opt["nesterov"])
    cls = torch.optim.Adam if opt["name"] == "adam" else torch.optim.AdamW
    return cls(params, lr=opt["lr"], weight_decay=opt["weight_decay"])


def make_scheduler(cfg: dict, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch."""
    sched = cfg["schedule"]
    if sched["name"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, sched["milestones"], sched["gamma"])
    if sched["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def train_epoch(model, loss_fn, batches, optimizer, dm, on_batch=None) -> tuple[float, float]:
    """One pass over ``batches``; returns (mean loss, accuracy %). Syncs with the device once.

    The running totals are summed once at the end: per batch only the loss and the predicted
    classes are kept, since every extra small op shows in the epoch time of a small network.
    """
    model.train()
    scaler = dm.grad_scaler()
    losses, sizes, predicted, labels = [], [], [], []
    for i, (x, y) in enumerate(batches, 1):
        with dm.autocast():
            logits = model(dm.prepare_input(x))
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        losses.append(loss.detach())
        predicted.append(logits.detach().argmax(1))
        sizes.append(len(y))
        labels.append(y)
        if on_batch:
            on_batch(i, len(batches))
    seen = sum(sizes)
    loss_sum = (torch.stack(losses).float() * torch.tensor(sizes, device=dm.device)).sum()
    correct = (torch.cat(predicted) == torch.cat(labels)).sum()
    return loss_sum.item() / seen, 100.0 * correct.item() / seen


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, dm, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    outs = []
    for start in range(0, len(x), batch_size):
        with dm.autocast():
            outs.append(model(dm.prepare_input(x[start:start + batch_size])).float())
    return torch.cat(outs)


def accuracy(model, x: torch.Tensor, y: torch.Tensor, dm) -> float:
    """% correct, from the integer count (a float32 mean would print 89.73999619 for 8974 / 10000)."""
    return 100.0 * (predict_logits(model, x, dm).argmax(1) == y).sum().item() / len(y)


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
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
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
