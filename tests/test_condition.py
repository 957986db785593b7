"""hemcli.runs.condition: what a run is apart from its seed, its id, and the folder label."""
import hashlib
import json

from hemcli.runs.condition import (LABEL_LIMIT, RUN_KEYS, condition_id, condition_of, differences, label, leaves,
                                   short_names, spell)

RECIPE = {"task": "classify", "dataset": {"name": "digits", "root": "/data", "download": True},
          "model": {"arch": "lenet"}, "loss": {"name": "hem", "params": {"M": 2000, "margin": None}},
          "optim": {"name": "adam", "lr": 0.001}, "epochs": 30, "seed": 4, "device": "cuda:1",
          "deterministic": True, "channels_last": False, "eval": ["clean_accuracy"]}


def test_leaves_flatten_every_level_and_keep_empty_mappings():
    assert leaves({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}


def test_condition_drops_seed_and_where_or_how_keys():
    condition = condition_of(RECIPE)
    assert list(condition) == sorted(condition)
    assert condition == {"task": "classify", "dataset.name": "digits", "model.arch": "lenet",
                         "loss.name": "hem", "loss.params.M": 2000, "loss.params.margin": None,
                         "optim.name": "adam", "optim.lr": 0.001, "epochs": 30}
    assert not set(RUN_KEYS) & set(condition)


def test_id_is_a_hash_of_the_sorted_condition():
    condition = condition_of(RECIPE)
    text = json.dumps(condition, sort_keys=True, separators=(",", ":"))
    assert condition_id(condition) == hashlib.sha256(text.encode()).hexdigest()[:10]


def test_id_ignores_run_keys_and_key_order_but_not_values():
    moved = {**RECIPE, "seed": 9, "device": "cpu", "dataset": {**RECIPE["dataset"], "root": "/other"}}
    assert condition_id(condition_of(moved)) == condition_id(condition_of(RECIPE))
    reordered = dict(reversed(list(condition_of(RECIPE).items())))
    assert condition_id(reordered) == condition_id(condition_of(RECIPE))
    for changed in ({**RECIPE, "epochs": 3}, {**RECIPE, "optim": {"name": "adam", "lr": 0.01}}):
        assert condition_id(condition_of(changed)) != condition_id(condition_of(RECIPE))


def test_a_whole_float_is_the_same_condition_as_the_integer():
    as_float = {**RECIPE, "loss": {"name": "hem", "params": {"M": 2000.0, "margin": None}}}
    assert condition_id(condition_of(as_float)) == condition_id(condition_of(RECIPE))
    assert condition_id({"flag": True}) != condition_id({"flag": 1})


def test_short_names_are_the_shortest_unambiguous_suffix():
    keys = ["optim.lr", "optim.name", "loss.name", "loss.params.M", "model.arch", "dataset.name"]
    assert short_names(keys) == {"optim.lr": "lr", "optim.name": "optim.name", "loss.name": "loss.name",
                                 "loss.params.M": "M", "model.arch": "arch", "dataset.name": "dataset.name"}


def test_spell():
    assert [spell(v) for v in (0.01, 1e-05, 2000.0, True, None, [30, 60], [], "crop_flip")] == [
        "0.01", "1e-05", "2000", "true", "null", "30+60", "none", "crop_flip"]


def test_differences_against_the_recipe_and_the_loss_defaults():
    base = condition_of(RECIPE)
    run = {**base, "optim.lr": 0.01, "loss.name": "ce", "loss.params.tau": 1.0}
    del run["loss.params.M"], run["loss.params.margin"]
    # tau=1 is CE's default: not shown; the loss name is a folder of its own: not shown.
    assert differences(run, base, {"tau": 1.0}) == {"optim.lr": 0.01}
    assert differences({**run, "loss.params.tau": 2.0}, base, {"tau": 1.0}) == {"optim.lr": 0.01,
                                                                                "loss.params.tau": 2.0}


def test_label_names_the_differing_keys_or_says_base():
    universe = ["optim.lr", "loss.params.M", "epochs"]
    assert label({}, universe) == "base"
    assert label({"loss.params.M": 500, "optim.lr": 0.01}, universe) == "M=500,lr=0.01"
    assert label({"dataset.root": "a/b c"}, universe) == "root=a_b_c"  # nothing a shell or a path trips on


def test_a_long_label_is_cut_at_a_whole_key():
    shown = {f"optim.key{i}": 123456 for i in range(20)}
    text = label(shown, shown)
    assert len(text) <= LABEL_LIMIT and text.endswith(",etc")
    assert all(part.startswith("key") for part in text.split(",")[:-1])


def test_keys_added_later_keep_earlier_ids_at_their_defaults():
    """A result written before dataset.limit, model.pretrained and the warm-up existed has the id
    of the same run planned now (so a sweep skips it); set to anything else, they make a new condition."""
    old = {"task": "classify", "dataset": {"name": "cifar10", "root": None}, "model": {"arch": "resnet32"},
           "schedule": {"name": "multistep", "milestones": [100, 105], "gamma": 0.1}, "seed": 0}
    new = {**old, "dataset": {**old["dataset"], "limit": None, "workers": 2},
           "model": {"arch": "resnet32", "pretrained": False},
           "schedule": {**old["schedule"], "warmup_epochs": 0, "warmup_start": 0.01}}
    assert condition_id(condition_of(new)) == condition_id(condition_of(old))
    for changed in ({**new, "model": {"arch": "resnet32", "pretrained": True}},
                    {**new, "dataset": {**new["dataset"], "limit": 256}},
                    {**new, "schedule": {**new["schedule"], "warmup_epochs": 5}}):
        assert condition_id(condition_of(changed)) != condition_id(condition_of(old))
    # the DataLoader's worker count says how to run, not what: never part of the condition
    assert condition_of({**new, "dataset": {**new["dataset"], "workers": 8}}) == condition_of(new)
