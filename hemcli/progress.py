"""Progress and warnings on stderr: one line per epoch with an ETA; within an epoch, a live batch
counter on a terminal, or a line at most every ``--progress-every`` seconds in a log file.

Stdout stays free for machine-readable output (the result path), so ``hem`` composes in pipes.
Where stderr is not a terminal (a Slurm job's log, ``2> run.log``), a counter redrawn in place
would be one endless line, so progress comes as whole lines, spaced in time (``set_log_interval``).
Every class takes its time source (``now``) as an argument: a test drives it.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

DEFAULT_EVERY = 30.0  # seconds between progress lines in a log (--progress-every)
LIVE_EVERY = 0.2  # a terminal's counter is redrawn at most 5 times a second
TERMINAL_LINE_EVERY = 5.0  # an evaluation's counter on a terminal: a line at most every 5 s
_log_every = [DEFAULT_EVERY]


def set_log_interval(seconds: float | None) -> None:
    """``--progress-every``: the seconds between progress lines where stderr is not a terminal; 0
    writes one per update (each batch, each attacked batch); None leaves it as it is."""
    if seconds is not None:
        _log_every[0] = float(seconds)


def log_interval() -> float:
    return _log_every[0]


def warn(text: str) -> None:
    """A warning on stderr, shown even with --quiet (which silences progress, not problems)."""
    print(f"hem: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """A progress line on stderr (callers skip it under --quiet)."""
    print(text, file=sys.stderr, flush=True)


def per_second(rate: float) -> str:
    """A rate as a log line shows it: three significant digits, never an exponent (1230, 45.6, 0.0123)."""
    if rate >= 100:
        return f"{rate:.0f}"
    return f"{rate:.3g}" if rate >= 1e-3 else f"{rate:.6f}"


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def is_terminal(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """A training's progress: ``say`` a line, ``start_epoch``, ``batch`` after each batch, ``epoch``
    at its end. ``every``: seconds between batch lines in a log (default ``log_interval()``)."""

    def __init__(self, total_epochs: int, quiet: bool = False, stream=None, label: str = "",
                 every: float | None = None, now: Callable[[], float] = time.perf_counter):
        self.total = total_epochs
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.label = label
        self.live = not quiet and is_terminal(self.stream)
        self.every = log_interval() if every is None else every
        self.now = now
        self._epoch_seconds: list[float] = []
        self._last_draw = 0.0
        self._last_line: float | None = None  # when the last batch line was written (log mode)
        self._epoch, self._began, self._images = None, 0.0, 0

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int) -> None:
        """The epoch's clock starts: its images/s and the ETA are measured from here."""
        self._epoch, self._began, self._images = epoch, self.now(), 0
        if self._last_line is None:  # the first line comes ``every`` seconds into the training
            self._last_line = self._began

    def batch(self, epoch: int, index: int, count: int, images: int = 0) -> None:
        """Batch ``index`` of ``count`` (``images`` in it) is done. On a terminal: redraw
        ``epoch e/E batch b/B`` at most 5 times a second. In a log: ``epoch e/E batch b/B  N
        images/s  ETA h:mm:ss`` at most every ``every`` seconds (the epoch line ends each epoch)."""
        if self.quiet:
            return
        now = self.now()
        if self.live:
            if now - self._last_draw > LIVE_EVERY or index == count:
                self._last_draw = now
                print(f"\r{self.label}epoch {epoch}/{self.total} batch {index}/{count}", end="",
                      file=self.stream, flush=True)
            return
        if self._epoch != epoch:  # start_epoch was not called: the epoch is measured from its first batch
            self.start_epoch(epoch)
        self._images += images
        if index >= count or now - self._last_line < self.every:
            return
        self._last_line = now
        spent = max(now - self._began, 1e-9)
        per_batch = spent / index
        later = sum(self._epoch_seconds) / len(self._epoch_seconds) if self._epoch_seconds else per_batch * count
        eta = (count - index) * per_batch + (self.total - epoch) * later
        rate = f"  {per_second(self._images / spent)} images/s" if self._images else ""
        self.say(f"{self.label}epoch {epoch}/{self.total} batch {index}/{count}{rate}  ETA {clock(eta)}")

    def epoch(self, epoch: int, seconds: float, **metrics: float) -> None:
        self._epoch_seconds.append(seconds)
        mean = sum(self._epoch_seconds) / len(self._epoch_seconds)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        eta = clock(mean * (self.total - epoch))
        prefix = "\r" if self.live else ""
        self.say(f"{prefix}{self.label}epoch {epoch}/{self.total}  {shown}  {seconds:.2f}s  ETA {eta}")


class Counter:
    """``counter(done, total)``: the progress of a counted job (images attacked, corruption sets
    made) as ``<what> done/total  R <unit>/s  h:mm:ss, ETA h:mm:ss``.

    A line at the first update, then at most one every ``every`` seconds (on a terminal 5 s; in a
    log ``log_interval()``), and one when the job is done. ``per_item``: ``unit``s in one counted
    item (the images of a corruption set), for the rate. An update within the first second counts
    work done before (resumed attack batches, cached sets): the rate and ETA are measured after it.
    """

    def __init__(self, what: str, unit: str = "images", per_item: float = 1.0, quiet: bool = False, stream=None,
                 every: float | None = None, now: Callable[[], float] = time.perf_counter):
        self.what, self.unit, self.per_item, self.quiet = what, unit, per_item, quiet
        self.stream = stream or sys.stderr
        self.every = every if every is not None else (
            TERMINAL_LINE_EVERY if is_terminal(self.stream) else log_interval())
        self.now = now
        self.created = now()
        self._base: tuple[int, float] | None = None  # (done, time) the rate is measured from
        self._last_line: float | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        now = self.now()
        if self._base is None:
            self._base = (done, now) if now - self.created < 1.0 else (0, self.created)
        if done < total and self._last_line is not None and now - self._last_line < self.every:
            return
        self._last_line = now
        spent = now - self.created
        worked, took = done - self._base[0], now - self._base[1]
        rate = worked / took if worked > 0 and took > 0 else None
        shown = f"  {per_second(rate * self.per_item)} {self.unit}/s" if rate else ""
        eta = f", ETA {clock((total - done) / rate)}" if rate and done < total else ""
        print(f"{self.what} {done}/{total}{shown}  {clock(spent)}{eta}", file=self.stream, flush=True)
