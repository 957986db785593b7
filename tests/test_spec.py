"""hemcli.runs.spec: one path per (condition, seed), the condition in the result, the run's command line."""
import json
import shlex

import pytest

from hemcli import cli
from hemcli.errors import HemError
from hemcli.report import report
from hemcli.runs import execute
from hemcli.runs.condition import condition_id, condition_of
from hemcli.runs.spec import plan_run, spell_arg
from hemcli.values import read_value


def plan(tmp_path, sets=(), flags=None, recipe=None, **kwargs):
    return plan_run("classify", recipe, flags or {}, list(sets), tmp_path, **kwargs)


def test_default_run_path_and_condition(tmp_path):
    spec = plan(tmp_path)
    assert spec.cfg["loss"]["params"] == {"M": 2000, "margin": None, "margin_index": "logit"}  # defaults filled
    identity = condition_id(condition_of(spec.cfg))
    assert spec.path == tmp_path / f"classify/digits/lenet/hem/base--{identity}/seed0.json"
    assert spec.condition == {"id": identity, "label": "base", "differs": {}}


@pytest.mark.parametrize("sets, folder", [
    (["loss.params.M=1000"], "M=1000"), (["optim.lr=0.01"], "lr=0.01"), (["epochs=3"], "epochs=3"),
    (["loss.params.M=500", "optim.lr=0.05"], "M=500,lr=0.05"),
])
def test_a_changed_key_is_its_own_folder(tmp_path, sets, folder):
    spec, base = plan(tmp_path, sets), plan(tmp_path)
    assert spec.path.parent.name.split("--")[0] == folder
    assert spec.path != base.path and spec.condition["id"] != base.condition["id"]


def test_seed_device_and_data_root_share_the_condition(tmp_path):
    base = plan(tmp_path)
    other = plan(tmp_path, ["device=cpu", "dataset.root=/elsewhere", "deterministic=true"], {"seed": 3})
    assert other.path == base.path.with_name("seed3.json")


def test_the_same_recipe_spelled_differently_is_the_same_path(tmp_path):
    assert plan(tmp_path, ["loss.params.M=2000"]).path == plan(tmp_path).path  # M=2000 is the default
    assert plan(tmp_path, ["loss.params.M=1000.0"]).path == plan(tmp_path, ["loss.params.M=1000"]).path
    assert plan(tmp_path, ["optim.lr=1e-2"]).path == plan(tmp_path, flags={"optim.lr": 0.01}).path


def test_label_is_relative_to_the_recipe_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 3\noptim: {lr: 0.01}\n")
    assert plan(tmp_path, recipe=recipe).path.parent.name.startswith("base--")
    assert plan(tmp_path, ["epochs=4"], recipe=recipe).path.parent.name.startswith("epochs=4--")


def test_a_parameter_the_loss_does_not_take_is_refused_or_dropped(tmp_path):
    with pytest.raises(HemError, match="loss 'ce' has no parameter 'M'; valid parameters: tau"):
        plan(tmp_path, ["loss.params.M=500"], {"loss.name": "ce"})
    spec = plan(tmp_path, ["loss.params.M=500"], {"loss.name": "ce"}, drop_foreign_params=True)
    assert spec.cfg["loss"]["params"] == {"tau": 1.0}


@pytest.mark.parametrize("value", ["hem", "true", "1e3", "", "a b", 0.001, 1e-5, 2000, True, None, [30, 60],
                                   {"M": 500}, "null", "0-4"])
def test_spelled_arguments_read_back_to_the_value(value):
    assert read_value(spell_arg(value)) == value


def planned_by_command(command, tmp_path, monkeypatch):
    """What `hem classify ...` plans for a printed command line (nothing is trained)."""
    seen = []
    monkeypatch.setattr(execute, "train", lambda spec, **kwargs: seen.append(spec) or {"metrics": {}})
    args = shlex.split(command)
    assert args[:2] == ["hem", "classify"]
    assert cli.main([*args[1:], "--quiet"]) == 0
    return seen[0]


