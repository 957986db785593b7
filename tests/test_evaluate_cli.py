"""`hem classify --eval ...`, `hem evaluate` and `hem attack` end to end on digits, through the real
command line: every metric lands in the JSON, a re-measurement keeps every other field, an attack
killed half-way resumes to the same DAR, and bad input changes no result."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from evaluation_fixtures import cache_dir, fewer_square_queries  # noqa: F401 (fixtures)
from hemcli.cli import main

ALL = "clean,corrupt,ood,attack,calibration"
# Small sample counts keep a full evaluation of an MLP on digits to seconds on 2 CPU cores.
SMALL = ["--ood-samples", "200", "--corrupt-samples", "40", "--attack-samples", "24", "--attack-batch-size", "12",
         "--set", "evaluation.workers=1"]
SCORES = ("msp", "mls", "energy", "gen")


def hem(*argv: str) -> tuple[int, str, str]:
    """Run `hem` in-process; (exit code, stdout, stderr) as strings."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def train(out: Path, *extra: str) -> Path:
    code, stdout, stderr = hem("classify", "--arch", "mlp", "--epochs", "3", "--quiet", "--out", str(out), *extra)
    assert code == 0, stderr
    return Path(stdout.strip())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir) -> Path:
    """A digits MLP run trained with clean accuracy only (its folder is copied by each test)."""
    return train(tmp_path_factory.mktemp("finished"))


def copy_run(result: Path, where: Path) -> Path:
    """The result and its checkpoint copied to ``where`` (so each test measures its own run)."""
    target = where / result.name
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy2(result, target)
    shutil.copy2(result.with_suffix(".ckpt.pt"), target.with_suffix(".ckpt.pt"))
    return target


def expected_metrics(evaluations: str, norms=("linf", "l2")) -> set[str]:
    names = {"clean_accuracy"}
    if "corrupt" in evaluations:
        names.add("corrupt_accuracy")
    if "calibration" in evaluations:
        names |= {"ece", "nll", "brier"}
    for score in SCORES:
        if "ood" in evaluations:
            names |= {f"unknown_{m}_{score}_{g}" for m in ("auroc", "fpr95") for g in ("synthetic", "all")}
        if "attack" in evaluations:
            names |= {f"dar_{score}_{norm}" for norm in norms} | {f"dar_{score}_mean"}
    if "attack" in evaluations:
        names |= {f"robust_accuracy_{norm}" for norm in norms}
    return names


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "hem"])
def test_classify_with_every_evaluation_records_every_metric(tmp_path, cache_dir, loss):
    path = train(tmp_path, "--loss", loss, "--eval", ALL, *SMALL)
    result = json.loads(path.read_text())
    assert set(result["metrics"]) == expected_metrics(ALL)
    assert all(0 <= result["metrics"][name] <= 100 for name in result["metrics"] if name not in ("nll", "brier"))
    assert set(result["timings"]["evaluation_seconds"]) == {"clean", "corrupt", "ood", "attack", "calibration"}
    evaluation = result["evaluation"]
    assert evaluation["ood"]["positive"] == "known test set" and evaluation["ood"]["skipped"] == {}
    assert set(evaluation["ood"]["sets"]) == {"blobs", "uniform", "permuted", "phase"}
    assert evaluation["corrupt"]["source"] == "generated:mnist-c" and len(evaluation["corrupt"]["corruptions"]) == 15
    assert evaluation["attack"]["images"] == 24 and evaluation["attack"]["strength"] == "torchattacks"
    assert evaluation["attack"]["norms"]["linf"]["eps"] == 0.3
    assert not list(path.parent.glob(".*.attack-*.pt"))  # the attack's resume files are gone once written
    # clean accuracy from the shared test logits equals the history's last test accuracy
    assert result["metrics"]["clean_accuracy"] == result["history"][-1]["test_accuracy"]


