"""The experience loop of ``hem continual``, with its checkpoint and resume: the continual counterpart
of ``hemcli.engine.loop.fit``.

Within an experience Avalanche keeps its own training loop (``strategy.train``); this loop runs the
experiences in turn, measures every experience's test set after each (a row of the accuracy matrix,
``hemcli.continual.measure``) and writes hem's continual checkpoint (``hemcli.continual.checkpoint``)
after every experience but the last, whose result file supersedes it. ``read_checkpoint`` and
``resume_strategy`` put a freshly built strategy where a killed run's checkpoint left it, so the
loop starts again at the experience the run was killed in and ends as the uninterrupted run would.
"""
from __future__ import annotations

import time
from pathlib import Path

from hemcli.continual.measure import experience_row, shown_row, test_accuracies
from hemcli.continual.quiet import deprecations_hidden
from hemcli.loggers import current as current_log
from hemcli.progress import Progress


def learn(strategy, record, benchmark, stream, cfg: dict, dm, start: int = 0, checkpoint: Path | None = None,
          quiet: bool = False) -> None:
    """Train experiences ``start`` onwards of the Avalanche ``benchmark`` (built from ``stream``), each
    measured into ``record.matrix``; the checkpoint written after each but the last. The run's
    experiment loggers get one step per experience (``measure.experience_row``)."""
    progress = Progress(cfg["epochs"], quiet)
    progress.say(f"continual {cfg['benchmark']['name']} ({stream.scenario}) {cfg['strategy']['name']} "
                 f"{cfg['model']['arch']} loss={cfg['loss']['name']} seed={cfg['seed']} on {dm.device}"
                 + (f", resuming at experience {start + 1}" if start else ""))
    sizes, run_log = [len(e.test_y) for e in stream.experiences], current_log()
    run_log.begin([experience_row(record, sizes, done) for done in range(1, len(record.matrix) + 1)])
    for index, experience in enumerate(benchmark.train_stream):
        if index < start:
            continue
        tick = time.perf_counter()
        with deprecations_hidden(cfg["verbose"]):
            strategy.train(experience)
        record.seconds.append(time.perf_counter() - tick)
        record.matrix.append(test_accuracies(strategy.model, stream, dm.device))
        progress.say(f"after experience {index + 1}/{len(stream.experiences)}: test accuracy per experience "
                     + shown_row(record.matrix[-1]))
        if checkpoint is not None and index + 1 < len(stream.experiences):  # the result file supersedes the last
            save_checkpoint(strategy, checkpoint)
        run_log.step(index + 1, experience_row(record, sizes, index + 1))


def save_checkpoint(strategy, path: Path) -> None:
    """hem's continual checkpoint of the strategy between two experiences, written atomically."""
    from hemcli.continual import checkpoint
    from hemcli.continual.build import find_plugin
    from hemcli.continual.hooks import CountedLoss, Record

    checkpoint.write(path, strategy, find_plugin(strategy, Record), find_plugin(strategy, CountedLoss))


def read_checkpoint(path: Path, cfg: dict) -> dict | None:
    """The checkpoint's state, None (with a warning) when there is none; HemError when it is not a
    hem continual checkpoint of this recipe."""
    from hemcli.continual import checkpoint
    from hemcli.progress import warn

    if not path.exists():
        warn(f"no checkpoint at {path}; starting from experience 1")
        return None
    return checkpoint.read(path, cfg)


def resume_strategy(strategy, saved: dict, path: Path, benchmark, cfg: dict) -> int:
    """The freshly built strategy set to where the checkpoint ``saved`` (read from ``path``) left it;
    returns the index of the experience to start at."""
    from hemcli.continual import checkpoint
    from hemcli.continual.build import find_plugin
    from hemcli.continual.hooks import CountedLoss, Record

    return checkpoint.restore(path, saved, strategy, find_plugin(strategy, Record),
                              find_plugin(strategy, CountedLoss), benchmark.train_stream, cfg)
