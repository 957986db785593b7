"""What every logger backend is told: the run (``RunInfo``) and its steps (``Backend``'s methods)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunInfo:
    """One run as the loggers name it.

    ``name``: ``<condition label>-seed<N>``, what a tracker lists; ``group``: the condition's folder
    (``classify/digits/lenet/hem/base--<id>``), shared by its seeds; ``config``: the resolved recipe;
    ``stem``: ``<log dir>/<result path without .json>``, where the run's own files begin; ``root``:
    the log dir, for what the runs share (MLflow's store)."""

    name: str
    group: str
    task: str
    seed: int
    condition_id: str
    config: dict
    stem: Path
    root: Path


def numbers(values: dict) -> dict[str, float]:
    """The values a tracker can plot: numbers (not bools, not None, not lists), as floats."""
    return {key: float(value) for key, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def finite(values: dict) -> dict[str, float]:
    """``numbers`` without NaN and infinities (MLflow refuses them)."""
    return {key: value for key, value in numbers(values).items() if math.isfinite(value)}


class Backend:
    """A logger. ``open`` once, ``begin`` once with the rows an earlier process of this run logged
    (a resumed run; [] for a fresh one), ``log`` per step (an epoch; an experience of hem
    continual), ``finish`` with the final metrics, ``close`` always (``failed``: the run did not end
    well). Any exception a method raises drops the backend for the rest of the run, with one
    warning (``hemcli.loggers.run.RunLog``)."""

    name = "logger"

    def open(self, run: RunInfo) -> None:
        self.run = run

    def begin(self, rows: list[dict]) -> None:
        pass

    def log(self, step: int, values: dict) -> None:
        raise NotImplementedError

    def finish(self, step: int, metrics: dict) -> None:
        pass

    def close(self, failed: bool) -> None:
        pass
