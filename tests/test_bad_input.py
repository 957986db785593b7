"""The contract for bad input, case by case through the real command line: exit code 2, exactly one
line on stderr (``hem: error: ...`` naming the problem), nothing on stdout, and nothing written --
no result, no folder, no lock, no checkpoint, no downloaded file -- anywhere under the working folder.

Each case is (id, command line, expected part of the message, setup). A setup writes the inputs a
case needs (a broken recipe, a checkpoint that is not one) before the snapshot is taken.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import planned_result
from hemcli.cli import main

BIG = "9" * 400
RESULT = planned_result("results", {"epochs": 1})  # the run of `hem classify --epochs 1`
CHECKPOINT = RESULT.with_suffix(".ckpt.pt")


def recipe(text: str | bytes, name: str = "r.yaml"):
    def write(root: Path) -> None:
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return write


def at(path: Path, content=None, folder=False):
    """Put a file (``content``: bytes, or an object for torch.save) or a folder at ``path``."""
    def write(root: Path) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            target.mkdir()
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            torch.save(content, target)
    return write


def default_recipe() -> dict:
    from hemcli.runs.spec import plan_run

    return plan_run("classify", None, {"epochs": 1}, [], "results").cfg


def checkpoint_of_the_default_recipe(root: Path, lr: float | None = None) -> None:
    """A checkpoint at the default run's path; with ``lr``, made by a recipe with that learning rate."""
    from hemcli.engine.checkpoint import Checkpointer
    from hemcli.engine.optim import make_optimizer, make_scheduler

    cfg = default_recipe()
    if lr is not None:
        cfg["optim"]["lr"] = lr
    (root / CHECKPOINT).parent.mkdir(parents=True)
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(cfg, model.parameters())
    Checkpointer(root / CHECKPOINT, cfg).save(1, model, optimizer, make_scheduler(cfg, optimizer),
                                              torch.Generator(), [])


def idx_files(root: Path, splits=("t10k",), magic=2051) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in splits:
        header = np.array([magic, 2, 28, 28], dtype=">i4").tobytes()
        (raw / f"{split}-images-idx3-ubyte").write_bytes(header + bytes(2 * 784))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(np.array([2049, 2], dtype=">i4").tobytes() + bytes(2))


def tin_without_annotations(root: Path) -> None:
    from fakedata import tin_tree

    tin_tree(root / "data", annotations=False)


