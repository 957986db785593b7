"""The loggers that write files beside the result: ``csv`` (one row per step) and ``tensorboard``
(event files, ``torch.utils.tensorboard.SummaryWriter``)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hemcli.fileio import write_atomic
from hemcli.loggers.base import Backend, RunInfo, numbers


def csv_cell(value) -> str:
    """A value as its csv cell: floats exactly (``repr`` reads back to the same float), None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class CsvLogger(Backend):
    """``<result stem>.csv``: one row per step, the columns every key any row has, in the order
    they first appear (a training's history keys: epoch, train_loss, train_accuracy, ..., lr,
    seconds). Rewritten whole and atomically at each step, so it is complete at every moment, and a
    resumed run's file holds the epochs before the resume too."""

    name = "csv"

    def open(self, run: RunInfo) -> None:
        super().open(run)
        self.path = Path(f"{run.stem}.csv")
        self.rows: list[dict] = []

    def begin(self, rows: list[dict]) -> None:
        self.rows = [dict(row) for row in rows]

    def log(self, step: int, values: dict) -> None:
        self.rows.append(dict(values))
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([csv_cell(row.get(column)) for column in columns] for row in self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, lambda handle: handle.write(text.getvalue().encode("utf-8")), what="csv log")


class TensorBoardLogger(Backend):
    """``<result stem>.tensorboard/``: a scalar per number of each step (its key as the tag, the
    step as global step), ``final/<metric>`` at the last step, the recipe as text. A fresh run
    (not a resumed one) removes the event files an earlier run of the same path left, so an
    ``--overwrite`` does not show two runs as one."""

    name = "tensorboard"

    def open(self, run: RunInfo) -> None:
        super().open(run)
        self.folder = Path(f"{run.stem}.tensorboard")
        self.writer = None

    def begin(self, rows: list[dict]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if not rows:
            for stale in self.folder.glob("events.out.tfevents.*"):
                stale.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.folder))
        if not rows:
            recipe = json.dumps(self.run.config, indent=2, sort_keys=False)
            self.writer.add_text("recipe", "\n".join("    " + line for line in recipe.splitlines()), 0)
            self.writer.flush()

    def log(self, step: int, values: dict) -> None:
        for key, value in numbers(values).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # a reader sees each epoch as it ends

    def finish(self, step: int, metrics: dict) -> None:
        for key, value in numbers(metrics).items():
            self.writer.add_scalar(f"final/{key}", value, step)
        self.writer.flush()

    def close(self, failed: bool) -> None:
        if self.writer is not None:
            self.writer.close()
