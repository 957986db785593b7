"""The command line's conventions (issue 27): -h everywhere, --version, --dry-run on every training
command, hem sweep taking every flag of its task, and a result JSON as the recipe of a rerun."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hemcli.cli import main
from test_bad_input import check_case, snapshot


def hem(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["classify", "longtail", "continual", "segment", "sweep", "evaluate", "attack",
                                     "report", "losses", "archs", "datasets", "recipes"])
def test_every_command_takes_minus_h(capsys, command):
    code, out, _ = hem(capsys, command, "-h")
    assert code == 0 and out.startswith(f"Usage: hem {command} ")


def test_version_names_hem_torch_and_cuda(capsys):
    import torch

    from hemcli import __version__

    code, out, _ = hem(capsys, "--version")
    assert code == 0 and out.count("\n") == 1
    assert out.startswith(f"hem {__version__} (torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}")


@pytest.mark.parametrize("task, args", [("classify", []), ("longtail", ["--imbalance", "100"]),
                                        ("continual", ["--strategy", "ewc"]), ("segment", ["--encoder", "resnet34"])])
def test_a_dry_run_prints_the_path_and_writes_nothing(tmp_path, monkeypatch, capsys, task, args):
    from hemcli.runs.spec import plan_run

    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = hem(capsys, task, "--epochs", "1", *args, "--dry-run", "--verbose")
    flags = dict(zip(args[::2], args[1::2]))
    keys = {"--imbalance": "longtail.imbalance", "--strategy": "strategy.name", "--encoder": "model.encoder"}
    values = {keys[flag]: float(value) if flag == "--imbalance" else value for flag, value in flags.items()}
    expected = plan_run(task, None, {"epochs": 1, **values}, [], "results").path
    assert (code, out) == (0, f"{expected}\n")
    assert f"hem: dry run, would train: hem {task} " in err and "\nepochs: 1\n" in err  # the resolved recipe
    assert snapshot(tmp_path) == before


def test_a_dry_run_still_refuses_bad_input(tmp_path, monkeypatch, capsys):
    check_case(tmp_path, monkeypatch, capsys, ["classify", "--dry-run", "--loss", "xent"],
               "unknown loss.name 'xent'", None)


def test_sweep_takes_the_flags_of_its_task(tmp_path, capsys):
    code, out, _ = hem(capsys, "sweep", "continual", "--strategy", "ewc,si", "--loss", "ce,hem", "--seed", "0",
                       "--epochs", "1", "--out", str(tmp_path), "--dry-run")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert sorted(re.search(r"--strategy (\w+) --loss (\w+)", line).groups() for line in lines) == [
        ("ewc", "ce"), ("ewc", "hem"), ("si", "ce"), ("si", "hem")]
    code, out, _ = hem(capsys, "sweep", "longtail", "--imbalance", "10,100", "--oversample", "--epochs", "1",
                       "--out", str(tmp_path), "--dry-run")
    assert code == 0 and len(out.splitlines()) == 2 and all("sampling=oversample" in line for line in out.splitlines())


def test_sweep_refuses_a_flag_of_another_task(tmp_path, monkeypatch, capsys):
    check_case(tmp_path, monkeypatch, capsys, ["sweep", "classify", "--strategy", "ewc", "--dry-run"],
               "hem sweep classify takes no --strategy: it is a flag of hem continual", None)


def test_the_continual_sweep_of_the_issue_runs_its_four_runs(tmp_path, capsys):
    code, out, err = hem(capsys, "sweep", "continual", "--strategy", "ewc,si", "--loss", "ce,hem", "--seed", "0",
                         "--epochs", "1", "--out", str(tmp_path), "--quiet")
    assert code == 0, err
    assert len(list(tmp_path.rglob("seed0.json"))) == 4 and out.count("| continual ") == 4


def test_a_result_reruns_its_recipe_with_another_seed(tmp_path, capsys):
    out = tmp_path / "out"
    code, first, _ = hem(capsys, "classify", "--epochs", "1", "--set", "loss.params.M=500", "--arch", "mlp", "--quiet",
                         "--out", str(out))
    assert code == 0
    original = json.loads(Path(first.strip()).read_text())
    code, second, _ = hem(capsys, "classify", "-r", first.strip(), "--seed", "1", "--quiet", "--out", str(out))
    assert code == 0
    rerun = json.loads(Path(second.strip()).read_text())
    assert rerun["condition"] == original["condition"] and rerun["seed"] == 1
    assert Path(second.strip()).parent == Path(first.strip()).parent  # the same condition's folder
    assert {k: v for k, v in rerun["recipe"].items() if k != "seed"} == \
           {k: v for k, v in original["recipe"].items() if k != "seed"}
    code, third, _ = hem(capsys, "classify", "-r", first.strip(), "--lr", "0.01", "--dry-run", "--out", str(out))
    assert code == 0 and "/epochs=1,M=500,lr=0.01--" in third  # a flag that changes the run: a condition of its own


def test_a_result_of_another_task_is_refused(tmp_path, monkeypatch, capsys):
    def continual_result(root: Path) -> None:
        (root / "r.json").write_text(json.dumps({"schema_version": 1, "task": "continual", "status": "complete",
                                                 "recipe": {}, "metrics": {}}))

    check_case(tmp_path, monkeypatch, capsys, ["classify", "-r", "r.json", "--quiet"],
               "r.json is a result of hem continual, not of hem classify; rerun it with hem continual -r r.json",
               continual_result)


def test_a_packaged_recipe_is_named_alike_by_its_name_and_by_its_path(tmp_path, capsys):
    from conftest import REPO
    from hemcli.runs.spec import plan_run

    by_name = plan_run("classify", "classify/cifar10-resnet32", {}, [], tmp_path)
    by_short_name = plan_run("classify", "cifar10-resnet32", {}, [], tmp_path)
    by_path = plan_run("classify", REPO / "hemcli" / "recipes" / "classify" / "cifar10-resnet32.yaml", {}, [], tmp_path)
    by_old_path = plan_run("classify", "recipes/classify/cifar10-resnet32.yaml", {}, [], tmp_path)
    assert by_name.command == by_short_name.command == by_path.command == by_old_path.command
    assert by_name.command[2:4] == ("--recipe", "classify/cifar10-resnet32")
    assert by_name.path == by_path.path


def test_dataset_and_arch_pick_the_paper_recipe_and_say_so(tmp_path, monkeypatch, capsys):
    """SPEC: Fashion-MNIST LeNet trains Adam 1e-3, batch 128, 20 epochs; hem's defaults differ (batch 32)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = hem(capsys, "classify", "--dataset", "fashion-mnist", "--arch", "lenet", "--dry-run", "--verbose")
    assert code == 0 and "hem: training as the paper's recipe classify/fashion-mnist-lenet says\n" in err
    assert "\nbatch_size: 128\n" in err and "optim: {name: adam, lr: 0.001," in err and "\nepochs: 20\n" in err
    code, _, err = hem(capsys, "classify", "--dataset", "digits", "--arch", "lenet", "--dry-run")
    assert code == 0 and err.startswith("hem: no paper recipe for dataset digits and model lenet; training with "
                                        "hem's defaults (hem recipes classify lists the paper's)\n")
