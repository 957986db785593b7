"""Train one planned run and write its result: the same steps for ``hem <task>`` and every sweep run.

Every check (output path, recipe, loss, data) -> ``RunLock`` -> train (checkpointing) -> the result,
written atomically -> release. ``sweep_one`` wraps it for a sweep's worker: a finished run is
skipped, an interrupted one resumes from its checkpoint, and every error becomes an outcome record
instead of an exception, so one failed run never stops the others.
"""
from __future__ import annotations

import contextlib
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from hemcli.engine import distributed
from hemcli.errors import HemError
from hemcli.fileio import write_json_atomic
from hemcli.loggers.run import run_logging
from hemcli.runs.lock import RunLock, RunTaken, check_free
from hemcli.runs.paths import (ResultExists, attack_state_path, check_output, checkpoint_path,
                               remove_attack_states)
from hemcli.runs.spec import RunSpec, task_info


def train(spec: RunSpec, *, overwrite: bool = False, resume: bool = False, quiet: bool = False) -> dict | None:
    """Run ``spec`` and write its result; HemError (nothing written) on bad input or a taken path.

    In a data-parallel run (torchrun) every process trains, but only rank 0 takes the lock and
    writes checkpoints and the result; the others return None."""
    task = task_info(spec.task)
    path, checkpoint = spec.path, checkpoint_path(spec.path)
    if distributed.is_main():  # the other ranks of a data-parallel run find rank 0 holding it
        check_free(path)
    check_output(path, overwrite, resume)
    prepared = task.setup(spec.cfg)
    if not distributed.is_main():
        try:
            return task.run(spec.cfg, checkpoint=checkpoint, resume=resume, quiet=True, prepared=prepared)
        finally:
            distributed.stop()
    with RunLock(path), _group_stopped(), run_logging(spec) as run_log:  # the run's experiment loggers
        check_output(path, overwrite, resume)  # again: a run on this path may have finished meanwhile
        remove_stale_temporaries(path)
        if overwrite and not resume:
            checkpoint.unlink(missing_ok=True)
            remove_attack_states(path)
        attacks = {"attack_state": lambda norm: attack_state_path(path, norm)} if task.resumable_attacks else {}
        result = task.run(spec.cfg, checkpoint=checkpoint, resume=resume, quiet=quiet, prepared=prepared, **attacks)
        result = {**result, "run": spec.name, "condition": spec.condition}
        write_json_atomic(path, result)
        run_log.finish(result["metrics"])
        remove_attack_states(path)
        if not task.keep_checkpoint:
            checkpoint.unlink(missing_ok=True)
    return result


@contextmanager
def _group_stopped():
    """Leave the process group (if a run joined one) however the run ends."""
    try:
        yield
    finally:
        distributed.stop()


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files a killed process left beside the result or its checkpoint (we hold the lock,
    so no live process is writing them)."""
    for target in (path, checkpoint_path(path)):
        for leftover in target.parent.glob(f".{target.name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def sweep_one(spec: RunSpec, threads: int | None = None) -> dict:
    """One run of a sweep, never raising: ``{"name", "status": done|skipped|taken|failed, "error",
    "seconds", "metrics", "resumed"}``; "taken": another live process (a second sweep on the same
    folder) holds the run. Whatever a library prints goes to the worker's stderr: the sweep's
    stdout is for its report."""
    began = time.perf_counter()
    outcome = {"name": spec.name, "status": "done", "error": None, "metrics": {}, "resumed": False}
    try:
        if spec.path.is_file():
            outcome["status"] = "skipped"
        else:
            if threads:
                import torch
                torch.set_num_threads(threads)
            outcome["resumed"] = checkpoint_path(spec.path).is_file()
            with contextlib.redirect_stdout(sys.stderr):
                outcome["metrics"] = train(spec, resume=outcome["resumed"], quiet=True)["metrics"]
    except RunTaken as err:
        outcome.update(status="taken", error=" ".join(str(err).split()))
    except ResultExists:  # another sweep on the same folder finished it between our check and our lock
        outcome.update(status="skipped", elsewhere=True)
    except HemError as err:
        outcome.update(status="failed", error=" ".join(str(err).split()))
    except Exception as err:  # a bug or a crash in one run must not stop the sweep
        outcome.update(status="failed", error=f"internal error: {type(err).__name__}: {' '.join(str(err).split())}")
    outcome["seconds"] = time.perf_counter() - began
    return outcome
