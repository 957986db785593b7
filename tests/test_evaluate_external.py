"""A network trained elsewhere, measured by hem (issue 28, item 2): ``hemcli.evaluation.evaluate`` on
the network itself and ``hem evaluate --weights FILE --arch A`` on its state_dict give the same
numbers, the result is a result like a run's (``hem report`` reads it, as a row of its own), and a
network that does not fit the dataset is refused before anything is measured. (The bad weight files
are cases of tests/test_bad_input.py.)"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
import torch

from evaluation_fixtures import cache_dir, fewer_square_queries  # noqa: F401 (fixtures)
from hemcli.cli import main
from hemcli.data import load_dataset
from hemcli.errors import HemError
from hemcli.evaluation import evaluate
from hemcli.models import build_model

EVALS = ("clean", "ood", "calibration", "corrupt", "attack")
# Small samples keep both measurements to seconds on 2 CPU cores; an l2 budget of 2 lets APGD-CE break
# every attacked image, so the later stages have nothing left to attack (tests/test_attack.py checks
# the stages themselves).
SETTINGS = {"ood_samples": 200, "corrupt_samples": 40, "attack_samples": 24, "attack_batch_size": 12,
            "workers": 1, "attack_eps_l2": 2.0}
FLAGS = ["--ood-samples", "200", "--corrupt-samples", "40", "--attack-samples", "24", "--attack-batch-size", "12",
         "--set", "evaluation.workers=1", "--set", "evaluation.attack_eps_l2=2.0"]


def hem(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def train_plainly(model: torch.nn.Module, epochs: int = 3) -> torch.nn.Module:
    """Adam and cross-entropy on digits with a loop of the test's own: a network hem did not train
    (about 90% accurate after 3 epochs of 12 batches)."""
    data = load_dataset("digits")
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        order = torch.randperm(len(data.train_y), generator=generator)
        for start in range(0, len(order), 128):
            batch = order[start:start + 128]
            loss = torch.nn.functional.cross_entropy(model(data.train_x[batch]), data.train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """An MLP of hem's registry trained elsewhere, and its state_dict saved as a user would."""
    torch.manual_seed(0)
    model = train_plainly(build_model("mlp", (1, 8, 8), 10))
    path = tmp_path_factory.mktemp("weights") / "mlp-digits.pt"
    torch.save(model.state_dict(), path)
    return model, path


def own_accuracy(model: torch.nn.Module) -> float:
    data = load_dataset("digits")
    with torch.no_grad():
        return 100.0 * (model(data.test_x).argmax(1) == data.test_y).double().mean().item()


def without_seconds(record):
    """An evaluation record without its wall times (the only part two measurements may differ in)."""
    if isinstance(record, dict):
        return {key: without_seconds(value) for key, value in record.items() if key != "seconds"}
    return record