def test_evaluate_adds_metrics_and_keeps_every_other_field(tmp_path, finished, cache_dir):
    path = copy_run(finished, tmp_path)
    before = json.loads(path.read_text())
    code, stdout, stderr = hem("evaluate", str(path), "--eval", "ood,calibration", "--ood-samples", "100", "--quiet")
    assert code == 0, stderr
    assert stdout.strip() == str(path)
    after = json.loads(path.read_text())
    for key in ("history", "condition", "environment", "seed", "created", "run"):
        assert after[key] == before[key]
    assert after["metrics"]["clean_accuracy"] == before["metrics"]["clean_accuracy"]
    assert set(after["metrics"]) == expected_metrics("ood,calibration")
    assert after["recipe"]["eval"] == ["clean", "ood", "calibration"]
    assert after["recipe"]["evaluation"]["ood_samples"] == 100
    assert after["measured_again"][0]["eval"] == ["ood", "calibration"]
    assert after["timings"]["train_seconds"] == before["timings"]["train_seconds"]


def test_evaluate_takes_a_folder_and_measures_every_result_in_it(tmp_path, finished, cache_dir):
    first = copy_run(finished, tmp_path / "a")
    second = copy_run(finished, tmp_path / "b")
    code, stdout, stderr = hem("evaluate", str(tmp_path), "--eval", "calibration", "--quiet")
    assert code == 0, stderr
    assert sorted(stdout.split()) == sorted([str(first), str(second)])
    for path in (first, second):
        assert "ece" in json.loads(path.read_text())["metrics"]


def test_attack_with_one_norm_records_that_norm_and_no_mean(tmp_path, finished, cache_dir):
    """(How DAR is worked out from the logits is tested by hand in test_evaluate_suite.py.)"""
    path = copy_run(finished, tmp_path)
    code, _, stderr = hem("attack", str(path), "--attack-samples", "20", "--attack-batch-size", "10",
                          "--set", "evaluation.attack_norms=[linf]", "--quiet")
    assert code == 0, stderr
    result = json.loads(path.read_text())
    assert set(result["metrics"]) == {"clean_accuracy", "robust_accuracy_linf",
                                      *{f"dar_{score}_linf" for score in SCORES}}
    assert "dar_msp_mean" not in result["metrics"]  # one norm: no mean
    assert 0.0 <= result["metrics"]["dar_msp_linf"] <= 100.0


def test_attack_killed_half_way_resumes_to_the_same_dar(tmp_path, finished, cache_dir):
    """SIGKILL after the first of six batches; the rerun attacks only the rest and ends with the DAR
    of an uninterrupted attack on a copy of the same run. (ε = 1 lets APGD-CE break every image, so
    the separate process, where Square's queries cannot be lowered, never reaches Square.)"""
    whole = copy_run(finished, tmp_path / "whole")
    killed = copy_run(finished, tmp_path / "killed")
    args = ["--attack-samples", "60", "--attack-batch-size", "10", "--set", "evaluation.attack_norms=[linf]",
            "--set", "evaluation.attack_eps_linf=1.0"]
    assert hem("attack", str(whole), "--quiet", *args)[0] == 0
    state = killed.with_name(f".{killed.stem}.attack-linf.pt")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-m", "hemcli", "attack", str(killed), "--quiet", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), process.stderr.read().decode() if process.poll() is not None else "no state in 120 s"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert "dar_msp_linf" not in json.loads(killed.read_text())["metrics"]  # nothing written yet
    done = torch.load(state, weights_only=True)
    code, _, stderr = hem("attack", str(killed), *args)
    assert code == 0, stderr
    again = json.loads(killed.read_text())
    assert 1 <= done["batches"] < 6  # killed half-way: some batches done, not all
    assert again["evaluation"]["attack"]["norms"]["linf"]["resumed_batches"] == done["batches"]
    uninterrupted = json.loads(whole.read_text())["metrics"]
    for name in ("dar_msp_linf", "dar_mls_linf", "robust_accuracy_linf"):
        assert again["metrics"][name] == uninterrupted[name]
    assert not state.exists()


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing changed


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def lenet_checkpoint_in_place_of(path: Path, tmp_path: Path, keep_recipe: bool) -> None:
    """Put a LeNet run's checkpoint where the MLP run's checkpoint is; with ``keep_recipe`` it claims
    the MLP run's recipe, so only its weights give it away."""
    other = train(tmp_path / "lenet", "--arch", "lenet", "--epochs", "3")
    state = torch.load(other.with_suffix(".ckpt.pt"), weights_only=True)
    if keep_recipe:
        state["recipe"] = json.loads(path.read_text())["recipe"]
    torch.save(state, path.with_suffix(".ckpt.pt"))
    shutil.rmtree(tmp_path / "lenet")


