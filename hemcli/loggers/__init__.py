"""Experiment loggers: a run's epochs, its final metrics and its recipe, also sent to csv,
TensorBoard, Weights & Biases or MLflow (``--logger``, recipe keys ``log.loggers`` and ``log.dir``).

The result JSON stays the record of a run; loggers are a view of it while it trains. They are how
a run is watched, not what it is: ``log.*`` keys are left out of the condition
(``hemcli.runs.condition.RUN_PREFIXES``), so a run logged or not has the same id and path.

This module is light (no backend, no torch): the recipe schema and ``hem --help`` import it. The
backends are imported only when a run asks for them (``hemcli.loggers.run``), each named with the
pip extra that brings it when it is missing. ``hemcli.loggers.run.run_logging`` opens them around
one run; ``current()`` is what the training loops send their steps to.
"""
from __future__ import annotations

import importlib.util

from hemcli.errors import HemError

# logger name -> (the module it needs, the pip extra that installs it); csv needs nothing
BACKENDS = {
    "csv": (None, None),
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
}


def check_logger_names(names: list[str]) -> None:
    """The recipe check of ``log.loggers``: known names only (whether they are installed is checked
    when a run starts: a finished run measured again on another machine needs none of them)."""
    for name in names:
        if name not in BACKENDS:
            raise HemError(f"unknown logger {name!r}; valid choices: {', '.join(BACKENDS)}")


def log_fields() -> dict:
    """The recipe keys of the loggers, shared by every training task."""
    from hemcli.recipes import Field

    return {
        "log.loggers": Field("list[str]", [], "experiment loggers: csv, tensorboard, wandb, mlflow (any subset; "
                             "wandb runs offline unless configured)", check=check_logger_names),
        "log.dir": Field("str?", None, "folder of the loggers' files, laid out like the results (null: "
                         "beside each result)"),
    }


def missing_extra(name: str) -> HemError:
    module, extra = BACKENDS[name]
    return HemError(f"--logger {name} needs the {module} package: pip install 'hem[{extra}]' "
                    "(or hem[loggers] for every logger)")


def check_installed(names) -> None:
    """A one-line HemError naming the pip extra for the first logger whose package is missing;
    looked up without importing it (``hem --dry-run`` stays quick)."""
    for name in dict.fromkeys(names):
        module = BACKENDS[name][0]
        if module is not None and importlib.util.find_spec(module) is None:
            raise missing_extra(name)


def current():
    """The ``RunLog`` of the run this process is training (one that logs nothing outside a run)."""
    from hemcli.loggers.run import active

    return active()
