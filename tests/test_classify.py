"""End-to-end: train on the offline default, check the result file, report it, resume it."""
import json

import pytest
import torch

from conftest import planned_result
from hemcli.cli import main
from hemcli.errors import HemError
from hemcli.recipes import resolve
from hemcli.tasks import classify

RESULT_FIELDS = {"schema_version", "task", "status", "run", "created", "seed", "recipe", "metrics",
                 "history", "environment", "timings"}


def test_default_recipe_file_equals_builtin_defaults():
    schema = classify.schema()
    assert resolve(schema, "classify", "recipes/classify/digits.yaml") == resolve(schema, "classify")


@pytest.mark.parametrize("recipe", ["mnist-lenet", "mnist-convnet", "mnist-mlp", "fashion-mnist-lenet"])
def test_paper_recipes_resolve(recipe):
    cfg = resolve(classify.schema(), "classify", f"recipes/classify/{recipe}.yaml")
    assert (cfg["optim"]["name"], cfg["optim"]["lr"], cfg["batch_size"], cfg["epochs"]) == ("adam", 1e-3, 128, 20)


@pytest.mark.slow
def test_default_recipe_trains_ce_and_hem_then_reports(capsys, tmp_path):
    out = tmp_path / "results"
    for loss in ("ce", "hem"):
        assert main(["classify", "--loss", loss, "--out", str(out), "--quiet"]) == 0
    paths = capsys.readouterr().out.split()
    assert paths == [str(planned_result(out, {"loss.name": loss})) for loss in ("ce", "hem")]
    for path in paths:
        result = json.loads(open(path).read())
        assert RESULT_FIELDS <= set(result)
        assert result["metrics"]["clean_accuracy"] >= 95.0
        assert len(result["history"]) == result["recipe"]["epochs"] == 30
        # HEM's per-sample loss can be exactly 0: its epochs record the share of such samples (issue 29)
        shares = {"zero_loss_share"} if result["recipe"]["loss"]["name"] == "hem" else set()
        assert {"epoch", "train_loss", "train_accuracy", "test_accuracy", "lr", "seconds"} | shares == set(
            result["history"][0])
        assert result["environment"]["device"] == "cpu" or torch.cuda.is_available()
        assert result["recipe"]["dataset"]["name"] == "digits"
        assert result["history"][-1]["test_accuracy"] == result["metrics"]["clean_accuracy"]
    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if "digits" in line]
    assert len(rows) == 2 and "| ce " in rows[0] and "| hem " in rows[1]


def small_cfg(**sets):
    base = ["epochs=4", "model.arch=mlp", "deterministic=true", "batch_size=64", "loss.name=hem"]
    return resolve(classify.schema(), "classify", sets=base + [f"{k}={v}" for k, v in sets.items()])


class Interrupt(Exception):
    pass


def test_resume_matches_uninterrupted_run(tmp_path, monkeypatch):
    cfg = small_cfg()
    straight = classify.run(cfg, checkpoint=tmp_path / "a.pt", quiet=True)
    real_epoch = classify.Progress.epoch

    def stop_after_two(self, epoch, *args, **kwargs):
        real_epoch(self, epoch, *args, **kwargs)
        if epoch == 2:
            raise Interrupt

    monkeypatch.setattr(classify.Progress, "epoch", stop_after_two)
    with pytest.raises(Interrupt):
        classify.run(cfg, checkpoint=tmp_path / "b.pt", quiet=True)
    monkeypatch.setattr(classify.Progress, "epoch", real_epoch)
    # The interruption came before epoch 2's checkpoint, so the run resumes after epoch 1.
    resumed = classify.run(cfg, checkpoint=tmp_path / "b.pt", resume=True, quiet=True)
    assert resumed["metrics"] == straight["metrics"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in straight["history"]]


def test_resume_via_cli_after_kill(capsys, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ["classify", "--arch", "mlp", "--epochs", "3", "--quiet", "--out", str(out), "--deterministic"]
    assert main(args) == 0
    [done] = out.rglob("*.json")
    expected = json.loads(done.read_text())["metrics"]
    done.unlink()  # as if the run had been killed after its last checkpoint but before the result
    assert main(args + ["--resume"]) == 0
    assert json.loads(done.read_text())["metrics"] == expected


SCHEDULED = ["classify", "--arch", "mlp", "--epochs", "5", "--quiet", "--deterministic", "--batch-size", "64",
             "--set", "optim.name=sgd", "--lr", "0.1", "--set", "schedule.name=multistep",
             "--set", "schedule.milestones=[2, 3]", "--set", "augment=crop_flip"]


def without_seconds(history):
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


def test_the_schedule_is_recorded_per_epoch(capsys, tmp_path):
    assert main(SCHEDULED + ["--out", str(tmp_path)]) == 0
    [path] = tmp_path.rglob("*.json")
    lrs = [epoch["lr"] for epoch in json.loads(path.read_text())["history"]]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.001])  # x0.1 after epochs 2 and 3


