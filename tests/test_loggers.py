"""Experiment loggers (issue 28, item 3): ``--logger csv,tensorboard,wandb,mlflow`` sends every epoch's
history row and the final metrics of a run; the numbers a logger holds are the result JSON's."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from conftest import planned_result
from hemcli.cli import main

SMALL = ["--set", "dataset.limit=300", "--quiet"]  # digits, 300 images a split: 10 batches of 32 an epoch


def hem(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_result(out: Path) -> tuple[Path, dict]:
    [path] = out.rglob("seed0.json")
    return path, json.loads(path.read_text())


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_csv_and_tensorboard_hold_the_result_history(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = hem(capsys, "classify", "--epochs", "2", "--logger", "csv,tensorboard", *SMALL, "--out", out)
    assert code == 0, err
    path, result = only_result(out)
    assert path == planned_result(out, {"epochs": 2}, ["dataset.limit=300"])  # a run logged or not: one condition
    history = result["history"]
    rows = read_csv(path.with_suffix(".csv"))
    assert list(rows[0]) == list(history[0])  # the columns are the history keys, in order
    assert [{key: float(value) for key, value in row.items()} for row in rows] == history  # exactly (repr)
    scalars = tensorboard_scalars(path.with_suffix(".tensorboard"))
    for key in history[0]:
        assert [step for step, _ in scalars[key]] == [1, 2]
        assert [value for _, value in scalars[key]] == pytest.approx([h[key] for h in history], rel=1e-6)
    assert scalars["final/clean_accuracy"] == [(2, pytest.approx(result["metrics"]["clean_accuracy"], rel=1e-6))]


def test_a_resumed_run_logs_every_epoch_once(tmp_path, capsys, monkeypatch):
    from hemcli.progress import Progress

    real_epoch = Progress.epoch

    def killed_in_epoch_2(self, epoch, seconds, **metrics):
        if epoch == 2:
            raise KeyboardInterrupt  # before epoch 2's checkpoint: the run resumes at epoch 2
        real_epoch(self, epoch, seconds, **metrics)

    out = tmp_path / "out"
    args = ["classify", "--epochs", "3", "--logger", "csv,tensorboard", *SMALL, "--out", out]
    monkeypatch.setattr(Progress, "epoch", killed_in_epoch_2)
    assert hem(capsys, *args)[0] == 130
    monkeypatch.setattr(Progress, "epoch", real_epoch)
    code, _, err = hem(capsys, *args, "--resume")
    assert code == 0, err
    path, result = only_result(out)
    assert [float(row["train_loss"]) for row in read_csv(path.with_suffix(".csv"))] == [
        h["train_loss"] for h in result["history"]]
    losses = tensorboard_scalars(path.with_suffix(".tensorboard"))["train_loss"]
    assert [step for step, _ in losses] == [1, 2, 3]  # epoch 1 from the killed process, 2 and 3 after
    assert [value for _, value in losses] == pytest.approx([h["train_loss"] for h in result["history"]], rel=1e-6)
    code, _, err = hem(capsys, *args, "--overwrite")  # trained anew: the old run's events and rows go
    assert code == 0, err
    assert len(list(path.with_suffix(".tensorboard").glob("events.out.tfevents.*"))) == 1
    assert [step for step, _ in tensorboard_scalars(path.with_suffix(".tensorboard"))["train_loss"]] == [1, 2, 3]
    assert len(read_csv(path.with_suffix(".csv"))) == 3


def test_a_logger_failing_mid_run_warns_once_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    from hemcli.loggers.files import TensorBoardLogger

    real_log = TensorBoardLogger.log

    def disk_full_after_epoch_1(self, step, values):
        if step > 1:
            raise OSError(28, "No space left on device")
        real_log(self, step, values)

    monkeypatch.setattr(TensorBoardLogger, "log", disk_full_after_epoch_1)
    out = tmp_path / "out"
    code, _, err = hem(capsys, "classify", "--epochs", "3", "--logger", "tensorboard,csv", *SMALL, "--out", out)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("hem: warning:")]
    assert warnings == ["hem: warning: the tensorboard logger failed (OSError: [Errno 28] No space left on device); "
                        "the run goes on without it"]
    path, result = only_result(out)
    assert len(read_csv(path.with_suffix(".csv"))) == 3  # the other logger went on
    assert [s for s, _ in tensorboard_scalars(path.with_suffix(".tensorboard"))["train_loss"]] == [1]


@pytest.mark.parametrize("command", [["classify"], ["classify", "--dry-run"], ["sweep", "classify", "--loss", "ce,hem"]],
                         ids=["classify", "dry-run", "sweep"])
@pytest.mark.parametrize("backend", ["wandb", "mlflow", "tensorboard"])
def test_a_missing_backend_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch, command, backend):
    monkeypatch.setitem(sys.modules, backend, None)  # import fails as if the package were not installed
    out = tmp_path / "out"
    code, stdout, err = hem(capsys, *command, "--epochs", "1", "--logger", f"csv,{backend}", "--out", out)
    assert code == 2 and stdout == ""
    assert err == (f"hem: error: --logger {backend} needs the {backend} package: pip install 'hem[{backend}]' "
                   "(or hem[loggers] for every logger)\n")
    assert not out.exists()


def test_an_unknown_logger_lists_the_valid_ones(tmp_path, capsys):
    code, _, err = hem(capsys, "classify", "--logger", "csv,neptune", "--out", tmp_path / "out")
    assert code == 2
    assert err == "hem: error: unknown logger 'neptune'; valid choices: csv, tensorboard, wandb, mlflow\n"


def test_a_worker_without_the_package_fails_its_run_with_the_extra(tmp_path, monkeypatch):
    """What a Ray or Slurm worker does when its environment lacks the package the planner had."""
    from hemcli.loggers.run import make_backend

    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(Exception, match=r"pip install 'hem\[mlflow\]'"):
        make_backend("mlflow")


def test_wandb_never_runs_in_a_mode_that_would_prompt(tmp_path, monkeypatch, capsys):
    from hemcli.loggers.services import wandb_mode

    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_mode() == "offline"  # no account anywhere
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode() == "offline"  # online without a key would ask for one
    assert capsys.readouterr().err == ("hem: warning: WANDB_MODE=online but no wandb API key (WANDB_API_KEY or "
                                       "wandb login): logging offline\n")
    netrc.write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")  # what wandb login saves
    netrc.chmod(0o600)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"  # the user's choice stands
    monkeypatch.delenv("WANDB_MODE")
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert wandb_mode() == "online"


def test_wandb_offline_writes_a_run_folder(tmp_path, capsys, monkeypatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    out = tmp_path / "out"
    code, stdout, err = hem(capsys, "classify", "--epochs", "1", "--logger", "wandb", *SMALL, "--out", out)
    import wandb
    wandb.teardown()  # its service process, which a command's exit ends
    assert code == 0, err
    path, result = only_result(out)
    assert stdout == f"{path}\n"  # wandb wrote nothing to stdout
    [run_file] = (tmp_path / "wandb-home" / "wandb").glob("offline-run-*/run-*.wandb")
    logged = run_file.read_bytes()  # protobuf records: the strings and the values' JSON stand in it as they are
    label = result["condition"]["label"]
    assert f"{label}-seed0".encode() in logged and path.parent.relative_to(out).as_posix().encode() in logged
    for key, value in result["history"][0].items():  # wandb's core writes 9.0 as 9
        text = json.dumps(int(value) if float(value).is_integer() else value)
        assert key.encode() in logged and text.encode() in logged
    assert b"final/clean_accuracy" in logged


def test_mlflow_logs_to_a_local_file_store(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'hem[mlflow]')")
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # hem sets it for its own store; restored after the test
    out = tmp_path / "out"
    code, _, err = hem(capsys, "classify", "--epochs", "2", "--logger", "mlflow", *SMALL, "--out", out)
    assert code == 0, err
    path, result = only_result(out)
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    [run] = client.search_runs([client.get_experiment_by_name("hem").experiment_id])
    assert run.info.run_name == f"{result['condition']['label']}-seed0" and run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == "0.001" and run.data.params["loss.name"] == "hem"
    assert run.data.tags["hem.condition_id"] == result["condition"]["id"]
    for key in ("train_loss", "test_accuracy", "lr"):
        logged = client.get_metric_history(run.info.run_id, key)
        assert sorted((m.step, m.value) for m in logged) == [(h["epoch"], h[key]) for h in result["history"]]
    assert run.data.metrics["final/clean_accuracy"] == result["metrics"]["clean_accuracy"]


def test_continual_logs_one_step_per_experience(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = hem(capsys, "continual", "--epochs", "1", "--logger", "csv", "--set", "benchmark.experiences=2",
                       "--set", "dataset.limit=400", "--quiet", "--out", out)
    assert code == 0, err
    path, result = only_result(out)
    rows = read_csv(path.with_suffix(".csv"))
    matrix = result["continual"]["accuracy_matrix"]
    assert [int(row["experience"]) for row in rows] == [1, 2]
    for row, accuracies in zip(rows, matrix):
        assert [row[f"test_accuracy/exp{j + 1}"] for j in range(2)] == [
            "" if acc is None else repr(acc) for acc in accuracies]
    assert float(rows[-1]["seen_accuracy"]) == pytest.approx(result["metrics"]["final_accuracy"], abs=1e-9)
    assert float(rows[-1]["average_forgetting"]) == pytest.approx(result["metrics"]["average_forgetting"], abs=1e-9)
    assert rows[0]["average_forgetting"] == ""  # no forgetting after one experience


def test_sweep_workers_log_each_run(tmp_path, monkeypatch):
    """Every backend runs ``sweep_one(spec)`` on the recipe it was given (Ray and Slurm on ``anchored``
    specs): the logger settings travel in the recipe, a relative log.dir made absolute."""
    from hemcli.runs.execute import sweep_one
    from hemcli.runs.spec import plan_run
    from hemcli.runs.sweep.backends import anchored

    spec = plan_run("classify", None, {"epochs": 1}, ["dataset.limit=300", "log.loggers=[csv]", "log.dir=logs"],
                    tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    worker_spec = anchored(spec)
    assert worker_spec.cfg["log"] == {"loggers": ["csv"], "dir": str(tmp_path / "logs")}
    monkeypatch.chdir("/")  # a worker that starts in another folder
    outcome = sweep_one(worker_spec)
    assert outcome["status"] == "done", outcome
    rows = read_csv(tmp_path / "logs" / f"{spec.name}.csv")
    history = json.loads(spec.path.read_text())["history"]
    assert [float(row["train_loss"]) for row in rows] == [h["train_loss"] for h in history]
