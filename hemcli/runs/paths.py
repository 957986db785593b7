"""A run's files beside its result (``seed<N>.json``, named in ``hemcli.runs.spec``): its checkpoint
and lock, and the checks on them that need no write."""
from __future__ import annotations

import os
from pathlib import Path

from hemcli.errors import HemError

class ResultExists(HemError):
    """The run's result is already written (by this command earlier, or by another process just now)."""


def checkpoint_path(result: Path) -> Path:
    return result.with_suffix(".ckpt.pt")


def attack_state_path(result: Path, norm: str) -> Path:
    """Where an unfinished AutoAttack of this run keeps its finished batches (removed once written)."""
    return result.with_name(f".{result.stem}.attack-{norm}.pt")


def remove_attack_states(result: Path) -> None:
    for leftover in result.parent.glob(f".{result.stem}.attack-*.pt"):
        leftover.unlink(missing_ok=True)


def lock_path(result: Path) -> Path:
    return result.with_name(f".{result.name}.lock")


def check_not_blocked(path: Path) -> None:
    """Nothing but a file (or nothing) where the result and its checkpoint go."""
    for kind, target in (("result", path), ("checkpoint", checkpoint_path(path))):
        if target.exists() and not target.is_file():
            raise HemError(f"the {kind} path {target} exists and is not a file; move it away or choose another --out")


def check_output(path: Path, overwrite: bool, resume: bool = False) -> None:
    """Fail before any work, writing nothing, if the result may not or cannot be written."""
    check_not_blocked(path)
    if path.exists() and not (overwrite or resume):
        raise ResultExists(f"result already exists: {path} (pass --overwrite to replace it)")
    if path.exists() and resume and not overwrite:
        raise ResultExists(f"run already finished: {path} (pass --overwrite to train it again)")
    if not path.exists() and checkpoint_path(path).is_file() and not (overwrite or resume):
        raise HemError(f"an unfinished run of this condition and seed has a checkpoint at {checkpoint_path(path)}: "
                       "pass --resume to continue it, or --overwrite to start again")
    check_writable_folder(path.parent)


def check_writable_folder(folder: Path) -> None:
    """``folder`` exists as a writable folder, or could be created: its nearest existing ancestor is one."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise HemError(f"cannot write results under {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HemError(f"cannot write results under {folder}: permission denied for {existing}")