def no_checkpoint(path: Path, tmp_path: Path) -> None:
    path.with_suffix(".ckpt.pt").unlink()


def unfinished_checkpoint(path: Path, tmp_path: Path) -> None:
    state = torch.load(path.with_suffix(".ckpt.pt"), weights_only=True)
    state["epoch"] = 1
    torch.save(state, path.with_suffix(".ckpt.pt"))


BAD = [
    ("no checkpoint", ["evaluate", "{r}"], "has no checkpoint beside it", no_checkpoint),
    ("checkpoint of another run", ["attack", "{r}"], "belongs to another run",
     lambda p, t: lenet_checkpoint_in_place_of(p, t, keep_recipe=False)),
    ("checkpoint of another architecture", ["attack", "{r}"], "does not fit mlp",
     lambda p, t: lenet_checkpoint_in_place_of(p, t, keep_recipe=True)),
    ("unfinished checkpoint", ["evaluate", "{r}"], "is from epoch 1 of 3: the run did not finish",
     unfinished_checkpoint),
    ("unknown score", ["evaluate", "{r}", "--scores", "msp,odin"],
     "unknown evaluation.scores 'odin'; valid choices: msp, mls, energy, gen", None),
    ("unknown evaluation", ["evaluate", "{r}", "--eval", "ood,fgsm"],
     "unknown eval 'fgsm'; valid choices: clean, shots, corrupt, ood, attack, calibration", None),
    ("attack samples 0", ["attack", "{r}", "--attack-samples", "0"],
     "recipe key 'evaluation.attack_samples' must be >= 1, got 0", None),
    ("unknown attack strength", ["attack", "{r}", "--attack-strength", "strong"],
     "unknown evaluation.attack_strength 'strong'; valid choices: torchattacks, official", None),
    ("a training key", ["evaluate", "{r}", "--set", "optim.lr=0.1"],
     "--set optim.lr: only eval and evaluation.* keys can change for a finished run", None),
    ("not a result", ["evaluate", "{d}/notes.json"], "not a result", None),
    ("missing path", ["evaluate", "{d}/nope.json"], "no such file or directory", None),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in BAD])
def test_bad_input_changes_no_result(tmp_path, finished, cache_dir, argv, message, setup):
    path = copy_run(finished, tmp_path / "run")
    (tmp_path / "run" / "notes.json").write_text('["not", "a", "result"]')
    if setup:
        setup(path, tmp_path)
    before = snapshot(tmp_path)
    code, stdout, stderr = hem(*[arg.format(r=path, d=path.parent) for arg in argv], "--quiet")
    assert (code, stdout) == (2, ""), stderr
    assert stderr.count("\n") == 1 and stderr.startswith("hem: error: "), stderr
    assert message in stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("setup", [no_checkpoint, lambda p, t: lenet_checkpoint_in_place_of(p, t, keep_recipe=True)],
                         ids=["no checkpoint", "weights of another network"])
def test_one_bad_file_in_a_folder_changes_none_of_the_good_ones(tmp_path, finished, cache_dir, setup):
    """The good result comes first (a/ before b/): it must not be measured before b/'s weights fail."""
    good = copy_run(finished, tmp_path / "a")
    bad = copy_run(finished, tmp_path / "b")
    setup(bad, tmp_path / "scratch")
    before = snapshot(tmp_path)
    code, _, stderr = hem("evaluate", str(tmp_path / "a"), str(tmp_path / "b"), "--eval", "calibration", "--quiet")
    assert code == 2 and str(bad.parent) in stderr, stderr
    assert snapshot(tmp_path) == before and good.exists()
