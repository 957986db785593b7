"""hem as a pip user gets it (issue 27): a wheel built from the checkout (`pip wheel --no-deps`),
installed into a folder of its own and run from a folder outside the checkout, with the test venv's
dependencies. The recipes, the license and the README's first-run lines must work from there, and a run
must get the same result path (so the same condition id) as from the checkout."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import fakedata
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel, installed with --target into a fresh folder (no network: no build isolation, no deps)."""
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(work / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "dist").glob("hemcli-*.whl")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(work / "site"),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return work / "site"


def hem_from(site: Path | None, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`hem ...` as a process: from the installed wheel (``site`` first on the path, so its hemcli is the
    one imported, not the checkout's editable install), or from the checkout (``site`` None)."""
    env = {**os.environ, "PYTHONPATH": str(site)} if site else {k: v for k, v in os.environ.items()
                                                                 if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "hemcli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_wheel_holds_the_recipes_and_the_license(installed):
    import hemcli

    assert (installed / "hemcli" / "recipes" / "classify" / "cifar10-resnet32.yaml").is_file()
    [license] = installed.glob("hemcli-*.dist-info/licenses/LICENSE")
    assert license.read_text().startswith("MIT License") and license.read_text() == (REPO / "LICENSE").read_text()
    assert not str(installed) in hemcli.__file__  # this process imports the checkout: the two are apart


def test_recipes_are_found_outside_the_checkout(installed, tmp_path):
    listed = hem_from(installed, tmp_path, "recipes", "classify")
    assert listed.returncode == 0, listed.stderr
    names = re.findall(r"^\| (classify/\S+)", listed.stdout, re.M)
    table_3 = [f"{d}-{a}" for d, archs in [("mnist", "convnet lenet mlp"), ("cifar10", "mobilenetv3-small resnet32 "
                                                                             "wrn22-10"),
                                           ("cifar100", "mobilenetv3-large preact-resnet18 resnet18"),
                                           ("tin", "inception-v3 resnet18 wrn28-10"),
                                           ("imagenet", "resnet50 swin-t vit-b16")] for a in archs.split()]
    assert len(table_3) == 15
    assert sorted(names) == sorted([f"classify/{n}" for n in table_3 + ["fashion-mnist-convnet", "fashion-mnist-lenet",
                                                                         "fashion-mnist-mlp", "digits"]])
    where = hem_from(installed, tmp_path, "--version")
    assert where.returncode == 0 and where.stdout.startswith("hem 0.1.0 (torch ")


def test_a_paper_recipe_gives_the_same_run_from_the_wheel_and_the_checkout(installed, tmp_path):
    """`--dataset fashion-mnist --arch lenet`: the packaged recipe (batch 128, Adam 1e-3) and the same
    result path, dry or trained, from a wheel outside the checkout and from the checkout itself."""
    outside, inside = tmp_path / "outside", REPO
    outside.mkdir()
    fakedata.idx_raw(tmp_path / "data", n=(40, 20))
    args = ["classify", "--dataset", "fashion-mnist", "--arch", "lenet", "--epochs", "1", "--data-root",
            str(tmp_path / "data"), "--out", str(tmp_path / "results")]
    dry_wheel = hem_from(installed, outside, *args, "--dry-run", "--verbose")
    dry_checkout = hem_from(None, inside, *args, "--dry-run")
    assert dry_wheel.returncode == dry_checkout.returncode == 0, dry_wheel.stderr + dry_checkout.stderr
    assert dry_wheel.stdout == dry_checkout.stdout and dry_wheel.stdout.strip().endswith("/seed0.json")
    assert "training as the paper's recipe classify/fashion-mnist-lenet says" in dry_wheel.stderr
    assert "batch_size: 128" in dry_wheel.stderr and "optim: {name: adam, lr: 0.001" in dry_wheel.stderr
    assert not (tmp_path / "results").exists()  # a dry run writes nothing
    trained = hem_from(installed, outside, *args, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout == dry_wheel.stdout
    result = json.loads(Path(trained.stdout.strip()).read_text())
    assert (result["recipe"]["batch_size"], result["recipe"]["optim"]["name"], result["recipe"]["optim"]["lr"]) == (
        128, "adam", 0.001)
    again = hem_from(None, inside, *args, "--quiet")  # the checkout finds the wheel's result: one condition
    assert (again.returncode, again.stdout) == (0, trained.stdout) and "already done" in again.stderr


def readme_first_run() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- first-run")[1].split("<!-- /first-run -->")[0]
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def test_the_readme_first_run_works_for_a_pip_user(installed, tmp_path):
    lines = readme_first_run()
    assert lines and all(line.startswith("hem ") for line in lines)
    outputs = []
    for line in lines:
        done = hem_from(installed, tmp_path, *shlex.split(line)[1:])
        assert done.returncode == 0, f"{line}: {done.stderr}"
        outputs.append(done)
    assert "| classify/" in outputs[lines.index("hem recipes classify")].stdout
    trained = [done for line, done in zip(lines, outputs) if line == "hem classify --epochs 1"]
    assert trained[0].stdout == trained[1].stdout and "already done" in trained[1].stderr
    report = outputs[lines.index("hem report results")].stdout
    assert "| ce " in report and "| hem " in report
