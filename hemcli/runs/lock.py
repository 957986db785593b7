"""One run per result path at a time.

``RunLock(result)`` creates the result's folders and takes an exclusive lock on ``.<name>.lock``
beside it; a second process on the same path is refused at once, naming the lock. The lock is a
``filelock.FileLock`` (flock on POSIX, msvcrt on Windows, a marker file where the file system has
neither), so a process that dies, even by kill -9, holds nothing: its leftover lock file is taken
over by the next run. On exit the lock file, and every folder this lock created that is still
empty, are removed: a run refused after its checks (a bad checkpoint) leaves nothing behind.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from hemcli.errors import HemError
from hemcli.runs.paths import lock_path


class RunTaken(HemError):
    """Another live process holds the run's lock (a second sweep on the same ``--out``)."""


def lock_is_held(result: Path) -> bool:
    """Whether a live process holds the lock of ``result`` now; a lock file left by a killed
    process is not held. Creates nothing: no lock file means no holder."""
    from filelock import FileLock, Timeout

    path = lock_path(result)
    if not path.exists():
        return False
    probe = FileLock(path, timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:  # removed meanwhile, or unreadable: nobody we could wait for
        return False
    probe.release()
    return False


def taken(result: Path) -> RunTaken:
    return RunTaken(f"another hem run is writing {result} (its lock {lock_path(result)} is held); "
                    "wait for it, or choose another --seed or --out")


def check_free(result: Path) -> None:
    """RunTaken now if a live process holds the lock: said before any other check of the path
    (its checkpoint is that run's, not an unfinished one needing --resume)."""
    if lock_is_held(result):
        raise taken(result)


class RunLock:
    def __init__(self, result: Path):
        self.result, self.path = result, lock_path(result)
        self._created: list[Path] = []
        self._lock = None

    def __enter__(self) -> "RunLock":
        from filelock import FileLock, Timeout

        try:
            self._lock = FileLock(self.path, timeout=0)
            self._acquire()
        except Timeout:
            self._remove_created_folders()
            raise taken(self.result) from None
        except OSError as err:
            self._remove_created_folders()
            raise HemError(f"cannot write results under {self.path.parent}: {err.strerror or err}") from None
        return self

    def _acquire(self) -> None:
        for attempt in range(3):
            _make_folders(self.path.parent, self._created)
            try:
                self._lock.acquire()
                return
            except FileNotFoundError:  # a failing run removed its empty folder just now: make it again
                if attempt == 2:
                    raise

    def __exit__(self, *exc) -> None:
        # Unlinked while still held: a process that opened the old file finds it locked, not free.
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._lock.release()
        self._remove_created_folders()

    def _remove_created_folders(self) -> None:
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):  # not empty (a checkpoint, another run's files): kept
                folder.rmdir()


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending to ``created`` each one this call made."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir()
            created.append(path)
        except FileExistsError:  # another run made it a moment ago: theirs, not ours to remove
            if not path.is_dir():
                raise