CASES = [
    # issue 14: datasets and architectures of the paper's Table 3
    ("arch does not fit the dataset", ["--dataset", "cifar10", "--arch", "vit-b16"],
     "arch 'vit-b16' does not take 32x32 inputs; it takes 224x224; dataset cifar10 has 32x32 images "
     "(hem archs --dataset cifar10 lists those that fit)", None),
    ("tin without val_annotations.txt", ["--dataset", "tin", "--arch", "resnet18", "--data-root", "data"],
     "val_annotations.txt is missing", tin_without_annotations),
    ("cifar10 files missing", ["--dataset", "cifar10", "--arch", "resnet32", "--data-root", "data",
                               "--set", "dataset.download=false"],
     "cifar10 train split not found: need data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5 in "
     "data/cifar-10-batches-py (get them from https://www.cs.toronto.edu/~kriz/cifar.html, the python version, "
     "extracted in data)", None),
    ("imagenet folders missing", ["--dataset", "imagenet", "--arch", "resnet50", "--data-root", "data"],
     "imagenet train split not found: need train/<wnid>/*.JPEG in data/imagenet", None),
    ("a streamed set measured beyond clean", ["--dataset", "imagenet", "--arch", "resnet50", "--eval", "clean,ood"],
     "dataset imagenet streams from disk, so it is measured from its test logits only (clean, shots, "
     "calibration); drop --eval ood", None),
    ("crop_flip on a streamed set", ["--dataset", "imagenet", "--arch", "resnet50", "--set", "augment=crop_flip"],
     "augment 'crop_flip' does not apply to dataset imagenet; valid choices: resized_crop_flip, none", None),
    ("pretrained for an arch without weights", ["--dataset", "cifar10", "--arch", "resnet32",
                                                "--set", "model.pretrained=true"],
     "arch 'resnet32' has no pretrained weights; archs with weights: resnet18, resnet50", None),
    # recipe files
    ("recipe not UTF-8", ["-r", "r.yaml"], "recipe r.yaml is not UTF-8 text", recipe(bytes(range(128, 256)) * 8)),
    ("recipe nested 20000 deep", ["-r", "r.yaml"], "recipe r.yaml is nested too deeply",
     recipe("a: " + "{b: " * 20000 + "1" + "}" * 20000)),
    ("recipe is /proc/self/mem", ["-r", "/proc/self/mem"], "cannot read recipe /proc/self/mem: Input/output error",
     None),
    ("recipe with a duplicate key", ["-r", "r.yaml"], "malformed YAML in r.yaml at line 3: duplicate key 'epochs'",
     recipe("epochs: 3\nseed: 1\nepochs: 4\n")),
    ("recipe malformed", ["-r", "r.yaml"], "malformed YAML in r.yaml at line 3", recipe("loss:\n  name: hem\n epochs: 3\n")),
    ("recipe is a list", ["-r", "r.yaml"], "recipe r.yaml must be a mapping of keys to values, got list",
     recipe("- 1\n- 2\n")),
    ("recipe for another task", ["-r", "r.yaml"], "recipe r.yaml is for task 'segment', not 'classify'",
     recipe("task: segment\n")),
    ("recipe with an unknown key", ["-r", "r.yaml"], "unknown recipe key 'optim.learning_rate'",
     recipe("optim: {learning_rate: 0.1}\n")),
    ("recipe is a folder", ["-r", "folder"], "recipe folder is not a file", at(Path("folder"), folder=True)),
    ("recipe missing", ["-r", "nope.yaml"], "recipe file not found: nope.yaml", None),
    ("recipe larger than 1 MiB", ["-r", "r.yaml"], "recipe r.yaml is larger than 1 MiB",
     recipe("seed: 1\n" + "#" * (1 << 20))),
    # numbers
    ("--lr .nan", ["--lr", ".nan"], "recipe key 'optim.lr' must be a finite number, got nan", None),
    ("--lr .inf", ["--lr", ".inf"], "recipe key 'optim.lr' must be a finite number, got inf", None),
    ("--lr 1e400", ["--lr", "1e400"], "recipe key 'optim.lr' must be a finite number, got inf", None),
    ("--lr 400 digits", ["--lr", BIG], "recipe key 'optim.lr' is out of range for a number", None),
    ("--lr -0.1", ["--lr", "-0.1"], "recipe key 'optim.lr' must be >= 0, got -0.1", None),
    ("--lr fast", ["--lr", "fast"], "recipe key 'optim.lr' must be a number, got 'fast'", None),
    ("weight_decay .inf", ["--set", "optim.weight_decay=.inf"], "'optim.weight_decay' must be a finite number", None),
    ("gamma .nan", ["--set", "schedule.gamma=.nan"], "'schedule.gamma' must be a finite number, got nan", None),
    ("loss M 400 digits", ["--set", f"loss.params.M={BIG}"], "'loss.params.M' must be <= 9223372036854775807", None),
    ("loss M .nan", ["--set", "loss.params.M=.nan"], "'loss.params.M' must be a finite number, got nan", None),
    ("--seed 2**64", ["--seed", "18446744073709551616"], "'seed' must be <= 9223372036854775807", None),
    ("--seed 1:30", ["--seed", "1:30"], "recipe key 'seed' must be an integer, got '1:30'", None),
    ("--seed -1", ["--seed", "-1"], "recipe key 'seed' must be >= 0, got -1", None),
    ("--epochs true", ["--epochs", "true"], "recipe key 'epochs' must be an integer, got True", None),
    ("--epochs 2.5", ["--epochs", "2.5"], "recipe key 'epochs' must be an integer, got 2.5", None),
    ("--epochs -3", ["--epochs", "-3"], "recipe key 'epochs' must be >= 1, got -3", None),
    ("--batch-size 0", ["--batch-size", "0"], "recipe key 'batch_size' must be >= 1, got 0", None),
    ("milestone 0", ["--set", "schedule.milestones=[0, 5]"], "'schedule.milestones' must be >= 1, got 0", None),
    ("deterministic yes", ["--set", "deterministic=yes"], "'deterministic' must be true or false, got 'yes'", None),
    # names and keys
    ("--device cpu:abc", ["--device", "cpu:abc"], "unknown device 'cpu:abc'; valid choices: auto, cpu, cuda, mps, cuda:N",
     None),
    ("--device cpu:7", ["--device", "cpu:7"], "unknown device 'cpu:7'", None),
    ("--device cuda:x", ["--device", "cuda:x"], "unknown device 'cuda:x'", None),
    ("--device cuda:99", ["--device", "cuda:99"], "device 'cuda:99' is not available here", None),
    ("--device tpu", ["--device", "tpu"], "unknown device 'tpu'", None),
    ("--loss xent", ["--loss", "xent"], "unknown loss.name 'xent'; valid choices: ce, ", None),
    ("--arch resnet9", ["--arch", "resnet9"], "unknown model.arch 'resnet9'; valid choices: mlp, lenet, convnet", None),
    ("--dataset cifar11", ["--dataset", "cifar11"], "unknown dataset.name 'cifar11'; valid choices: digits, digits-heldout, mnist",
     None),
    ("amp fp8", ["--set", "amp=fp8"], "unknown amp 'fp8'; valid choices: none, bf16, fp16", None),
    ("eval fgsm", ["--set", "eval=[fgsm]"], "unknown eval 'fgsm'; valid choices: clean, shots, corrupt, ood, attack, calibration", None),
    ("unknown key", ["--set", "optim.lrr=0.1"], "unknown recipe key 'optim.lrr' (did you mean optim.lr?)", None),
    ("loss param unknown", ["--set", "loss.params.Q=1"], "loss 'hem' has no parameter 'Q'; valid parameters: M,",
     None),
    ("loss param wrong type", ["--set", "loss.params.M=abc"], "loss 'hem': parameter 'M' must be a number", None),
    ("loss param out of range", ["--set", "loss.params.margin=-1"], "loss 'hem': margin must be >= 0, got -1", None),
    ("margin_index unknown", ["--set", "loss.params.margin_index=diagonal"], "margin_index must be one of logit",
     None),
    ("loss.params a list", ["--set", "loss.params=[1, 2]"], "recipe key 'loss.params' must be a mapping", None),
    ("--set without =", ["--set", "epochs"], "--set needs KEY=VALUE, got 'epochs'", None),
    ("--set without key", ["--set", "=3"], "--set needs KEY=VALUE, got '=3'", None),
    ("--set unreadable", ["--set", "epochs=[1"], "--set epochs: cannot read value '[1'", None),
    ("unknown option", ["--epoch", "3"], "No such option: --epoch", None),
    # where the result goes
    ("--out below a file", ["--out", "blocker/results"], "cannot write results under blocker/results/classify",
     at(Path("blocker"), b"x")),
    ("a folder at the result path", [], f"the result path {RESULT} exists and is not a file",
     at(RESULT, folder=True)),
    ("a folder at the result path, --overwrite", ["--overwrite"], "exists and is not a file", at(RESULT, folder=True)),
    ("a folder at the checkpoint path", ["--resume"], f"the checkpoint path {CHECKPOINT} exists and is not a file",
     at(CHECKPOINT, folder=True)),
    ("an unfinished run without --resume", [], f"an unfinished run of this condition and seed has a checkpoint at "
     f"{CHECKPOINT}: pass --resume to continue it", lambda root: checkpoint_of_the_default_recipe(root)),
    # checkpoints
    ("--resume over an empty file", ["--resume"], f"cannot read checkpoint {CHECKPOINT}: not a hem checkpoint",
     at(CHECKPOINT, b"")),
    ("--resume over random bytes", ["--resume"], "not a hem checkpoint", at(CHECKPOINT, bytes(range(256)))),
    ("--resume over a saved list", ["--resume"], "not a hem checkpoint", at(CHECKPOINT, [1, 2, 3])),
    ("--resume over a bare tensor", ["--resume"], "not a hem checkpoint", at(CHECKPOINT, torch.zeros(3))),
    ("--resume over a dict without model", ["--resume"], "not a hem checkpoint",
     lambda root: at(CHECKPOINT, {"format": "hem-checkpoint/1", "epoch": 1, "recipe": default_recipe()})(root)),
    ("--resume over a checkpoint of another recipe", ["--resume"], "was made with another recipe; resume with the "
     "same options or pass --overwrite", lambda root: checkpoint_of_the_default_recipe(root, lr=0.5)),
    # data
    ("data missing", ["--dataset", "mnist", "--data-root", "empty", "--set", "dataset.download=false"],
     "train split missing in empty/MNIST/raw: need train-images-idx3-ubyte[.gz]", None),
    ("data incomplete", ["--dataset", "mnist", "--data-root", "d", "--set", "dataset.download=false"],
     "train split missing in d/MNIST/raw", lambda root: idx_files(root / "d")),
    ("data with a bad magic number", ["--dataset", "mnist", "--data-root", "d", "--set", "dataset.download=false"],
     "is not an IDX images file (bad magic number)", lambda root: idx_files(root / "d", ("train", "t10k"), 2049)),
    ("data root is a file", ["--dataset", "mnist", "--data-root", "blocker"], "data root blocker is not a folder",
     at(Path("blocker"), b"x")),
    ("data offline", ["--dataset", "fashion-mnist", "--data-root", "nodata"],
     "could not download FashionMNIST into nodata", None),
    ("a bad loss parameter before any download", ["--dataset", "fashion-mnist", "--data-root", "nodata",
                                                   "--set", "loss.params.Q=1"], "loss 'hem' has no parameter 'Q'", None),
]

