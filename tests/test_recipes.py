import pytest

from hemcli.errors import HemError
from hemcli.recipes import Field, flatten, parse_set, resolve, unflatten

SCHEMA = {
    "task": Field("str", "demo", choices=("demo",)),
    "dataset.name": Field("str", "digits", choices=("digits", "mnist")),
    "dataset.root": Field("str?", None),
    "loss.name": Field("str", "hem", choices=lambda: ["ce", "hem"]),
    "loss.params": Field("dict", {}),
    "optim.lr": Field("float", 1e-3, minimum=0),
    "schedule.milestones": Field("list[int]", [], minimum=1),
    "schedule.gamma": Field("float", 0.1, minimum=0),
    "epochs": Field("int", 20, minimum=1),
    "deterministic": Field("bool", False),
}


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_nested():
    cfg = resolve(SCHEMA, "demo")
    assert cfg == {"task": "demo", "dataset": {"name": "digits", "root": None},
                   "loss": {"name": "hem", "params": {}}, "optim": {"lr": 1e-3},
                   "schedule": {"milestones": [], "gamma": 0.1}, "epochs": 20, "deterministic": False}


def test_precedence_file_then_flags_then_set(tmp_path):
    recipe = write(tmp_path, "epochs: 5\noptim: {lr: 0.1}\ndataset: {name: mnist}\n")
    cfg = resolve(SCHEMA, "demo", recipe, {"epochs": 7, "optim.lr": None}, ["epochs=9"])
    assert (cfg["epochs"], cfg["optim"]["lr"], cfg["dataset"]["name"]) == (9, 0.1, "mnist")


def test_set_reads_yaml_values_and_dict_params():
    cfg = resolve(SCHEMA, "demo", sets=["loss.params.M=1000", "loss.params.margin_index=target",
                                        "schedule.milestones=[100, 105]", "optim.lr=1"])
    assert cfg["loss"]["params"] == {"M": 1000, "margin_index": "target"}
    assert cfg["schedule"]["milestones"] == [100, 105]
    assert cfg["optim"]["lr"] == 1.0 and isinstance(cfg["optim"]["lr"], float)


@pytest.mark.parametrize("sets, message", [
    (["optim.lrr=0.1"], "unknown recipe key 'optim.lrr' (did you mean optim.lr?)"),
    (["epochs=abc"], "recipe key 'epochs' must be an integer, got 'abc'"),
    (["epochs=-3"], "recipe key 'epochs' must be >= 1, got -3"),
    (["epochs=2.5"], "must be an integer"),
    (["deterministic=1"], "must be true or false"),
    (["optim.lr=fast"], "must be a number"),
    (["optim.lr=true"], "must be a number"),
    (["schedule.milestones=[1, x]"], "must be a list of integers"),
    (["loss.name=cee"], "unknown loss.name 'cee'; valid choices: ce, hem"),
    (["dataset.name=cifar"], "valid choices: digits, mnist"),
    (["epochs"], "--set needs KEY=VALUE"),
    (["epochs=[1"], "cannot read value"),
    (["epochs=true"], "recipe key 'epochs' must be an integer, got True"),
    (["epochs=1:30"], "recipe key 'epochs' must be an integer, got '1:30'"),
    (["epochs=1e400"], "recipe key 'epochs' must be an integer, got inf"),
    (["epochs=9223372036854775808"], "recipe key 'epochs' must be <= 9223372036854775807"),
    (["optim.lr=.nan"], "recipe key 'optim.lr' must be a finite number, got nan"),
    (["optim.lr=.inf"], "recipe key 'optim.lr' must be a finite number, got inf"),
    (["optim.lr=-.inf"], "recipe key 'optim.lr' must be a finite number, got -inf"),
    (["schedule.gamma=.nan"], "recipe key 'schedule.gamma' must be a finite number, got nan"),
    ([f"optim.lr={'1' * 400}"], "recipe key 'optim.lr' is out of range for a number, got 1111"),
    (["schedule.milestones=[0, 5]"], "recipe key 'schedule.milestones' must be >= 1, got 0"),
    (["loss.params.M=.nan"], "recipe key 'loss.params.M' must be a finite number, got nan"),
    ([f"loss.params.M={'9' * 400}"], "recipe key 'loss.params.M' must be <= 9223372036854775807"),
    (["loss.params={M: [1, .inf]}"], "recipe key 'loss.params.M[1]' must be a finite number, got inf"),
    (["deterministic=yes"], "recipe key 'deterministic' must be true or false, got 'yes'"),
])
def test_bad_values_name_the_problem(sets, message):
    with pytest.raises(HemError, match=None) as err:
        resolve(SCHEMA, "demo", sets=sets)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_numbers_in_a_recipe_file_read_as_meant(tmp_path):
    recipe = write(tmp_path, "optim: {lr: 1e-3}\nepochs: 010\nschedule: {milestones: [100, 105], gamma: 1e-1}\n")
    cfg = resolve(SCHEMA, "demo", recipe, {"optim.lr": 2e-3}, ["epochs=0x10"])
    assert cfg["optim"]["lr"] == 0.002 and cfg["epochs"] == 16
    assert resolve(SCHEMA, "demo", recipe)["epochs"] == 10
    assert resolve(SCHEMA, "demo", recipe)["optim"]["lr"] == 0.001
    assert resolve(SCHEMA, "demo", recipe)["schedule"] == {"milestones": [100, 105], "gamma": 0.1}


def test_duplicate_key_in_a_recipe_file_is_refused(tmp_path):
    recipe = write(tmp_path, "epochs: 3\noptim: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(HemError, match=f"malformed YAML in {recipe} at line 2: duplicate key 'lr'"):
        resolve(SCHEMA, "demo", recipe)


def test_unknown_key_lists_valid_keys(tmp_path):
    recipe = write(tmp_path, "optim:\n  learning_rate: 0.1\n")
    with pytest.raises(HemError) as err:
        resolve(SCHEMA, "demo", recipe)
    assert "unknown recipe key 'optim.learning_rate'" in str(err.value)
    assert "valid keys: dataset.name, dataset.root, deterministic, epochs" in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    recipe = write(tmp_path, "epochs: 3\noptim: {lr: 0.1\n")
    with pytest.raises(HemError) as err:
        resolve(SCHEMA, "demo", recipe)
    assert f"malformed YAML in {recipe} at line" in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("- 1\n- 2\n", "must be a mapping"),
    ("task: other\n", "is for task 'other', not 'demo'"),
    ("epochs: {a: 1}\n", "must be an integer"),
])
def test_bad_recipe_files(tmp_path, text, message):
    with pytest.raises(HemError) as err:
        resolve(SCHEMA, "demo", write(tmp_path, text))
    assert message in str(err.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(HemError, match="recipe file not found"):
        resolve(SCHEMA, "demo", tmp_path / "nope.yaml")


def test_empty_file_is_defaults(tmp_path):
    assert resolve(SCHEMA, "demo", write(tmp_path, "")) == resolve(SCHEMA, "demo")


def test_flatten_roundtrip():
    tree = {"dataset": {"name": "mnist", "root": "/d"}, "loss": {"params": {"M": 5}}}
    assert unflatten(flatten(tree, SCHEMA)) == tree


def test_parse_set_keeps_strings_with_equals():
    assert parse_set("dataset.root=/a=b") == ("dataset.root", "/a=b")
