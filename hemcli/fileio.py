"""Reading and writing files the way every hem input and output needs.

Reading: only regular files. Opening a FIFO blocks until a writer appears and reading a device may
never end, so a ``*.json`` FIFO in a results folder or a checkpoint path that is a socket would hang
hem. ``open_regular`` opens without blocking (``O_NONBLOCK``) and checks what it opened (``fstat``),
so there is no window between a check and the open.

Writing: atomically (``write_atomic``): a temporary file unique to this process in the target's
folder, flushed to disk, then renamed over the target, so a reader (or a resumed run) sees the old
file or the new one, never half of one. The operating system's refusals keep their name. A full disk, a quota, a read-only file
system or a denied permission is the user's to fix, so ``write_failure`` turns it into one line
(``no space left on device writing checkpoint …``); torch's zip writer wraps the ``OSError`` of a
failed write in a ``RuntimeError`` that names only its own source file, so ``RecordingWriter`` keeps
the original for the message.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from hemcli.errors import HemError


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or folder, not a regular file."""


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, mode: str = "rb"):
    """``path`` opened for reading (``"rb"`` or ``"r"``, UTF-8) if it is a regular file; else
    ``NotRegularFile`` (an OSError whose ``strerror`` says what it is). Never blocks on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            what = kind_of(kind)
            raise NotRegularFile(errno.EINVAL, f"{what}, not a regular file" if what.startswith("a ") else what,
                                 str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most ``limit`` + 1 of them, so a caller can tell it is longer)."""
    with open_regular(path) as handle:
        return handle.read() if limit is None else handle.read(limit + 1)


def is_regular(path: str | Path) -> bool:
    """A regular file (following links), decided without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


# The write failures that are the user's to fix, each by its usual name
_REASONS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"}
if hasattr(errno, "EDQUOT"):
    _REASONS[errno.EDQUOT] = "disk quota exceeded"


def write_failure(err: OSError, what: str, path: Path) -> HemError:
    """One line for a write of ``what`` at ``path`` that the operating system refused."""
    reason = _REASONS.get(err.errno)
    if reason is not None:
        return HemError(f"{reason} writing {what} {path}")
    return HemError(f"cannot write {what} {path}: {err.strerror or err}")


class RecordingWriter:
    """A binary file handle that remembers the first ``OSError`` of a write, so that a library that
    wraps it in its own exception (torch's zip writer: ``RuntimeError … inline_container.cc``) can
    still be reported by the operating system's reason."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as err:
            self.error = self.error or err
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[BinaryIO], None], what: str = "result") -> None:
    """Call ``write(handle)`` on a fresh temporary file, then rename it to ``path``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise write_failure(err, what, path) from None
    recorder = None
    try:
        with os.fdopen(fd, "wb") as handle:
            recorder = RecordingWriter(handle)
            write(recorder)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result is as readable as any new file
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise write_failure(err, what, path) from None
    except Exception:
        Path(tmp).unlink(missing_ok=True)
        if recorder is not None and recorder.error is not None:  # a library wrapped the OSError
            raise write_failure(recorder.error, what, path) from None
        raise
    except BaseException:  # Ctrl-C, SIGTERM: no temporary file left behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as indented JSON; serialised first, so unserialisable data touches no file."""
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))

def load_weights_only(path: str | Path):
    """A ``torch.save`` file read with ``weights_only=True``: tensors and plain containers only, so a
    planted pickle builds nothing and runs nothing. Only a regular file is opened. torch's warning
    about an unusual pickle protocol is not shown: the file is refused or read either way.
    Raises OSError (unreadable), or any exception torch raises for what it will not load."""
    import warnings

    import torch

    with open_regular(path) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(handle, map_location="cpu", weights_only=True)