REPORT_CASES = [
    ("report: missing path", ["report", "nope"], "no such file or directory: nope", None),
    ("report: nothing found", ["report", "empty"], "no result files under empty", at(Path("empty"), folder=True)),
    ("report: format xml", ["report", ".", "--format", "xml"], "unknown format 'xml'; valid choices: csv, github",
     None),
    ("report: --metrics ,", ["report", "r", "--metrics", ","], "--metrics names no metric; present: clean_accuracy",
     lambda root: at(Path("r/x.json"), b'{"schema_version": 1, "task": "classify", "status": "complete", '
                     b'"recipe": {}, "metrics": {"clean_accuracy": 90}}')(root)),
    ("report: unknown metric", ["report", "r", "--metrics", "dar_linf"], "unknown metric 'dar_linf'; valid choices: clean_acc",
     lambda root: at(Path("r/x.json"), b'{"schema_version": 1, "task": "classify", "status": "complete", '
                     b'"recipe": {}, "metrics": {"clean_accuracy": 90}}')(root)),
]


def snapshot(root: Path) -> dict:
    """Every file and folder with its size and time stamp. Folders' own time stamps are left out: a
    checkpoint is read under the run's lock, whose file is made and removed in the existing folder."""
    return {str(p.relative_to(root)): (p.is_dir(), 0, 0) if p.is_dir() else (False, p.stat().st_size,
                                                                             p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def check_case(tmp_path, monkeypatch, capsys, argv, message, setup):
    import torchvision.datasets as tvd

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEM_DATA", raising=False)
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # offline, at once
    if setup:
        setup(tmp_path)
    before = snapshot(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("hem: error: ") and "Traceback" not in err
    assert message in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, message, setup", [pytest.param(
    argv, message, setup, id=name, marks=pytest.mark.skipif(
        "/proc/" in " ".join(argv) and not os.path.exists("/proc/self/mem"), reason="no /proc here"))
    for name, argv, message, setup in CASES])
