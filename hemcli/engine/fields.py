"""The recipe keys every training task shares: the loss, optimiser, schedule, epochs, batches,
sampling, seed and device. A task's schema adds its dataset and model keys and may override these."""
from __future__ import annotations

from hemcli.engine.device import AMP_MODES, check_device_name
from hemcli.loggers import log_fields
from hemcli.recipes import Field

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")
# crop_flip: batches in memory (pad 4, random crop, flip); resized_crop_flip: a set streamed from disk
AUGMENTS = ("none", "crop_flip", "resized_crop_flip")
SAMPLINGS = ("shuffle", "oversample")


def _check_loss_name(name: str) -> None:
    """A built-in loss, or a plug-in (``package.module:NAME`` or an entry point), registered by this
    check: the loss a recipe names is known wherever the recipe is read, in every process."""
    from hemcli.errors import HemError, shown
    from hemcli.losses import LOSSES
    from hemcli.losses.registry import loss_names

    if LOSSES.find(name) is None:  # a plug-in that fails to load has said why
        raise HemError(f"unknown loss.name {shown(name)}; valid choices: {', '.join(loss_names())}, "
                       "or your own as package.module:NAME")


def common_fields() -> dict[str, Field]:
    """Recipe keys shared by the training tasks (a task adds dataset/model keys of its own)."""
    return {
        "loss.name": Field("str", "hem", "loss from the registry (hem losses), or package.module:NAME",
                           check=_check_loss_name),
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
        "train.skip_zero_loss": Field("bool", False, "forward and backpropagate only the samples whose loss is "
                                      "positive (hem, hem-, mm; exact without BatchNorm, an approximation with it)"),
        "train.compile": Field("bool", False, "torch.compile the network (eager, with a warning, where it cannot)"),
        **log_fields(),
    }