def test_the_function_and_the_command_give_the_same_numbers(tmp_path, trained, cache_dir):
    model, weights = trained
    expected_accuracy = own_accuracy(model)
    api = evaluate(model, dataset="digits", evals=EVALS, device="cpu", **SETTINGS)
    code, stdout, stderr = hem("evaluate", "--weights", str(weights), "--arch", "mlp", "--dataset", "digits",
                               "--eval", ",".join(EVALS), "--device", "cpu", "--out", str(tmp_path), "--quiet", *FLAGS)
    assert code == 0, stderr
    path = Path(stdout.strip())
    result = json.loads(path.read_text())
    assert result["metrics"] == pytest.approx(api["metrics"], rel=1e-12, abs=1e-12)
    assert set(api["metrics"]) >= {"clean_accuracy", "corrupt_accuracy", "unknown_auroc_msp_all", "ece",
                                   "dar_msp_linf", "dar_msp_l2", "robust_accuracy_l2"}
    assert without_seconds(result["evaluation"]) == without_seconds(api["evaluation"])
    assert api["metrics"]["clean_accuracy"] == pytest.approx(expected_accuracy, abs=1e-9)
    assert result["recipe"]["evaluation"] == api["recipe"]["evaluation"]
    assert result["recipe"]["evaluation"]["attack_samples"] == 24
    # the result names its weights and their hash, and records the loss as unknown
    assert result["recipe"]["external"] == {"weights": str(weights),
                                            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert result["recipe"]["loss"]["name"] == "none" and result["recipe"]["model"]["arch"] == "mlp"
    assert result["history"] == [] and set(result["timings"]["evaluation_seconds"]) == set(EVALS)
    where = path.relative_to(tmp_path)  # apart from every trained run (<out>/<task>/...)
    assert where.parts[:3] == ("external", "digits", "mlp") and where.name.startswith("mlp-digits--")
    assert result["run"] == where.with_suffix("").as_posix() and result["condition"]["label"] == "mlp-digits"
    assert not list(path.parent.glob(".*"))  # no lock, temporary file or attack state left behind


def test_a_result_is_never_replaced_without_overwrite(tmp_path, trained):
    _, weights = trained
    argv = ["evaluate", "--weights", str(weights), "--arch", "mlp", "--dataset", "digits", "--eval", "clean",
            "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    code, stdout, _ = hem(*argv)
    assert code == 0
    path = Path(stdout.strip())
    before = path.read_bytes()
    code, again, stderr = hem(*argv, "--eval", "calibration")
    assert (code, again) == (2, "") and stderr == f"hem: error: result already exists: {path} (pass --overwrite to " \
                                                  "replace it)\n"
    assert path.read_bytes() == before
    code, again, _ = hem(*argv, "--eval", "calibration", "--overwrite")
    assert (code, again.strip()) == (0, str(path))
    assert "ece" in json.loads(path.read_text())["metrics"]


def test_the_report_shows_it_as_a_row_of_its_own(tmp_path, trained):
    """Beside a trained CE run of the same network and dataset (a result written by hand)."""
    _, weights = trained
    code, stdout, stderr = hem("evaluate", "--weights", str(weights), "--arch", "mlp", "--dataset", "digits",
                               "--eval", "clean", "--device", "cpu", "--out", str(tmp_path), "--quiet")
    assert code == 0, stderr
    external = json.loads(Path(stdout.strip()).read_text())
    trained_run = {"schema_version": 1, "task": "classify", "status": "complete", "seed": 0,
                   "recipe": {"task": "classify", "dataset": {"name": "digits"}, "model": {"arch": "mlp"},
                              "loss": {"name": "ce", "params": {}}, "epochs": 3},
                   "metrics": {"clean_accuracy": 12.5}}
    (tmp_path / "ce.json").write_text(json.dumps(trained_run))
    code, table, stderr = hem("report", str(tmp_path), "--format", "json")
    assert code == 0, stderr
    by_loss = {row["loss"]: row for row in json.loads(table)}
    assert set(by_loss) == {"ce", "none"} and by_loss["none"]["n"] == 1
    assert by_loss["none"]["metrics"]["clean_accuracy"]["mean"] == pytest.approx(
        external["metrics"]["clean_accuracy"])
    assert by_loss["ce"]["metrics"]["clean_accuracy"]["mean"] == 12.5


@pytest.fixture
def tinynet(tmp_path, monkeypatch):
    """hem28_tinynet.py in the working folder, on sys.path; forgotten afterwards."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # sys.path as it was comes back afterwards
    (tmp_path / "hem28_tinynet.py").write_text(
        "from torch import nn\n\ndef build(num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))\n")
    import hem28_tinynet

    yield hem28_tinynet
    sys.modules.pop("hem28_tinynet", None)


def test_your_own_network_from_a_factory_in_the_working_folder(tmp_path, tinynet):
    """``--model package.module:factory``, given num_classes=, with and without --weights."""

    torch.manual_seed(1)
    model = train_plainly(tinynet.build(10), epochs=2)
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    code, stdout, stderr = hem("evaluate", "--model", "hem28_tinynet:build", "--weights", "tiny.pt",
                               "--dataset", "digits", "--eval", "clean", "--device", "cpu", "--quiet")
    assert code == 0, stderr
    path = Path(stdout.strip())
    assert path.parts[:4] == ("results", "external", "digits", "hem28_tinynet_build")
    result = json.loads(path.read_text())
    assert result["metrics"]["clean_accuracy"] == pytest.approx(own_accuracy(model), abs=1e-9)
    assert result["recipe"]["external"]["model"] == "hem28_tinynet:build"
    code, stdout, stderr = hem("evaluate", "--model", "hem28_tinynet:build", "--dataset", "digits", "--eval", "clean",
                               "--device", "cpu", "--quiet")
    assert code == 0, stderr
    assert Path(stdout.strip()).name.startswith("init--")


def test_the_function_checks_the_class_count_and_the_settings_first(trained):
    model, _ = trained
    six = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 6))
    with pytest.raises(HemError, match=r"^the network gives 6 logits per image; dataset digits has 10 classes$"):
        evaluate(six, "digits", device="cpu")
    with pytest.raises(HemError, match=r"the network cannot take digits images \(a batch of 2x1x8x8\): RuntimeError"):
        evaluate(torch.nn.Linear(3, 10), "digits", device="cpu")
    with pytest.raises(HemError, match=r"unknown evaluation setting 'ood_sample'; valid choices: accept, "):
        evaluate(model, "digits", device="cpu", ood_sample=10)
    with pytest.raises(HemError, match=r"unknown eval 'fgsm'"):
        evaluate(model, "digits", evals="clean,fgsm", device="cpu")


def test_measuring_a_folder_again_skips_the_results_of_networks_trained_elsewhere(tmp_path, trained):
    _, weights = trained
    code, stdout, _ = hem("evaluate", "--weights", str(weights), "--arch", "mlp", "--dataset", "digits", "--eval",
                          "clean", "--device", "cpu", "--out", str(tmp_path), "--quiet")
    assert code == 0
    code, out, err = hem("evaluate", str(tmp_path), "--eval", "calibration", "--quiet")
    assert (code, out) == (2, "")
    assert err == (f"hem: error: {stdout.strip()}: the result of a network trained elsewhere; measure it again with "
                   "hem evaluate --weights (or --model) and --overwrite\n")