def test_classify_bad_input(tmp_path, monkeypatch, capsys, argv, message, setup):
    check_case(tmp_path, monkeypatch, capsys, ["classify", "--quiet", "--epochs", "1", *argv]
               if "--epochs" not in argv else ["classify", "--quiet", *argv], message, setup)


@pytest.mark.parametrize("argv", [[], ["--resume"]], ids=["again", "--resume"])
def test_a_finished_run_is_already_done(tmp_path, monkeypatch, capsys, argv):
    """Issue 27: the same command again prints the result's path and changes nothing (it used to be
    refused as bad input, so a pipeline line could not be run twice)."""
    monkeypatch.chdir(tmp_path)
    at(RESULT, b"{}")(tmp_path)
    before = snapshot(tmp_path)
    assert main(["classify", "--quiet", "--epochs", "1", *argv]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{RESULT}\n", f"hem: already done: {RESULT} (--overwrite trains it again)\n")
    assert snapshot(tmp_path) == before


def test_pretrained_weights_offline(tmp_path, monkeypatch, capsys):
    """`model.pretrained=true` where the weights cannot be downloaded: one line before anything is written."""
    import urllib.error

    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    check_case(tmp_path, monkeypatch, capsys, ["classify", "--quiet", "--epochs", "1", "--dataset", "cifar10",
                                               "--arch", "resnet18", "--set", "model.pretrained=true"],
               "cannot download the pretrained weights of resnet18: <urlopen error [Errno -3] Temporary failure "
               "in name resolution>; connect to the network, or put resnet18-", None)


LONGTAIL_CASES = [
    ("imbalance below 1", ["--imbalance", "0.5"], "recipe key 'longtail.imbalance' must be >= 1, got 0.5", None),
    ("factor above 1", ["--set", "longtail.factor=1.5"], "recipe key 'longtail.factor' must be <= 1, got 1.5", None),
    ("factor 0", ["--set", "longtail.factor=0"], "long-tail factor f must be in (0, 1], got 0.0", None),
    # digits keeps about 145 a class: 145 * 0.3 ** 4 = 1.17, 145 * 0.3 ** 5 = 0.35
    ("a class left without samples", ["--set", "longtail.factor=0.3"],
     "long-tail factor 0.3 leaves classes 5, 6, 7, 8, 9 without a training sample (it keeps floor(s_j * f^j))", None),
    ("a long-tailed cut of a streamed set", ["--dataset", "imagenet", "--arch", "resnet50"],
     "dataset imagenet streams from disk; a long-tailed subset is cut from a set held in memory, or comes as list "
     "files: imagenet-lt", None),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in LONGTAIL_CASES])
