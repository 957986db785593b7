"""The paper's continual recipes (Table 6 x ContinualAI's continual-learning-baselines, Appendix B.3.4): one per
(benchmark, strategy), each resolving to the CLB settings, and each running one smoke epoch per
experience on a few generated images."""
import pytest

import fakedata
from conftest import REPO
from hemcli.recipes import resolve
from hemcli.tasks import continual

RECIPES = REPO / "hemcli" / "recipes" / "continual"
NAMES = sorted(path.stem for path in RECIPES.glob("*.yaml"))
BENCHMARKS = ("split-mnist", "permuted-mnist", "split-fashion-mnist", "permuted-fashion-mnist", "split-cifar10",
              "split-cifar100")
STRATEGIES = ("naive", "replay", "si", "ewc", "lwf", "lfl")


def cfg_of(name: str) -> dict:
    return resolve(continual.schema(), "continual", RECIPES / f"{name}.yaml")


def test_one_recipe_per_benchmark_and_strategy():
    assert set(NAMES) == {f"{b}-{s}" for b in BENCHMARKS for s in STRATEGIES}


@pytest.mark.parametrize("name, net, optim, batch, epochs, params", [
    ("permuted-mnist-ewc", [512], ("sgd", 1e-3), 256, 10, {"ewc_lambda": 1.0, "mode": "separate"}),
    ("permuted-mnist-si", [1000], ("adam", 1e-3), 256, 10, {"si_lambda": 10.0, "eps": 0.1}),
    ("permuted-mnist-lfl", [256], ("sgd", 0.01), 128, 3, {"lambda_e": 1e-4}),
    ("split-mnist-si", [256, 256], ("adam", 1e-3), 64, 10, {"si_lambda": 1.0, "eps": 0.1}),
    ("split-mnist-lwf", [200], ("adam", 1e-3), 128, 21, {"alpha": [0, 0.5, 1.333, 2.25, 3.2], "temperature": 2.0}),
])
def test_clb_recipes_have_the_clb_settings(name, net, optim, batch, epochs, params):
    cfg = cfg_of(name)
    assert (cfg["model"]["arch"], cfg["model"]["hidden"]) == ("mlp", net)
    assert (cfg["optim"]["name"], cfg["optim"]["lr"], cfg["batch_size"], cfg["epochs"]) == (*optim, batch, epochs)
    assert cfg["strategy"]["params"] == params and cfg["benchmark"]["experiences"] == 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cifar_recipes_train_resnet18_ten_times_the_mnist_epochs(strategy):
    mnist = cfg_of(f"split-mnist-{strategy}")
    for bench in ("split-cifar10", "split-cifar100"):
        cfg = cfg_of(f"{bench}-{strategy}")
        assert cfg["model"]["arch"] == "resnet18" and cfg["epochs"] == 10 * mnist["epochs"]
        assert cfg["strategy"]["params"] == mnist["strategy"]["params"]


@pytest.mark.parametrize("name", [n for n in NAMES if "cifar" not in n and n.split("-")[-1] not in ("naive", "replay")])
def test_a_cell_without_a_clb_recipe_says_whose_it_reuses(name):
    text = (RECIPES / f"{name}.yaml").read_text()
    assert "Settings: CLB" in text or "CLB has no recipe for this cell" in text


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for folder in ("MNIST", "FashionMNIST"):
        fakedata.mnist_like(root, folder, n=(200, 100))
    fakedata.cifar(root, "cifar10", per_class=4, test=40)
    fakedata.cifar(root, "cifar100", per_class=2, test=200)
    return root


def smoke(name: str, root, out, *sets: str) -> dict:
    import json

    import torch

    from hemcli.cli import main

    torch.set_num_threads(1)
    code = main(["continual", "--recipe", str(RECIPES / f"{name}.yaml"), "--data-root", str(root), "--epochs", "1",
                 "--batch-size", "8", *[arg for item in sets for arg in ("--set", item)], "--out", str(out), "--quiet"])
    assert code == 0
    [path] = out.rglob("seed0.json")
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_recipe_runs_a_smoke_epoch(name, fake_root, tmp_path):
    """One smoke experience of every class (20 images for ResNet18, seconds a step on a CPU; 100 for
    the MLPs); the five-experience streams are run by the two tests below and by test_continual."""
    experiences = 1
    limit = 20 if "cifar" in name else 100
    result = smoke(name, fake_root, tmp_path, f"dataset.limit={limit}", f"benchmark.experiences={experiences}")
    assert len(result["continual"]["accuracy_matrix"]) == experiences == len(result["history"])
    assert 0 <= result["metrics"]["final_accuracy"] <= 100


@pytest.mark.slow
def test_a_permuted_recipe_runs_five_experiences(fake_root, tmp_path):
    result = smoke("permuted-fashion-mnist-ewc", fake_root, tmp_path, "dataset.limit=100")
    assert result["continual"]["heads"] == 1 and len(result["continual"]["accuracy_matrix"]) == 5
    assert all(value is not None for row in result["continual"]["accuracy_matrix"] for value in row)


@pytest.mark.slow
def test_a_resnet18_trunk_takes_five_task_heads(fake_root, tmp_path):
    result = smoke("split-cifar10-naive", fake_root, tmp_path, "dataset.limit=40")
    assert result["continual"]["heads"] == 5 and len(result["continual"]["accuracy_matrix"]) == 5
