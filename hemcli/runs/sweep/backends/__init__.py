"""Where a sweep's runs execute: worker processes here (``local``), a Ray cluster (``ray``), or a
Slurm job array (``slurm``).

Every backend calls ``hemcli.runs.execute.sweep_one(spec, threads)`` for each run, in a process of
its own, and yields ``(spec, outcome)`` as runs end; ``slots`` (runs at a time) feeds the ETA and
``describe`` the first progress line. The run itself skips a finished result and resumes from a
checkpoint, so any backend can be stopped and started again.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from hemcli.errors import HemError
from hemcli.runs.spec import RunSpec

BACKENDS = ("local", "ray", "slurm")
SLURM_CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class BackendOptions:
    jobs: int | None = None
    address: str | None = None
    cpus_per_run: int | None = None
    gpus_per_run: int | None = None
    slurm_partition: str | None = None
    slurm_time: str | None = None
    slurm_array_parallelism: int | None = None
    slurm_cluster: str = "slurm"


def failed(spec: RunSpec, error: str) -> dict:
    return {"name": spec.name, "status": "failed", "error": error, "metrics": {}, "resumed": False, "seconds": 0.0}


def anchored(spec: RunSpec) -> RunSpec:
    """The run with its output, data and log folders as absolute paths: a Ray or Slurm worker may start
    in another folder than the sweep (the result path and the condition stay the same)."""
    cfg = copy.deepcopy(spec.cfg)
    root = cfg["dataset"].get("root")
    if root is not None:
        cfg["dataset"]["root"] = os.path.abspath(os.path.expanduser(root))
    if (cfg.get("log") or {}).get("dir") is not None:  # the loggers' folder (hemcli.loggers)
        cfg["log"]["dir"] = os.path.abspath(os.path.expanduser(cfg["log"]["dir"]))
    return dataclasses.replace(spec, cfg=cfg, out=Path(os.path.abspath(spec.out)))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def make_backend(name: str, options: BackendOptions, out: Path):
    """The backend, its package imported now: a missing one is one line naming the extra (exit 2)."""
    if name == "local":
        from hemcli.runs.sweep.backends.local import LocalBackend
        return LocalBackend(options)
    if name == "ray":
        _require("ray", "ray")
        from hemcli.runs.sweep.backends.on_ray import RayBackend
        return RayBackend(options)
    if name == "slurm":
        _require("submitit", "slurm")
        from hemcli.runs.sweep.backends.on_slurm import SlurmBackend, slurm_minutes
        slurm_minutes(options.slurm_time)  # checked before anything runs
        return SlurmBackend(options, out)
    raise HemError(f"unknown backend {name!r}; valid choices: {', '.join(BACKENDS)}")


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise HemError(f"--backend {extra} needs {module}, which is not installed: "
                       f"pip install 'hemcli[{extra}]'") from None


def error_line(err: BaseException) -> str:
    """An error in one line: the last non-empty one of its text, where a remote traceback ends."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