def test_longtail_bad_input(tmp_path, monkeypatch, capsys, argv, message, setup):
    check_case(tmp_path, monkeypatch, capsys, ["longtail", "--quiet", "--epochs", "1", *argv], message, setup)


CONTINUAL_CASES = [
    ("unknown strategy", ["--strategy", "gem"],
     "unknown strategy.name 'gem'; valid choices: naive, replay, si, ewc, lwf, lfl", None),
    ("unknown benchmark", ["--benchmark", "split-svhn"], "unknown benchmark.name 'split-svhn'; valid choices: ", None),
    ("unknown scenario", ["--scenario", "online"],
     "unknown benchmark.scenario 'online'; valid choices: task, class, domain", None),
    ("a scenario the benchmark does not have", ["--benchmark", "permuted-digits", "--scenario", "task"],
     "benchmark permuted-digits has no 'task' scenario; valid choices: domain", None),
    ("a strategy parameter of the wrong type", ["--strategy", "ewc", "--set", "strategy.params.ewc_lambda=strong"],
     "strategy 'ewc': parameter 'ewc_lambda' must be a number, got 'strong'", None),
    ("a strategy parameter it does not have", ["--strategy", "si", "--set", "strategy.params.ewc_lambda=1"],
     "strategy 'si' has no parameter 'ewc_lambda'; valid parameters: si_lambda, eps", None),
    ("a strategy parameter outside its choices", ["--strategy", "ewc", "--set", "strategy.params.mode=offline"],
     "strategy 'ewc': parameter 'mode': unknown value 'offline'; valid choices: separate, online", None),
    ("classes that do not split evenly", ["--set", "benchmark.experiences=3"],
     "benchmark split-digits: 10 classes do not split into 3 experiences of equal size", None),
    ("an experience left without images", ["--set", "dataset.limit=3"], "images; raise dataset.limit or leave it out",
     None),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in CONTINUAL_CASES])
def test_continual_bad_input(tmp_path, monkeypatch, capsys, argv, message, setup):
    check_case(tmp_path, monkeypatch, capsys, ["continual", "--quiet", "--epochs", "1", *argv], message, setup)


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in REPORT_CASES])
def test_report_bad_input(tmp_path, monkeypatch, capsys, argv, message, setup):
    check_case(tmp_path, monkeypatch, capsys, argv, message, setup)



# ---------------------------------------------------------------- issue 25: hostile input

def alias_bomb(levels: int = 9, flow: bool = False) -> str:
    """'Billion laughs': each level a list of nine aliases of the one before, 9 ** levels strings
    once expanded, in a few hundred bytes. ``flow``: one line (a --set value)."""
    items = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    items += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "{" + ", ".join(items) + "}" if flow else "\n".join(items) + "\n"


def indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


class PlantedPickle:
    """Unpickling it would create the file ``marker`` (what a crafted checkpoint could do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def planted(path: Path, zipped: bool):
    """A checkpoint at ``path`` whose unpickling would create ``MARKER`` beside the working folder's
    files: a bare pickle, or torch.save's zip format holding one. The snapshot would show the marker."""
    def write(root: Path) -> None:
        import pickle

        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": "hem-checkpoint/1", "model": PlantedPickle(root / "MARKER")}
        if zipped:
            torch.save(payload, target)
        else:
            target.write_bytes(pickle.dumps(payload))
    return write


def fifo(path: Path):
    def write(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / path)
    return write


