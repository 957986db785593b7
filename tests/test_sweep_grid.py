"""hemcli.runs.sweep.grid and sweep planning: lists, ranges, grid files, loss parameters, bad input."""
import pytest

from hemcli.runs import sweep
from hemcli.errors import HemError
from hemcli.runs.sweep.grid import expand_range, flag_axis, merge_axes, set_axis, split_values

NO_FLAGS = {}


def test_split_values_keeps_brackets_together():
    assert split_values("a,[1,2],{M: 3, b: 4},b", "x") == ["a", "[1,2]", "{M: 3, b: 4}", "b"]


@pytest.mark.parametrize("text, message", [("", "--x: an empty list of values"),
                                           ("ce,,hem", "--x: an empty value in 'ce,,hem'"),
                                           ("ce,", "an empty value")])
def test_empty_values_are_refused(text, message):
    with pytest.raises(HemError, match=message):
        split_values(text, "--x")


def test_ranges():
    assert expand_range("0-4", "w") == [0, 1, 2, 3, 4]
    assert expand_range("3-3", "w") == [3]
    assert expand_range("fashion-mnist", "w") == ["fashion-mnist"]
    with pytest.raises(HemError, match="--seed: the range 4-1 runs backwards; write 1-4"):
        expand_range("4-1", "--seed")


def test_flag_and_set_axes_read_values_like_set():
    assert flag_axis("seed", "0-2,7") == ("seed", [0, 1, 2, 7])
    assert flag_axis("lr", "0.1,1e-3") == ("optim.lr", [0.1, 0.001])
    assert flag_axis("dataset", "digits,fashion-mnist") == ("dataset.name", ["digits", "fashion-mnist"])
    assert set_axis("schedule.milestones=[30,60],[60,90]") == ("schedule.milestones", [[30, 60], [60, 90]])
    with pytest.raises(HemError, match="--set needs KEY=VALUE"):
        set_axis("loss.params.M")


def test_a_key_given_twice_is_refused_and_seeds_go_last():
    assert [key for key, _ in merge_axes([("seed", [0]), ("loss.name", ["ce"])])] == ["loss.name", "seed"]
    with pytest.raises(HemError, match="seed is given twice"):
        merge_axes([("seed", [0])], [("seed", [1])])


def plan(tmp_path, flags=NO_FLAGS, sets=(), recipe=None):
    return sweep.plan("classify", recipe, flags, list(sets), tmp_path)


def test_the_acceptance_grid_is_three_ce_and_six_hem_runs(tmp_path):
    specs = plan(tmp_path, {"loss": "ce,hem", "seed": "0-2", "epochs": "3"}, ["loss.params.M=500,2000"])
    described = [(s.cfg["loss"]["name"], s.cfg["loss"]["params"].get("M"), s.seed) for s in specs]
    assert described == [("ce", None, 0), ("ce", None, 1), ("ce", None, 2),
                         ("hem", 500, 0), ("hem", 500, 1), ("hem", 500, 2),
                         ("hem", 2000, 0), ("hem", 2000, 1), ("hem", 2000, 2)]
    assert len({spec.path for spec in specs}) == 9
    assert all(spec.cfg["epochs"] == 3 for spec in specs)


def test_a_loss_parameter_applies_to_the_losses_that_take_it(tmp_path):
    specs = plan(tmp_path, {"loss": "ce,hem,squared"}, ["loss.params.M=1,2"])
    assert [(s.cfg["loss"]["name"], s.cfg["loss"]["params"].get("M")) for s in specs] == [
        ("ce", None), ("hem", 1), ("hem", 2), ("squared", 1), ("squared", 2)]


def test_a_grid_block_in_the_recipe(tmp_path):
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text("epochs: 2\ngrid:\n  loss.name: [ce, hem]\n  seed: 0-1\n  optim: {lr: [0.1, 0.01]}\n")
    specs = plan(tmp_path, recipe=recipe)
    assert len(specs) == 8
    assert {(s.cfg["loss"]["name"], s.cfg["optim"]["lr"], s.seed) for s in specs} == {
        (loss, lr, seed) for loss in ("ce", "hem") for lr in (0.1, 0.01) for seed in (0, 1)}
    assert all(s.cfg["epochs"] == 2 for s in specs)
    assert all("--recipe" in s.command for s in specs)


@pytest.mark.parametrize("flags, sets, grid, message", [
    ({}, ["optim.lrr=0.1,0.2"], None, "unknown recipe key 'optim.lrr' .did you mean optim.lr"),
    ({}, ["optim.lr="], None, "--set optim.lr: an empty list of values"),
    ({"seed": "4-1"}, [], None, "--seed: the range 4-1 runs backwards"),
    ({"loss": "ce,hem"}, ["loss.params.gamma=1,2"], None, "loss parameter 'gamma' is taken by no loss of the grid"),
    ({"loss": "ce,nope"}, [], None, "unknown loss.name 'nope'; valid choices: ce,"),
    ({"epochs": "3,zero"}, [], None, "recipe key 'epochs' must be an integer, got 'zero'"),
    ({}, [], "  seed: []\n", "grid key seed in .*: an empty list of values"),
    ({}, [], "  optim.lrr: [1]\n", "unknown recipe key 'optim.lrr'"),
    ({}, [], "  - 1\n", "grid must be a mapping"),
])
def test_bad_grids_are_refused_before_anything_runs(tmp_path, flags, sets, grid, message):
    recipe = None
    if grid is not None:
        recipe = tmp_path / "sweep.yaml"
        recipe.write_text("grid:\n" + grid)
    with pytest.raises(HemError, match=message):
        plan(tmp_path / "out", flags, sets, recipe)
    assert not (tmp_path / "out").exists()


def test_a_single_run_reads_a_sweep_file_without_its_grid(tmp_path):
    from hemcli.recipes import load_recipe_file, recipe_grid

    recipe = tmp_path / "sweep.yaml"
    recipe.write_text("epochs: 2\ngrid: {seed: 0-1}\n")
    assert load_recipe_file(recipe) == {"epochs": 2}
    assert recipe_grid(recipe) == {"seed": "0-1"}


def test_a_single_run_of_a_sweep_file_says_it_runs_one(tmp_path, capsys):
    from hemcli import cli

    recipe = tmp_path / "sweep.yaml"
    recipe.write_text("epochs: 1\ngrid: {seed: 0-1}\n")
    assert cli.main(["classify", "-r", str(recipe), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err == (f"hem: warning: {recipe} has a grid: block; hem classify runs one run of it "
                   "(hem sweep classify runs the grid)\n")
    assert len(list((tmp_path / "out").rglob("*.json"))) == 1


def test_a_folder_where_a_result_goes_stops_the_sweep_before_it_starts(tmp_path):
    specs = plan(tmp_path, {"loss": "ce,hem", "epochs": "1"})
    specs[1].path.mkdir(parents=True)
    with pytest.raises(HemError, match=f"the result path {specs[1].path} exists and is not a file"):
        sweep.validate(specs, tmp_path, load_data=False)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]  # nothing written
