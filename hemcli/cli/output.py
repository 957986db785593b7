"""Stdout and stderr, and how a command ends.

Stdout carries only what a command is for (result paths, a table), so ``hem`` composes in pipes:
while a command works, whatever a library prints goes to stderr (``_results_only``), and ``_emit``
writes to the real stdout. A closed stdout is held by /dev/null (``_guard_streams``). SIGTERM (how
Slurm preempts) unwinds like Ctrl-C, exit 143 (``_sigterm_unwinds``).

``_results_stream`` and ``_stdout_was_closed`` are this module's state: read them as
``output._results_stream``, never through ``from ... import`` (that copies the value of the moment).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading

from hemcli.errors import HemError, Terminated


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from typer's vendored click (typer >= 0.20) and from click itself (older typer)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


class _StdoutClosed(Exception):
    """The reader of our stdout went away (``hem report ... | head``), or there was none (``>&-``)."""


# The real stdout while ``_results_only`` sends everything else printed to stderr; None outside
_results_stream = None
# hem was started with its stdout closed (``hem classify >&-``): fd 1 holds /dev/null (see _guard_streams)
_stdout_was_closed = False


@contextlib.contextmanager
def _results_only():
    """While a command works, ``print`` (a library's, e.g. Avalanche's "Mapping cpu to cpu") goes to
    stderr; ``_emit`` still writes to the real stdout. Worker processes do the same at their start
    (``sweep.backends.local``)."""
    global _results_stream
    if _results_stream is not None:  # nested: already redirected
        yield
        return
    _results_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _results_stream = None


def _emit(text: str) -> None:
    """Machine-readable output to stdout; a full disk or a closed pipe is handled, not a traceback."""
    stream = _results_stream or sys.stdout
    if stream is None or _stdout_was_closed:
        raise _StdoutClosed
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError as err:
        _discard_stdout(stream)
        if isinstance(err, BrokenPipeError):
            raise _StdoutClosed from None
        raise HemError(f"cannot write the output: {err.strerror or err}") from None


def _discard_stdout(stream) -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's capture)
        pass


def _guard_streams() -> None:
    """A closed stdin, stdout or stderr (``>&-``) gets /dev/null at its descriptor. Otherwise the next
    file hem opens (a checkpoint) would get descriptor 1 or 2, and whatever is printed would be
    written into it. A closed stdout is remembered: results are written, then exit 141 (as SIGPIPE)."""
    global _stdout_was_closed
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # the lowest free descriptor is taken: fd itself, as the lower ones are open
                os.dup2(opened, fd)
                os.close(opened)
            if fd == 1:
                _stdout_was_closed = True
            if fd == 2:
                sys.stderr = open(fd, "w", closefd=False)  # print(file=None) would otherwise write to stdout


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) in the main thread for the command's
    duration, so it ends a run as Ctrl-C does: lock released, checkpoint kept, the resume hint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(text: object) -> str:
    return " ".join(str(text).split("\n"))


def _headline(result: dict) -> list[str]:
    """The metrics a person looks at first (the MSP ones over all sets, the DAR mean); all are in the JSON."""
    wanted = ("clean_accuracy", "corrupt_accuracy", "unknown_auroc_msp_all", "dar_msp_mean", "ece", "final_accuracy",
              "average_forgetting", "mean_iou", "pixel_accuracy")
    return [key for key in wanted if key in result["metrics"]]
