"""The paper's long-tailed recipes (Table 5 x Appendix B.2.4): each resolves to the paper's settings,
and trains one smoke epoch on generated files with enough images per class for its subset."""

import pytest

import fakedata
from conftest import REPO, smoke_run
from hemcli.recipes import resolve
from hemcli.tasks import longtail

RECIPES = REPO / "hemcli" / "recipes" / "longtail"
CIFAR_LT = {"cifar10-lt100": 0.6, "cifar10-lt10": 0.7744, "cifar100-lt100": 0.955, "cifar100-lt10": 0.9771}
NAMES = sorted(path.stem for path in RECIPES.glob("*.yaml"))


def test_one_recipe_per_table5_setting():
    expected = {f"{data}-{arch}" for data in CIFAR_LT for arch in ("resnet32", "resnet18", "wrn20-10")}
    expected |= {f"imagenet-lt-{arch}" for arch in ("resnet18", "swin-t", "convnext-t")}
    assert set(NAMES) == expected | {"fashion-mnist-lt100-lenet"}


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("cifar")])
def test_cifar_lt_recipes_have_appendix_b24_settings(name):
    """SGD m 0.9, batch 128, wd 2e-4, lr 0.1, x0.01 after epochs 160 and 180, 200 epochs; f of the set."""
    cfg = resolve(longtail.schema(), "longtail", RECIPES / f"{name}.yaml")
    assert cfg["longtail"]["factor"] == next(f for data, f in CIFAR_LT.items() if name.startswith(data + "-"))
    assert (cfg["optim"]["name"], cfg["optim"]["lr"], cfg["optim"]["momentum"], cfg["optim"]["weight_decay"]) == (
        "sgd", 0.1, 0.9, 2e-4)
    assert (cfg["schedule"]["milestones"], cfg["schedule"]["gamma"], cfg["epochs"], cfg["batch_size"]) == (
        [160, 180], 0.01, 200, 128)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    fakedata.cifar(root, "cifar10", per_class=100)  # f = 0.6: the last class keeps floor(100 * 0.6 ** 9) = 1
    fakedata.cifar(root, "cifar100", per_class=100)  # f = 0.955: floor(100 * 0.955 ** 99) = 1
    fakedata.mnist_like(root, "FashionMNIST", n=(1000, 10))
    fakedata.imagenet_tree(root, per_class=2)
    fakedata.imagenet_lt_lists(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_recipe_trains_one_smoke_epoch(name, fake_root, tmp_path):
    _, result = smoke_run("longtail", RECIPES / f"{name}.yaml", fake_root, tmp_path / "results", "clean,shots")
    assert len(result["history"]) == 1 and "clean_accuracy" in result["metrics"]
    counts = result["longtail"]["class_counts"]
    assert counts[0] >= counts[-1] >= 1
