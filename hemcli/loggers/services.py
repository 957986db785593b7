"""The loggers that keep runs in a tracker: ``wandb`` (Weights & Biases) and ``mlflow``.

Neither ever asks a question: wandb runs offline (files under the log dir, ``wandb sync`` uploads
them later) unless the user has configured it, and MLflow writes to a local ``file:`` store under
the log dir unless ``MLFLOW_TRACKING_URI`` names a server.
"""
from __future__ import annotations

import json
import netrc
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from hemcli.loggers.base import Backend, RunInfo, finite, numbers
from hemcli.progress import warn

_CONFIGURED_MODES = ("offline", "disabled", "dryrun")  # WANDB_MODE values that need no account


def wandb_logged_in() -> bool:
    """An API key in the environment, or one ``wandb login`` saved in the netrc file for the host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = Path(os.environ.get("NETRC") or "~/.netrc").expanduser()
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` as the user set it, else online with an account, else offline; never a mode
    in which wandb would prompt for a key (online without one)."""
    mode = os.environ.get("WANDB_MODE")
    if mode in _CONFIGURED_MODES:
        return mode
    if wandb_logged_in():
        return mode or "online"
    if mode:
        warn(f"WANDB_MODE={mode} but no wandb API key (WANDB_API_KEY or wandb login): logging offline")
    return "offline"


class WandbLogger(Backend):
    """A wandb run named ``<label>-seed<N>`` in project ``$WANDB_PROJECT`` (default hem), grouped by
    condition, with the recipe as its config; ``log`` per step, final metrics in the summary. Its
    files go to ``$WANDB_DIR`` if set, else to the folder of the result stem (``wandb/`` there)."""

    name = "wandb"

    def open(self, run: RunInfo) -> None:
        import wandb

        super().open(run)
        folder = None if os.environ.get("WANDB_DIR") else run.stem.parent
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.wandb_run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "hem", name=run.name, group=run.group, job_type=run.task,
            tags=[run.task], config=run.config, dir=None if folder is None else str(folder), mode=wandb_mode(),
            settings=wandb.Settings(console="off", silent=True))  # stdout stays the result path's

    def log(self, step: int, values: dict) -> None:
        self.wandb_run.log(numbers(values), step=step)

    def finish(self, step: int, metrics: dict) -> None:
        self.wandb_run.summary.update({f"final/{key}": value for key, value in numbers(metrics).items()})

    def close(self, failed: bool) -> None:
        self.wandb_run.finish(exit_code=1 if failed else 0)


def mlflow_uri(root: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else a ``file:`` store at ``<log dir>/mlruns``."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    # MLflow 3 keeps the file store working only when asked; a local store needs no server
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (root / "mlruns").resolve().as_uri()


def _param_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class MlflowLogger(Backend):
    """An MLflow run named ``<label>-seed<N>`` in experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
    hem), tagged with its condition; the recipe's leaves as parameters, each step's numbers as
    metrics at that step, the final metrics as ``final/<name>``. Through ``MlflowClient``: no
    process-wide active run, so one process can log one run after another."""

    name = "mlflow"
    BATCH = 100  # MLflow's limit of parameters per log_batch call

    def open(self, run: RunInfo) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from hemcli.runs.condition import leaves

        super().open(run)
        self.client = MlflowClient(tracking_uri=mlflow_uri(run.root))
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "hem"
        tags = {"hem.task": run.task, "hem.condition": run.group, "hem.condition_id": run.condition_id,
                "hem.seed": str(run.seed)}
        self.run_id = self.client.create_run(self._experiment_id(experiment), run_name=run.name,
                                             tags=tags).info.run_id
        params = [Param(key, _param_text(value)[:500]) for key, value in leaves(run.config).items()]
        for start in range(0, len(params), self.BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + self.BATCH])

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # another run of the sweep created it just now
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _metrics(self, values: dict, step: int, prefix: str = "") -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(prefix + key, value, stamp, step) for key, value in finite(values).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log(self, step: int, values: dict) -> None:
        self._metrics(values, step)

    def finish(self, step: int, metrics: dict) -> None:
        self._metrics(metrics, step, "final/")

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