@pytest.mark.parametrize("recipe_text, sets, flags", [
    (None, ["loss.params.M=500", "schedule.milestones=[2,4]"], {"optim.lr": 0.05, "seed": 2}),
    (None, ["dataset.root=/data dir", "augment=crop_flip", "deterministic=true"], {"loss.name": "ce"}),
    ("loss: {name: hem, params: {M: 100}}\nepochs: 2\n", [], {"loss.name": "ce"}),
    ("loss: {name: hem, params: {M: 100}}\nepochs: 2\n", ["loss.params.margin=0.5"], {}),
    ("epochs: 2\n", ["optim.name=sgd", "loss.params.tau=2"], {"loss.name": "ce", "epochs": 30}),
    (None, ["eval=[clean,ood,attack]", "evaluation.attack_samples=100", "evaluation.attack_strength=official",
            "evaluation.corrupt_samples=null", "evaluation.scores=[msp]"], {}),
    ("eval: [clean, calibration]\nevaluation: {ood_samples: 50}\n", ["evaluation.attack_eps_l2=1.5"], {}),
])
def test_the_command_line_plans_the_same_run(tmp_path, monkeypatch, recipe_text, sets, flags):
    recipe = None
    if recipe_text:
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(recipe_text)
    spec = plan(tmp_path / "out", sets, flags, recipe, drop_foreign_params=True)
    again = planned_by_command(spec.shell_command(), tmp_path, monkeypatch)
    assert (again.path, again.cfg, again.condition) == (spec.path, spec.cfg, spec.condition)


def test_evaluation_settings_are_not_part_of_the_condition(tmp_path):
    base = plan(tmp_path, [], {})
    measured = plan(tmp_path, ["eval=[clean,ood,attack]", "evaluation.attack_samples=100",
                               "evaluation.scores=[msp]"], {})
    assert measured.path == base.path and measured.condition == base.condition
    assert "--eval clean,ood,attack" in measured.shell_command()


# ---------------------------------------------------------------- through the command line


def classify(tmp_path, *args):
    return cli.main(["classify", "--epochs", "1", "--out", str(tmp_path), "--quiet", *args])


def test_runs_differing_in_one_key_both_succeed_and_a_rerun_is_already_done(tmp_path, capsys):
    for extra in (["--set", "loss.params.M=1000"], ["--set", "loss.params.M=4000"], ["--lr", "0.01"],
                  ["--epochs", "2"]):
        assert classify(tmp_path, *extra) == 0
    capsys.readouterr()
    assert classify(tmp_path, "--set", "loss.params.M=4000") == 0  # issue 27: done, not trained again
    assert "hem: already done: " in capsys.readouterr().err
    results = [json.loads(path.read_text()) for path in sorted(tmp_path.rglob("seed0.json"))]
    assert len(results) == 4
    rows = json.loads(report(tmp_path, fmt="json", warn=lambda line: None))
    assert len(rows) == 4  # one row per condition, the differing keys as columns
    assert sorted((row["M"], row["lr"], row["epochs"]) for row in rows) == [
        (1000, 0.001, 1), (2000, 0.001, 2), (2000, 0.01, 1), (4000, 0.001, 1)]
    for result in results:
        assert result["condition"]["id"] == condition_id(condition_of(result["recipe"]))
        assert result["run"] + ".json" in {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("seed0.json")}


def test_dataset_and_arch_flags_pick_the_papers_recipe(tmp_path):
    """`hem classify --dataset tin --arch wrn28-10` trains as Table 3 says (200 epochs, SGD 0.1, drops at
    50/100/150), and the run's command line names the recipe; a pair without a recipe keeps the defaults."""
    spec = plan_run("classify", None, {"dataset.name": "tin", "model.arch": "wrn28-10"}, [], tmp_path)
    cfg = spec.cfg
    assert (cfg["epochs"], cfg["optim"]["name"], cfg["optim"]["lr"], cfg["schedule"]["milestones"]) == (
        200, "sgd", 0.1, [50, 100, 150])
    assert "--recipe" in spec.command and spec.command[spec.command.index("--recipe") + 1] == \
        "classify/tin-wrn28-10"  # the packaged name: the same wherever hem is installed
    other = plan_run("classify", None, {"dataset.name": "cifar10", "model.arch": "resnet18"}, [], tmp_path)
    assert other.cfg["epochs"] == 30 and "--recipe" not in other.command
