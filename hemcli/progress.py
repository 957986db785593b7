"""Progress and warnings on stderr: one line per epoch with an ETA, a live batch counter on a terminal.

Stdout stays free for machine-readable output (the result path), so ``hem`` composes in pipes.
"""
from __future__ import annotations

import sys
import time


def warn(text: str) -> None:
    """A warning on stderr, shown even with --quiet (which silences progress, not problems)."""
    print(f"hem: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """A progress line on stderr (callers skip it under --quiet)."""
    print(text, file=sys.stderr, flush=True)


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total_epochs: int, quiet: bool = False, stream=None, label: str = ""):
        self.total = total_epochs
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.label = label
        self.live = not quiet and getattr(self.stream, "isatty", lambda: False)()
        self._epoch_seconds: list[float] = []
        self._last_draw = 0.0

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def batch(self, epoch: int, index: int, count: int) -> None:
        """Redraw ``epoch e/E batch b/B`` at most 5 times a second, only on a terminal."""
        now = time.perf_counter()
        if self.live and (now - self._last_draw > 0.2 or index == count):
            self._last_draw = now
            print(f"\r{self.label}epoch {epoch}/{self.total} batch {index}/{count}", end="",
                  file=self.stream, flush=True)

    def epoch(self, epoch: int, seconds: float, **metrics: float) -> None:
        self._epoch_seconds.append(seconds)
        mean = sum(self._epoch_seconds) / len(self._epoch_seconds)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        eta = clock(mean * (self.total - epoch))
        prefix = "\r" if self.live else ""
        self.say(f"{prefix}{self.label}epoch {epoch}/{self.total}  {shown}  {seconds:.2f}s  ETA {eta}")