def test_interrupted_mid_run_resumes_to_the_same_numbers(capsys, tmp_path, monkeypatch):
    """Ctrl-C in epoch 3 of 5, with a multistep schedule and augmentation; --resume finishes the run."""
    assert main(SCHEDULED + ["--out", str(tmp_path / "straight")]) == 0
    [straight] = (tmp_path / "straight").rglob("*.json")
    real_epoch = classify.Progress.epoch

    def ctrl_c_in_epoch_3(self, epoch, *args, **kwargs):
        if epoch == 3:
            raise KeyboardInterrupt
        real_epoch(self, epoch, *args, **kwargs)

    monkeypatch.setattr(classify.Progress, "epoch", ctrl_c_in_epoch_3)
    out = tmp_path / "resumed"
    capsys.readouterr()
    assert main(SCHEDULED + ["--out", str(out)]) == 130
    [checkpoint] = out.rglob("seed0.ckpt.pt")
    assert capsys.readouterr().err == f"hem: interrupted; continue with --resume (checkpoint {checkpoint})\n"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["seed0.ckpt.pt"]  # lock released
    monkeypatch.setattr(classify.Progress, "epoch", real_epoch)
    assert main(SCHEDULED + ["--out", str(out), "--resume"]) == 0
    expected, resumed = json.loads(straight.read_text()), json.loads((out / straight.relative_to(
        tmp_path / "straight")).read_text())
    assert resumed["metrics"] == expected["metrics"]
    assert without_seconds(resumed["history"]) == without_seconds(expected["history"])


def test_resume_without_a_checkpoint_says_so_and_trains(capsys, tmp_path):
    assert main(["classify", "--arch", "mlp", "--epochs", "1", "--quiet", "--out", str(tmp_path), "--resume"]) == 0
    checkpoint = planned_result(tmp_path, {"model.arch": "mlp", "epochs": 1}).with_suffix(".ckpt.pt")
    assert capsys.readouterr().err == f"hem: warning: no checkpoint at {checkpoint}; starting from epoch 1\n"


def poison_the_loss(monkeypatch, after_batches):
    import hemcli.losses

    real_build = hemcli.losses.build_loss

    def poisoned(*args, **kwargs):
        inner, calls = real_build(*args, **kwargs), []

        def loss(logits, targets):
            calls.append(1)
            value = inner(logits, targets)
            return value * float("nan") if len(calls) > after_batches else value
        return loss

    monkeypatch.setattr(hemcli.losses, "build_loss", poisoned)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(capsys, tmp_path, monkeypatch):
    poison_the_loss(monkeypatch, after_batches=23)  # 23 batches of 64 = epoch 1
    out = tmp_path / "out"
    code = main(["classify", "--arch", "mlp", "--epochs", "3", "--batch-size", "64", "--quiet", "--out", str(out)])
    checkpoint = planned_result(out, {"model.arch": "mlp", "epochs": 3, "batch_size": 64}).with_suffix(".ckpt.pt")
    assert code == 1
    assert capsys.readouterr().err == ("hem: error: loss became nan in epoch 2; stopped, last good checkpoint "
                                       f"(epoch 1) kept at {checkpoint}\n")
    assert list(out.rglob("*.json")) == [] and list(out.rglob(".*")) == []
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1


def test_nan_loss_in_the_first_epoch_keeps_nothing(capsys, tmp_path, monkeypatch):
    poison_the_loss(monkeypatch, after_batches=3)
    code = main(["classify", "--arch", "mlp", "--epochs", "3", "--quiet", "--out", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().err == ("hem: error: loss became nan in epoch 1; stopped, "
                                       "no checkpoint was written yet\n")
    assert not (tmp_path / "out").exists()


def test_setup_rejects_loss_params():
    with pytest.raises(HemError):
        classify.setup(small_cfg(**{"loss.params": "{Q: 1}"}))
