"""``hem sweep TASK``: every run of a grid, planned and checked first, then run on a backend.

plan (``grid``: lists, ranges, a recipe's ``grid:`` block -> one ``RunSpec`` per run) -> validate
(every run's recipe and loss, the output folder, each dataset loaded once) -> run (``backends``;
finished runs are skipped, interrupted ones resume) -> a summary of failures with the command
that reruns each -> the report of the sweep's results.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

from hemcli import recipes
from hemcli.progress import clock
from hemcli.runs.paths import check_not_blocked, check_writable_folder, checkpoint_path
from hemcli.runs.spec import RunSpec, task_info
from hemcli.runs.sweep.grid import file_axes, flag_axis, merge_axes, plan_grid, set_axis


def plan(task: str, recipe: Path | None, flag_texts: Mapping[str, str | None], set_texts: Iterable[str],
         out: Path, deterministic: bool = False, fixed: Mapping[str, object] | None = None) -> list[RunSpec]:
    """Every run of the grid the command line (and the recipe's ``grid:``) describes, in order;
    ``fixed``: recipe keys with the one value every run takes (where a run goes, how it is measured)."""
    task_info(task)  # an unknown task first, before its flags are read
    groups = []
    grid = recipes.recipe_grid(recipe, task) if recipe is not None else None
    if grid is not None:
        groups.append(file_axes(grid, recipe))
    groups.append([flag_axis(flag, text) for flag, text in flag_texts.items() if text is not None])
    groups.append([set_axis(assignment) for assignment in set_texts])
    groups.append([(key, [value]) for key, value in (fixed or {}).items()])
    sets = ["deterministic=true"] if deterministic else []
    return plan_grid(task, recipe, merge_axes(*groups), sets, out)


def validate(specs: list[RunSpec], out: Path, load_data: bool) -> None:
    """Every check that needs no training, for every run; ``load_data``: each dataset once, here
    (a download happens once, not in every worker; missing data stops the sweep before it starts)."""
    check_writable_folder(Path(out))
    loaded = set()
    for spec in specs:
        task = task_info(spec.task)
        check_not_blocked(spec.path)
        task.check(spec.cfg)
        data = (spec.task, repr(spec.cfg["dataset"]), spec.cfg["device"])
        if load_data and data not in loaded:
            task.setup(spec.cfg)
            loaded.add(data)


def describe(spec: RunSpec) -> str:
    """``hem M=500 seed 1``: the loss, what differs from the recipe, the seed."""
    label = spec.condition["label"]
    return f"{spec.cfg['loss']['name']}{'' if label == 'base' else ' ' + label} seed {spec.seed}"


class SweepProgress:
    """One line per run that ends: runs done / total, its time and metrics, and an ETA."""

    def __init__(self, total: int, slots: int, quiet: bool = False, stream=None):
        self.total, self.slots, self.quiet = total, max(1, slots), quiet
        self.stream = stream or sys.stderr
        self.ended_count, self.trained_seconds = 0, []

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"hem sweep: {text}", file=self.stream, flush=True)

    def ended(self, spec: RunSpec, outcome: dict) -> None:
        self.ended_count += 1
        status = outcome["status"]
        if status == "done":
            self.trained_seconds.append(outcome["seconds"])
        detail = {"skipped": "finished by another sweep" if outcome.get("elsewhere") else "already finished",
                  "failed": outcome["error"],
                  "done": "  ".join([f"{outcome['seconds']:.1f}s", *(f"{k} {v:.4g}" for k, v in
                                     outcome["metrics"].items() if isinstance(v, (int, float)))])}[status]
        resumed = " (resumed)" if outcome.get("resumed") and status == "done" else ""
        self.say(f"[{self.ended_count}/{self.total}] {status:<7} {describe(spec)}{resumed}  {detail}{self.eta()}")

    def eta(self) -> str:
        left = self.total - self.ended_count
        if not left or not self.trained_seconds:
            return ""
        mean = sum(self.trained_seconds) / len(self.trained_seconds)
        return f"  ETA {clock(mean * left / min(self.slots, left))}"


def run(specs: list[RunSpec], backend, quiet: bool = False, poll_seconds: float = 2.0) -> list[tuple[RunSpec, dict]]:
    """Every run on ``backend``. A run another live process holds (a second sweep on the same
    ``--out``) is waited for: finished there, it counts as done by the other; released without a
    result (that sweep stopped), it runs here."""
    progress = SweepProgress(len(specs), backend.slots, quiet)
    progress.say(f"{len(specs)} runs on {backend.describe}")
    began, outcomes, pending = time.perf_counter(), [], list(specs)
    while pending:
        taken = []
        for spec, outcome in backend.run(pending):
            progress.slots = backend.slots
            if outcome["status"] == "taken":
                taken.append(spec)
                continue
            progress.ended(spec, outcome)
            outcomes.append((spec, outcome))
        if taken:
            progress.say(f"{len(taken)} run{'s are' if len(taken) > 1 else ' is'} being trained by another sweep; "
                         "waiting for it")
        pending = []
        for spec in _wait_for_others(taken, poll_seconds):
            if spec.path.is_file():
                outcome = {"name": spec.name, "status": "skipped", "elsewhere": True, "error": None,
                           "metrics": {}, "resumed": False, "seconds": 0.0}
                progress.ended(spec, outcome)
                outcomes.append((spec, outcome))
            else:
                pending.append(spec)
    counts = {status: sum(o["status"] == status for _, o in outcomes) for status in ("done", "skipped", "failed")}
    progress.say(f"{counts['done']} trained, {counts['skipped']} already finished, {counts['failed']} failed "
                 f"in {clock(time.perf_counter() - began)}")
    return outcomes


def _wait_for_others(specs: list[RunSpec], poll_seconds: float):
    """Yield each run as the process holding it lets it go (with its result, or without)."""
    from hemcli.runs.lock import lock_is_held

    waiting = list(specs)
    while waiting:
        released = [spec for spec in waiting if not lock_is_held(spec.path)]
        yield from released
        waiting = [spec for spec in waiting if spec not in released]
        if waiting:
            time.sleep(poll_seconds)


def failure_summary(outcomes: list[tuple[RunSpec, dict]]) -> list[str]:
    """Each failed run: its error, and the command that reruns it (resuming where a checkpoint is)."""
    failures = [(spec, outcome) for spec, outcome in outcomes if outcome["status"] == "failed"]
    lines = [f"{len(failures)} of {len(outcomes)} runs failed:"] if failures else []
    for spec, outcome in failures:
        resume = ("--resume",) if checkpoint_path(spec.path).is_file() else ()
        lines += [f"  {spec.name}: {outcome['error']}", f"    rerun: {spec.shell_command(*resume)}"]
    return lines
