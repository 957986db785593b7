"""``TaskInfo``: what hem needs to know of a training task, as one frozen record per task.

``hemcli.tasks.TASKS`` maps each name to its record; ``hemcli.runs`` plans, checks, trains and
names runs through these fields only, so a reader sees here every function a task must have.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def as_resolved(cfg: dict) -> dict:
    """The resolved recipe as it is (a task with nothing to fill in)."""
    return cfg


@dataclass(frozen=True)
class TaskInfo:
    """A training task: ``hem <name>``.

    schema() -> {dotted key: Field}: its recipe keys. complete(cfg) -> cfg: fills in what a default
    leaves open (continual's scenario), so that two spellings of one run are one condition.
    check(cfg): every check that needs neither data nor device (``hem sweep`` runs it for every run).
    setup(cfg) -> prepared: loads and checks the data, builds the loss; nothing written.
    run(cfg, checkpoint=, resume=, quiet=, prepared=[, attack_state=]) -> result record (None on a
    data-parallel rank other than 0). path_keys: the recipe keys naming the result's folders;
    recipe_keys: those naming its paper recipe (``<a>-<b>.yaml``). keep_checkpoint: the checkpoint stays
    beside the result (``hem evaluate``/``hem attack`` measure it again). resumable_attacks: ``run``
    takes ``attack_state(norm) -> Path``, where an AutoAttack keeps its finished batches.
    """

    name: str
    description: str
    schema: Callable[[], dict]
    check: Callable[[dict], None]
    setup: Callable[[dict], object]
    run: Callable[..., dict | None]
    complete: Callable[[dict], dict] = as_resolved
    path_keys: tuple[str, ...] = ("dataset.name", "model.arch", "loss.name")
    recipe_keys: tuple[str, ...] = ("dataset.name", "model.arch")
    keep_checkpoint: bool = True
    resumable_attacks: bool = False