BOMB_MESSAGE = "aliases expand to more than 100000 values"
HOSTILE_CASES = [
    ("alias bomb under loss.params in a recipe", ["-r", "r.yaml"], f"recipe r.yaml is too large to be a recipe: its "
     f"{BOMB_MESSAGE}", recipe("loss:\n  name: hem\n  params:\n" + indented(alias_bomb(), 4))),
    ("alias bomb under another key in a recipe", ["-r", "r.yaml"], BOMB_MESSAGE,
     recipe(alias_bomb() + "seed: *l8\n")),
    ("alias bomb one level less", ["-r", "r.yaml"], BOMB_MESSAGE,
     recipe("loss:\n  params:\n" + indented(alias_bomb(8), 4))),
    ("alias bomb through a merge key", ["-r", "r.yaml"], BOMB_MESSAGE,
     recipe(alias_bomb().replace("l8: &l8 [", "l8: &l8 {x: [").replace("*l7]\n", "*l7]}\n") + "optim:\n  <<: *l8\n")),
    ("alias bomb through --set loss.params", ["--set", f"loss.params={alias_bomb(flow=True)}"],
     f"--set loss.params: cannot read value", None),
    ("alias bomb through --set of a number", ["--set", f"optim.lr={alias_bomb(flow=True)}"], BOMB_MESSAGE, None),
    ("alias bomb through a flag", ["--lr", alias_bomb(flow=True)], "recipe key 'optim.lr' must be a number", None),
    ("an alias inside itself", ["-r", "r.yaml"], "an alias refers to the mapping or list it is in",
     recipe("loss:\n  params: &p {M: [*p]}\n")),
    ("an alias inside itself through --set", ["--set", "loss.params=&p {M: [*p]}"],
     "an alias refers to the mapping or list it is in", None),
    ("--set eval=[]", ["--set", "eval=[]"], "recipe key 'eval' must name at least one of clean, shots, corrupt, ood, "
     "attack, calibration, got []", None),
    ("--eval []", ["--eval", "[]"], "recipe key 'eval' must name at least one of", None),
    ("--set evaluation.scores=[]", ["--eval", "ood", "--set", "evaluation.scores=[]"],
     "recipe key 'evaluation.scores' must name at least one of msp, mls, energy, gen, got []", None),
    ("--scores []", ["--scores", "[]"], "recipe key 'evaluation.scores' must name at least one of", None),
    ("--set evaluation.attack_norms=[]", ["--eval", "attack", "--set", "evaluation.attack_norms=[]"],
     "recipe key 'evaluation.attack_norms' must name at least one of linf, l2, got []", None),
    ("recipe is a FIFO", ["-r", "pipe.yaml"], "recipe pipe.yaml is not a file", fifo(Path("pipe.yaml"))),
    ("checkpoint is a FIFO", ["--resume"], f"the checkpoint path {CHECKPOINT} exists and is not a file",
     fifo(CHECKPOINT)),
    ("planted pickle as the checkpoint", ["--resume"], f"cannot read checkpoint {CHECKPOINT}: not a hem checkpoint",
     planted(CHECKPOINT, zipped=False)),
    ("planted pickle in torch's zip format", ["--resume"], f"cannot read checkpoint {CHECKPOINT}: not a hem "
     "checkpoint", planted(CHECKPOINT, zipped=True)),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in HOSTILE_CASES])
def test_hostile_input_is_refused_at_once(tmp_path, monkeypatch, capsys, argv, message, setup):
    import time

    began = time.perf_counter()
    check_case(tmp_path, monkeypatch, capsys, ["classify", "--quiet", "--epochs", "1", *argv], message, setup)
    assert time.perf_counter() - began < 5  # an expanded bomb took minutes; the budget answers at once
    assert not (tmp_path / "MARKER").exists()


def _planted_for(task: str):
    from hemcli.runs.paths import checkpoint_path
    from hemcli.runs.spec import plan_run

    return checkpoint_path(plan_run(task, None, {"epochs": 1}, [], "results").path)


OTHER_TASK_CASES = [
    ("longtail: planted pickle", "longtail", ["--resume"], "not a hem checkpoint", "planted"),
    ("segment: planted pickle", "segment", ["--resume"], "not a hem checkpoint", "planted"),
    ("longtail: alias bomb in --set", "longtail", ["--set", f"loss.params={alias_bomb(flow=True)}"], BOMB_MESSAGE,
     None),
    ("continual: alias bomb under strategy.params", "continual",
     ["--set", f"strategy.params={alias_bomb(flow=True)}"], BOMB_MESSAGE, None),
    ("continual: alias bomb in a recipe", "continual", ["-r", "r.yaml"], BOMB_MESSAGE,
     "strategy:\n  name: ewc\n  params:\n" + indented(alias_bomb(), 4)),
    ("segment: alias bomb in a recipe", "segment", ["-r", "r.yaml"], BOMB_MESSAGE, alias_bomb() + "seed: *l8\n"),
]


