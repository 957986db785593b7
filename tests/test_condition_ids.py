"""Result paths and condition ids are a contract with every result already on disk: written down here
before the engine moved (issue 26), they must not change when code moves. A change of what a run is
(a new recipe key with a non-default value) may give new ids; moving code never may."""
from __future__ import annotations

import pytest

from conftest import REPO
from hemcli.runs.spec import plan_run

PINNED = [
    ("classify", None, {}, [], "classify/digits/lenet/hem/base--ab247f226c/seed0"),
    ("classify", None, {"seed": 3}, ["loss.params.M=500"], "classify/digits/lenet/hem/M=500--da924bf58a/seed3"),
    ("classify", "classify/fashion-mnist-lenet.yaml", {}, [], "classify/fashion-mnist/lenet/hem/base--8ec3dbfe96/seed0"),
    ("classify", "classify/cifar10-resnet32.yaml", {"loss.name": "ce"}, [],
     "classify/cifar10/resnet32/ce/base--a4194f4fd8/seed0"),
    ("classify", "classify/tin-wrn28-10.yaml", {}, [], "classify/tin/wrn28-10/hem/base--4d3d36031c/seed0"),
    ("longtail", None, {}, [], "longtail/digits/lenet/hem/base--bab36eeec7/seed0"),
    ("longtail", "longtail/cifar10-lt100-resnet32.yaml", {}, [], "longtail/cifar10/resnet32/hem/base--a2556acf2d/seed0"),
    ("continual", None, {}, [], "continual/split-digits/naive/hem/base--b12758fb58/seed0"),
    ("continual", "continual/split-mnist-si.yaml", {}, [], "continual/split-mnist/si/hem/base--0b4f1aec19/seed0"),
    ("continual", "continual/permuted-mnist-ewc.yaml", {"loss.name": "ce"}, [],
     "continual/permuted-mnist/ewc/ce/base--55ec60d269/seed0"),
    ("segment", None, {}, [], "segment/shapes/resnet18/hem/base--8641f297e6/seed0"),
    ("segment", "segment/camvid-resnet34.yaml", {}, [], "segment/camvid/resnet34/hem/base--9549e52c62/seed0"),
    ("segment", "segment/cityscapes-densenet201.yaml", {"loss.name": "dice"}, [],
     "segment/cityscapes/densenet201/dice/params=none--0d4eabb277/seed0"),
]


@pytest.mark.parametrize("task, recipe, flags, sets, name", PINNED,
                         ids=[f"{case[0]}-{case[1] or 'default'}-{i}" for i, case in enumerate(PINNED)])
def test_a_recipe_keeps_its_result_path_and_condition_id(task, recipe, flags, sets, name):
    spec = plan_run(task, REPO / "hemcli" / "recipes" / recipe if recipe else None, flags, sets, "results")
    assert spec.name == name
    assert spec.condition["id"] == name.split("--")[1].split("/")[0]
