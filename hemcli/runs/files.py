"""Atomic writes: a temporary file unique to this process in the target's folder, flushed to disk,
then renamed over the target. A reader (or a resumed run) sees the old file or the new one, never
half of one; a failed write (disk full) removes its temporary file and is one HemError line naming the
reason (``hemcli.fileio.write_failure``), also where the writer is a library that hides the OSError."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from hemcli.fileio import RecordingWriter, write_failure


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