@pytest.mark.parametrize("task, argv, message, setup", [pytest.param(*case[1:], id=case[0])
                                                        for case in OTHER_TASK_CASES])
def test_hostile_input_to_other_tasks(tmp_path, monkeypatch, capsys, task, argv, message, setup):
    write = (planted(_planted_for(task), zipped=True) if setup == "planted"
             else recipe(setup) if isinstance(setup, str) else None)
    check_case(tmp_path, monkeypatch, capsys, [task, "--quiet", "--epochs", "1", *argv], message, write)
    assert not (tmp_path / "MARKER").exists()


def test_sweep_refuses_an_alias_bomb_at_once(tmp_path, monkeypatch, capsys):
    check_case(tmp_path, monkeypatch, capsys, ["sweep", "classify", "--seed", "0-1", "--dry-run", "-r", "r.yaml"],
               BOMB_MESSAGE, recipe("grid:\n" + indented(alias_bomb(), 2)))


# issue 28: hem evaluate --weights
WEIGHTS = Path("w.pt")
NETWORK = ["--arch", "lenet", "--dataset", "digits"]


def lenet_weights(classes: int = 10, change=None):
    """A lenet state_dict for digits' 8x8 images at ``WEIGHTS`` (``change(state)``: what is saved instead)."""
    def write(root: Path) -> None:
        from hemcli.models import build_model

        state = build_model("lenet", (1, 8, 8), classes).state_dict()
        at(WEIGHTS, change(state) if change else state)(root)
    return write


def other_arch_weights(root: Path) -> None:
    from hemcli.models import build_model

    at(WEIGHTS, build_model("mlp", (1, 8, 8), 10).state_dict())(root)


def pickled_network(root: Path) -> None:
    from hemcli.models import build_model

    at(WEIGHTS, build_model("lenet", (1, 8, 8), 10))(root)


def narrower_first_conv(state: dict) -> dict:
    return {**state, "features.0.weight": torch.zeros(8, 1, 5, 5)}


def module(name: str, text: str):
    """``name``.py in the working folder, for --model (names unique: Python keeps an imported module)."""
    return recipe(text, f"{name}.py")


