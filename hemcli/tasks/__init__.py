"""The training tasks by name: ``TASKS`` maps each to its ``TaskInfo`` (``hemcli.tasks.info``).

Each task module keeps its heavy libraries (avalanche, smp, torchattacks) inside its functions, so
this registry imports only torch and hem's own modules.
"""
from __future__ import annotations

from hemcli.errors import unknown_name
from hemcli.tasks import classify, continual, longtail, segment
from hemcli.tasks.info import TaskInfo


def _registry(*records: TaskInfo) -> dict[str, TaskInfo]:
    found: dict[str, TaskInfo] = {}
    for record in records:
        if record.name in found:
            raise ValueError(f"task {record.name!r} registered twice")
        found[record.name] = record
    return found


TASKS: dict[str, TaskInfo] = _registry(
    TaskInfo("classify", "train a classifier, then measure it", classify.schema, classify.check, classify.setup,
             classify.run, resumable_attacks=True),
    TaskInfo("longtail", "train on a long-tailed subset, then measure it", longtail.schema, longtail.check,
             longtail.setup, longtail.run, resumable_attacks=True),
    TaskInfo("continual", "learn a stream of experiences with an Avalanche strategy", continual.schema,
             continual.check, continual.setup, continual.run, complete=continual.complete,
             path_keys=("benchmark.name", "strategy.name", "loss.name"), recipe_keys=("benchmark.name", "strategy.name"),
             # the checkpoint holds the strategy's state (hundreds of MB for Permuted-MNIST's buffer) and
             # nothing measures a finished continual run again: it goes once the result is written
             keep_checkpoint=False),
    TaskInfo("segment", "train a segmentation network with a loss per pixel", segment.schema, segment.check,
             segment.setup, segment.run, path_keys=("dataset.name", "model.encoder", "loss.name"),
             recipe_keys=("dataset.name", "model.encoder")),
)


def task_info(name: str) -> TaskInfo:
    if name not in TASKS:
        raise unknown_name("task", name, TASKS)
    return TASKS[name]
