"""The loggers of one run: ``run_logging(spec)`` opens those its recipe names around the run, and
the training loops send their steps to ``active()``.

A logger serves the run, never the other way round: whatever a backend raises (a full disk, a
tracker gone away, a bug in a library) is one warning, and that backend is dropped for the rest of
the run while the run and the other loggers go on. Only a missing package stops a run, before it
starts (``hemcli.loggers.check_installed``), with the pip extra that brings it.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from pathlib import Path

from hemcli.loggers import BACKENDS, check_installed, missing_extra
from hemcli.loggers.base import Backend, RunInfo
from hemcli.progress import warn


class RunLog:
    """Every logger of a run, told the same things in the same order (``Backend``'s methods)."""

    def __init__(self, backends: list[Backend]):
        self.backends = list(backends)
        self.began = False
        self.last_step = 0

    def _each(self, method: str, *args) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args)
            except Exception as err:  # a logger must never end the run
                self.backends.remove(backend)
                text = " ".join(str(err).split())[:200] or "no message"
                warn(f"the {backend.name} logger failed ({type(err).__name__}: {text}); the run goes on without it")
                if method != "close":
                    try:
                        backend.close(True)
                    except Exception:  # already reported
                        pass

    def open(self, run: RunInfo) -> None:
        self._each("open", run)

    def begin(self, rows: list[dict]) -> None:
        """Once, before the first step: ``rows``, the steps an earlier process of this run logged
        (those a checkpoint resumes after); [] for a fresh run."""
        self.began = True
        self.last_step = len(rows)
        self._each("begin", [dict(row) for row in rows])

    def step(self, step: int, values: dict) -> None:
        if not self.began:
            self.begin([])
        self.last_step = step
        self._each("log", step, dict(values))

    def finish(self, metrics: dict) -> None:
        if not self.began:
            self.begin([])
        self._each("finish", self.last_step, dict(metrics))

    def close(self, failed: bool) -> None:
        self._each("close", failed)


NO_LOG = RunLog([])  # outside a run, and a run that logs nothing
_ACTIVE: contextvars.ContextVar[RunLog] = contextvars.ContextVar("hem_run_log", default=NO_LOG)


def active() -> RunLog:
    return _ACTIVE.get()


def make_backend(name: str) -> Backend:
    """The backend ``name``; a missing package is the one-line HemError with its pip extra."""
    try:
        if name == "csv":
            from hemcli.loggers.files import CsvLogger as kind
        elif name == "tensorboard":
            import tensorboard  # noqa: F401 -- torch.utils.tensorboard needs it
            from hemcli.loggers.files import TensorBoardLogger as kind
        elif name == "wandb":
            import wandb  # noqa: F401
            from hemcli.loggers.services import WandbLogger as kind
        else:
            import mlflow  # noqa: F401
            from hemcli.loggers.services import MlflowLogger as kind
    except ImportError:
        raise missing_extra(name) from None
    return kind()


def run_info(spec, root: Path) -> RunInfo:
    """How the loggers name the planned run ``spec`` (a ``hemcli.runs.spec.RunSpec``)."""
    folder = Path(spec.name).parent.as_posix()
    return RunInfo(name=f"{spec.condition['label']}-seed{spec.seed}", group=folder, task=spec.task,
                   seed=spec.seed, condition_id=spec.condition["id"], config=spec.cfg,
                   stem=root / spec.name, root=root)


def log_root(spec) -> Path:
    """``log.dir``, else the run's ``--out``: the loggers' files mirror the result paths below it."""
    chosen = (spec.cfg.get("log") or {}).get("dir")
    return Path(chosen).expanduser() if chosen else Path(spec.out)


@contextmanager
def run_logging(spec):
    """The loggers ``spec.cfg["log"]["loggers"]`` names, opened for the run and made ``active()``
    inside the block; closed as failed when the block raises (Ctrl-C, a diverged loss)."""
    names = [name for name in dict.fromkeys((spec.cfg.get("log") or {}).get("loggers") or []) if name in BACKENDS]
    if not names:
        yield NO_LOG
        return
    check_installed(names)
    run_log = RunLog([make_backend(name) for name in names])
    run_log.open(run_info(spec, log_root(spec)))
    token = _ACTIVE.set(run_log)
    try:
        yield run_log
    except BaseException:
        run_log.close(True)
        raise
    else:
        run_log.close(False)
    finally:
        _ACTIVE.reset(token)