EVALUATE_CASES = [
    ("weights missing", ["--weights", "nope.pt", *NETWORK], "weights file not found: nope.pt", None),
    ("weights a folder", ["--weights", "w.pt", *NETWORK], "cannot read weights w.pt: a folder, not a regular file",
     at(WEIGHTS, folder=True)),
    ("weights a pickled network", ["--weights", "w.pt", *NETWORK], "weights w.pt hold a pickled "
     "hemcli.models.small.LeNet, not a state_dict; save model.state_dict() instead", pickled_network),
    ("weights a tensor", ["--weights", "w.pt", *NETWORK],
     "weights w.pt hold a tensor of shape [3], not a state_dict (parameter names to tensors)", at(WEIGHTS, torch.zeros(3))),
    ("weights garbage bytes", ["--weights", "w.pt", *NETWORK], "cannot read weights w.pt: not a file torch.save wrote",
     at(WEIGHTS, bytes(range(256)))),
    ("weights an empty file", ["--weights", "w.pt", *NETWORK], "cannot read weights w.pt: not a file torch.save wrote",
     at(WEIGHTS, b"")),
    ("weights a planted pickle", ["--weights", "w.pt", *NETWORK], "weights w.pt hold a pickled getattr, not a "
     "state_dict", planted(WEIGHTS, zipped=True)),
    ("weights a hem checkpoint", ["--weights", "w.pt", *NETWORK], "weights w.pt hold a hem checkpoint (measure its "
     "run with hem evaluate RESULT.json)", lenet_weights(change=lambda s: {"format": "hem-checkpoint/1", "model": s})),
    ("weights of another network", ["--weights", "w.pt", *NETWORK], "weights w.pt do not fit lenet: missing keys "
     "features.0.weight, features.0.bias, features.3.weight and 5 more; unexpected keys 1.weight, 1.bias, 3.weight "
     "and 5 more", other_arch_weights),
    ("weights with a key missing", ["--weights", "w.pt", *NETWORK], "weights w.pt do not fit lenet: missing keys "
     "features.0.bias", lenet_weights(change=lambda s: {k: v for k, v in s.items() if k != "features.0.bias"})),
    ("weights of a DataParallel wrapper", ["--weights", "w.pt", *NETWORK], "(saved from a DataParallel/DDP wrapper: "
     "save model.module.state_dict())", lenet_weights(change=lambda s: {f"module.{k}": v for k, v in s.items()})),
    ("weights of another shape", ["--weights", "w.pt", *NETWORK], "weights w.pt do not fit lenet: features.0.weight "
     "has shape [8, 1, 5, 5] in the file and [16, 1, 5, 5] in the network", lenet_weights(change=narrower_first_conv)),
    ("weights of another class count", ["--weights", "w.pt", *NETWORK],
     "weights w.pt are of a 6-class lenet; dataset digits has 10 classes", lenet_weights(6)),
    ("weights of an arch that does not fit", ["--weights", "w.pt", "--arch", "resnet32", "--dataset", "digits"],
     "arch 'resnet32' does not take 8x8 inputs", lenet_weights()),
    ("weights without a network", ["--weights", "w.pt", "--dataset", "digits"], "--weights needs the network they "
     "are for: --arch A (hem archs lists them) or --model package.module:factory", lenet_weights()),
    ("weights without a dataset", ["--weights", "w.pt", "--arch", "lenet"], "--weights needs --dataset D, the "
     "dataset the network classifies; valid choices: digits, digits-heldout", lenet_weights()),
    ("--arch without weights", NETWORK, "--arch lenet needs --weights FILE", None),
    ("--arch and --model", ["--weights", "w.pt", *NETWORK, "--model", "m:f"], "--arch and --model both name the "
     "network; give one", lenet_weights()),
    ("a result and --weights", ["results", "--weights", "w.pt", *NETWORK], "--weights, --arch, --dataset measure a "
     "network trained elsewhere; result files are measured again in place", lenet_weights()),
    ("--set of a training key", ["--weights", "w.pt", *NETWORK, "--set", "optim.lr=0.1"], "--set optim.lr: a network "
     "trained elsewhere takes eval, dataset.download, dataset.limit and evaluation.* keys", lenet_weights()),
    ("--model not importable", ["--model", "hem28_absent:build", "--dataset", "digits"], "--model hem28_absent:build: "
     "no module named 'hem28_absent' on sys.path or in the working folder", None),
    ("--model malformed", ["--model", "hem28_nocolon", "--dataset", "digits"],
     "--model is written package.module:factory, got 'hem28_nocolon'", None),
    ("--model failing to import", ["--model", "hem28_broken:build", "--dataset", "digits"], "--model hem28_broken:build: "
     "importing hem28_broken raised ZeroDivisionError: division by zero", module("hem28_broken", "1 / 0\n")),
    ("--model without the factory", ["--model", "hem28_nofactory:build", "--dataset", "digits"],
     "--model hem28_nofactory:build: hem28_nofactory has no attribute 'build'", module("hem28_nofactory", "x = 1\n")),
    ("--model not callable", ["--model", "hem28_notcallable:build", "--dataset", "digits"], "--model "
     "hem28_notcallable:build is not callable (an object of type int)", module("hem28_notcallable", "build = 3\n")),
    ("--model returning no network", ["--model", "hem28_nonetwork:build", "--dataset", "digits"], "--model "
     "hem28_nonetwork:build returned an object of type str, not an nn.Module",
     module("hem28_nonetwork", "def build(num_classes):\n    return 'a network'\n")),
    ("--model returning another class count", ["--model", "hem28_sixclasses:build", "--dataset", "digits"],
     "the network gives 6 logits per image; dataset digits has 10 classes", module(
         "hem28_sixclasses", "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 6))\n")),
    ("--model not taking the images", ["--model", "hem28_otherimages:build", "--dataset", "digits"],
     "the network cannot take digits images (a batch of 2x1x8x8): RuntimeError: ", module(
         "hem28_otherimages", "from torch import nn\n\ndef build(num_classes):\n    return nn.Linear(3, num_classes)\n")),
    ("nothing to measure", [], "nothing to measure: give result files (or folders of them), or --weights FILE --arch A "
     "--dataset D", None),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(*case[1:], id=case[0]) for case in EVALUATE_CASES])
def test_evaluate_weights_bad_input(tmp_path, monkeypatch, capsys, argv, message, setup):
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an imported --model module leaves no __pycache__
    monkeypatch.setattr(sys, "path", list(sys.path))  # the working folder hem appends is forgotten afterwards
    try:
        check_case(tmp_path, monkeypatch, capsys, ["evaluate", "--quiet", "--device", "cpu", *argv], message, setup)
    finally:
        for name in [name for name in sys.modules if name.startswith("hem28_")]:
            del sys.modules[name]
    assert not (tmp_path / "MARKER").exists()
