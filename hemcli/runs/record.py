"""What one run's JSON result records: the recipe, metrics, history, and provenance (device,
versions, git commit, timings). Where it is written and how (atomically, under a lock): ``hemcli.runs``.
"""
from __future__ import annotations

import datetime as _dt
import os
import subprocess
from pathlib import Path

SCHEMA_VERSION = 1


def git_commit() -> dict:
    """The commit of the hem checkout this code runs from, if it is one (and whether it is dirty)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip() != ""
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment(device_info: dict) -> dict:
    import numpy
    from hemcli import __version__
    return {**device_info, "hemcli": __version__, "numpy": numpy.__version__,
            "git": git_commit(), "hostname": os.uname().nodename if hasattr(os, "uname") else None}


def build_result(cfg: dict, metrics: dict, history: list, env: dict, timings: dict) -> dict:
    """The record a task returns; ``hemcli.runs.execute`` adds where it is written (``run``) and its
    ``condition`` (id, label, the keys that differ from the recipe)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "task": cfg["task"],
        "status": "complete",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": cfg["seed"],
        "recipe": cfg,
        "metrics": metrics,
        "history": history,
        "environment": env,
        "timings": timings,
    }
