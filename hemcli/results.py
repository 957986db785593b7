"""One JSON result per run: where it goes, what it records, and writing it safely.

Writes are atomic (a temporary file in the same folder, then ``os.replace``) so a reader never
sees half a result, and an existing result is never replaced unless the caller says so.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from hemcli.errors import HemError

SCHEMA_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def run_name(cfg: dict) -> Path:
    """``classify/digits/lenet/hem/seed0``: task, dataset, arch, loss, seed."""
    parts = [cfg["task"], cfg["dataset"]["name"], cfg["model"]["arch"], cfg["loss"]["name"]]
    return Path(*(_UNSAFE.sub("_", str(p)) for p in parts)) / f"seed{cfg['seed']}"


def result_path(out_dir: str | Path, cfg: dict) -> Path:
    return Path(out_dir) / run_name(cfg).with_suffix(".json")


def checkpoint_path(result: Path) -> Path:
    return result.with_suffix(".ckpt.pt")


def prepare_output(path: Path, overwrite: bool, resume: bool = False) -> None:
    """Fail before any work if the result exists (and may not be replaced) or cannot be written."""
    if path.exists() and not (overwrite or resume):
        raise HemError(f"result already exists: {path} (pass --overwrite to replace it)")
    if path.exists() and resume and not overwrite:
        raise HemError(f"run already finished: {path} (pass --overwrite to train it again)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".probe-"):
            pass
    except OSError as err:
        raise HemError(f"cannot write results under {path.parent}: {err.strerror or err}") from None


def write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, allow_nan=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    return {
        "schema_version": SCHEMA_VERSION,
        "task": cfg["task"],
        "status": "complete",
        "run": str(run_name(cfg)),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": cfg["seed"],
        "recipe": cfg,
        "metrics": metrics,
        "history": history,
        "environment": env,
        "timings": timings,
    }
