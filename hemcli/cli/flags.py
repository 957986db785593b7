"""The flags of the training commands, as one table: ``hem <task>`` takes a task's flags with one value
each, ``hem sweep <task>`` takes the same flags with a comma list or a range where a flag is an axis.

Every flag is shorthand for a recipe key (``hemcli.runs.spec.FLAG_KEYS``), so both commands check
its value through the recipe schema. A switch stands for a ``--set`` (``--oversample`` is
``--set sampling=oversample``).
"""
from __future__ import annotations

from dataclasses import dataclass

CLASSIFY, LONGTAIL, CONTINUAL, SEGMENT = "classify", "longtail", "continual", "segment"
ALL = (CLASSIFY, LONGTAIL, CONTINUAL, SEGMENT)
MEASURED = (CLASSIFY, LONGTAIL)  # the tasks whose runs the evaluation suite measures


@dataclass(frozen=True)
class Flag:
    name: str  # the parameter (``batch_size`` is ``--batch-size``)
    help: str
    tasks: tuple[str, ...] = ALL
    metavar: str | None = None
    switch: str | None = None  # a switch: the --set it stands for
    axis: bool = True  # hem sweep: a comma list / range makes one run per value
    task_help: tuple[tuple[str, str], ...] = ()  # a task's own wording of the help

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def help_for(self, task: str) -> str:
        return dict(self.task_help).get(task, self.help)


FLAGS = [
    Flag("dataset", "digits (default, offline), mnist, fashion-mnist, cifar10, ...; `hem datasets` lists them.",
         (CLASSIFY, LONGTAIL, SEGMENT), task_help=((SEGMENT, "shapes (default, offline), camvid, cityscapes, sbd, "
                                                             "ade20k."),)),
    Flag("arch", "lenet (default), convnet, mlp, resnet32, ...; `hem archs --dataset D` lists them.",
         (CLASSIFY, LONGTAIL, CONTINUAL), task_help=((CONTINUAL, "mlp (default; --set model.hidden=[W,...]) or a "
                                                                 "trunk of `hem archs`, e.g. resnet18."),)),
    Flag("loss", "Loss name, or package.module:NAME for your own; `hem losses` lists them."),
    Flag("epochs", "Training epochs.", metavar="INT"),
    Flag("seed", "Seed.", metavar="INT"),
    Flag("lr", "Learning rate.", metavar="FLOAT"),
    Flag("batch_size", "Batch size.", metavar="INT"),
    Flag("device", "auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps.", axis=False),
    Flag("data_root", "Data folder (default $HEM_DATA, else ./data).", axis=False),
    Flag("imbalance", "Largest / smallest class count R (f = R^(-1/(C-1))); --set longtail.factor=f gives f "
         "itself.", (LONGTAIL,), metavar="FLOAT"),
    Flag("oversample", "Every class as often as the largest, each epoch.", (LONGTAIL,),
         switch="sampling=oversample"),
    Flag("benchmark", "Benchmark, e.g. split-mnist (default split-digits).", (CONTINUAL,)),
    Flag("scenario", "task or class (Split; default task), domain (Permuted).", (CONTINUAL,)),
    Flag("strategy", "naive (default), replay, si, ewc, lwf, lfl.", (CONTINUAL,)),
    Flag("encoder", "resnet34, efficientnet-b4, densenet201, resnext50_32x4d (the paper's), resnet18 (default).",
         (SEGMENT,)),
    Flag("skip_zero_loss", "Forward and backpropagate only the samples of positive loss (hem, hem-, mm): the same "
         "update without BatchNorm, an approximation with it.", (CLASSIFY, LONGTAIL), switch="train.skip_zero_loss=true"),
    Flag("compile", "torch.compile the network (eager, with one warning, where it cannot be compiled).",
         (CLASSIFY, LONGTAIL, SEGMENT), switch="train.compile=true"),
    # how a run is measured, not what is trained: the same for every run of a sweep
    Flag("scores", "Confidence scores for rejection and DAR: msp, mls, energy, gen.", MEASURED, "LIST", axis=False),
    Flag("ood_samples", "Images per synthetic unknown set, at most per real one (10000).", MEASURED, "INT",
         axis=False),
    Flag("corrupt_samples", "At most this many images per corruption and severity.", MEASURED, "INT", axis=False),
    Flag("attack_samples", "Test images attacked by AutoAttack (the paper: 10000).", MEASURED, "INT", axis=False),
    Flag("attack_batch_size", "Images per attack batch, the step an attack resumes at (500).", MEASURED, "INT",
         axis=False),
    Flag("attack_strength", "torchattacks (its step counts, as the paper ran) or official (AutoAttack's).",
         MEASURED, axis=False),
    # where a run is logged, not what is trained (hemcli.loggers): the same for every run of a sweep
    Flag("logger", "Experiment loggers, comma-separated: csv, tensorboard, wandb, mlflow (files beside the result, "
         "or under --set log.dir=DIR; wandb offline unless configured).", ALL, "LIST", axis=False),
]


def flags_of(task: str) -> list[Flag]:
    return [flag for flag in FLAGS if task in flag.tasks]


def tasks_taking(name: str) -> tuple[str, ...]:
    return next((flag.tasks for flag in FLAGS if flag.name == name), ())
