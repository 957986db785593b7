"""Issue 27 item 6, "your own loss, everywhere": a loss of the researcher's own, named
``package.module:NAME`` or by an entry point of group ``hemcli.losses``, trains in every task, is
listed by ``hem losses`` and reported under its own name; a bad one is one line before anything is
written (the bad-input contract of test_bad_input)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hemcli.cli import main
from hemcli.losses import LOSSES, build_loss
from hemcli.losses.registry import BUILT_IN
from test_bad_input import check_case

PLUGIN = '''
import torch
import torch.nn.functional as F
from torch import nn

SCALE = 2.0
received = []


def scaled_ce(logits, targets, scale=1.0):
    """cross-entropy times scale"""
    return scale * F.cross_entropy(logits, targets)


class ScaledCE(nn.Module):
    """cross-entropy times scale, an nn.Module that takes the class counts"""

    def __init__(self, scale=1.0, class_counts=None, num_classes=None):
        super().__init__()
        self.scale, self.class_counts, self.num_classes = scale, class_counts, num_classes

    def forward(self, logits, targets):
        return self.scale * F.cross_entropy(logits, targets)


def recording(logits, targets):
    received.append((logits, targets))
    return F.cross_entropy(logits, targets)


def boom(logits, targets):
    raise ValueError("boom")


def per_sample(logits, targets):
    return F.cross_entropy(logits, targets, reduction="none")


def nan_loss(logits, targets):
    return F.cross_entropy(logits, targets) * float("nan")


def inf_loss(logits, targets):
    return F.cross_entropy(logits, targets) + float("inf")


def a_number(logits, targets):
    return 1.0


def detached(logits, targets):
    return F.cross_entropy(logits.detach(), targets)


def needs_weight(logits, targets, weight):
    return weight * F.cross_entropy(logits, targets)


def tensor_default(logits, targets, weight=torch.ones(3)):
    return F.cross_entropy(logits, targets)


def one_argument(logits):
    return logits.mean()


class NotAModule:
    def __call__(self, logits, targets):
        return F.cross_entropy(logits, targets)


class Refuses(nn.Module):
    def __init__(self, scale=1.0):
        raise RuntimeError("no such scale")
'''


def dist_info(site: Path, dist: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds one on sys.path: a .dist-info folder."""
    folder = site / f"{dist}-0.1.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (folder / "entry_points.txt").write_text(f"[hemcli.losses]\n{entry_points}\n")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """scaledce.py (and badimport.py) in the working folder, on sys.path; forgotten afterwards."""
    (tmp_path / "scaledce.py").write_text(PLUGIN)
    (tmp_path / "badimport.py").write_text('raise RuntimeError("broken at import")\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # sys.path as it was comes back afterwards
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__: "nothing written" holds
    yield tmp_path
    for name in [name for name, info in LOSSES.items() if info.source != BUILT_IN]:
        del LOSSES[name]
    for module in ("scaledce", "badimport"):
        sys.modules.pop(module, None)


def train(*argv: str) -> dict:
    """The result of one run into a fresh folder."""
    out = Path(f"out{len(list(Path().glob('out*')))}")
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    [path] = out.rglob("seed0.json")
    return {**json.loads(path.read_text()), "path": path}


SMOKE = {"classify": ["classify", "--arch", "mlp", "--epochs", "1"],
         "longtail": ["longtail", "--arch", "mlp", "--epochs", "1"],
         "continual": ["continual", "--epochs", "1", "--set", "benchmark.experiences=2"],
         "segment": ["segment", "--epochs", "1", "--set", "dataset.limit=4", "--batch-size", "2"]}


@pytest.mark.parametrize("task, loss", [("classify", "scaledce:scaled_ce"), ("longtail", "scaledce:ScaledCE"),
                                        ("continual", "scaledce:ScaledCE"), ("segment", "scaledce:scaled_ce")])
def test_a_plugin_trains_in_every_task(plugin, task, loss):
    result = train(*SMOKE[task], "--loss", loss, "--set", "loss.params.scale=2")
    assert result["recipe"]["loss"] == {"name": loss, "params": {"scale": 2}}
    assert loss.replace(":", "_") in result["path"].parts  # the result folder: the name, made safe


def test_scale_1_trains_as_ce_and_the_scale_reaches_the_loss(plugin):
    """Against the built-in CE as the independent reference: the same first epoch's training loss at
    scale 1, twice that at scale 2 (Adam's steps do not depend on the loss's scale)."""
    ce, same, double = (train(*SMOKE["classify"], "--deterministic", *loss)["history"][0]["train_loss"]
                        for loss in (["--loss", "ce"], ["--loss", "scaledce:scaled_ce"],
                                     ["--loss", "scaledce:scaled_ce", "--set", "loss.params.scale=2"]))
    assert same == pytest.approx(ce, rel=1e-5)
    assert double == pytest.approx(2 * ce, rel=1e-3)


def test_hem_losses_and_hem_report_show_a_plugin_by_its_name(plugin, capsys):
    train(*SMOKE["classify"], "--loss", "scaledce:ScaledCE")
    capsys.readouterr()
    assert main(["losses"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "scaledce:ScaledCE" in line]
    assert "scale=1" in row and "| yes " in row and "an nn.Module that takes the class counts" in row
    assert row.rstrip(" |").endswith("scaledce:ScaledCE")  # its source
    assert main(["report", "out0"]) == 0
    header, _, row = ([cell.strip() for cell in line.split("|")] for line in capsys.readouterr().out.splitlines()[:3])
    assert row[header.index("loss")] == "scaledce:ScaledCE"


def test_an_entry_point_names_a_loss(plugin, monkeypatch, capsys):
    dist_info(plugin / "site", "hemplug", "scaled = scaledce:scaled_ce\nce = scaledce:boom\n"
                                          "broken = scaledce:nope")
    monkeypatch.syspath_prepend(str(plugin / "site"))
    assert main(["losses"]) == 0
    by_name = {}
    for line in capsys.readouterr().out.splitlines()[2:]:
        cells = line.split("|")  # a description may hold a | (LogitNorm's ||y||): read the ends
        by_name.setdefault(cells[1].strip(), []).append((cells[2].strip(), "|".join(cells[4:-2]).strip(),
                                                         cells[-2].strip()))
    assert by_name["scaled"] == [("scale=1", "cross-entropy times scale", "entry point hemplug")]
    assert by_name["ce"] == [("tau=1", "cross-entropy, -log softmax(y / tau)_l", "built-in"),
                             ("-", "refused: 'ce' is the name of a built-in loss", "entry point hemplug")]
    [(_, problem, _)] = by_name["broken"]
    assert problem == "loss 'broken': scaledce has no attribute 'nope'"
    result = train(*SMOKE["classify"], "--loss", "scaled")
    assert result["recipe"]["loss"] == {"name": "scaled", "params": {"scale": 1.0}}


def test_class_counts_num_classes_and_ignore_index_are_filled_in(plugin):
    loss = build_loss("scaledce:ScaledCE", num_classes=3, class_counts=[1, 2, 3], scale=0.5)
    assert (loss.plugin.class_counts, loss.plugin.num_classes, loss.plugin.scale) == ((1.0, 2.0, 3.0), 3, 0.5)
    assert LOSSES["scaledce:ScaledCE"].needs_class_counts
    assert not LOSSES["scaledce:scaled_ce"].needs_class_counts
    assert dict(LOSSES["scaledce:scaled_ce"].defaults) == {"scale": 1.0}
    torch_ce = build_loss("torch.nn:CrossEntropyLoss", num_classes=3, ignore_index=255, label_smoothing=0.1)
    assert (torch_ce.plugin.ignore_index, torch_ce.plugin.label_smoothing) == (255, 0.1)
    assert "ignore_index" not in LOSSES["torch.nn:CrossEntropyLoss"].defaults


def test_pixels_reach_a_plugin_as_rows_without_the_ignored_ones(plugin):
    loss = build_loss("scaledce:recording", num_classes=3, ignore_index=255)
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    targets = torch.randint(0, 3, (2, 4, 5))
    targets[0, :2] = 255
    value = loss(logits, targets)
    received_logits, received_targets = sys.modules["scaledce"].received[-1]
    assert received_logits.shape == (30, 3) and received_targets.shape == (30,)
    torch.testing.assert_close(value, F.cross_entropy(logits, targets, ignore_index=255))

    everything_ignored = loss(logits, torch.full((2, 4, 5), 255))
    everything_ignored.backward()
    assert everything_ignored.item() == 0 and logits.grad is not None and not logits.grad.any()


def test_classification_logits_reach_a_plugin_unchanged(plugin):
    loss = build_loss("scaledce:recording", num_classes=3)
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    loss(logits, targets)
    received_logits, received_targets = sys.modules["scaledce"].received[-1]
    assert received_logits is logits and received_targets is targets


def test_a_module_in_the_working_folder_imports_with_it_off_sys_path(plugin, monkeypatch):
    """As under the `hem` console script, whose sys.path[0] is the venv's bin folder."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(plugin), os.getcwd())])
    assert LOSSES.find("scaledce:scaled_ce") is not None
    assert str(plugin) in sys.path


@pytest.mark.slow
def test_the_console_script_and_its_sweep_workers_find_a_module_in_the_working_folder(plugin):
    hem = Path(sys.executable).with_name("hem")
    if not hem.is_file():
        pytest.skip(f"no console script at {hem}")
    done = subprocess.run([str(hem), "sweep", "classify", "--loss", "ce,scaledce:scaled_ce", "--arch", "mlp",
                           "--epochs", "1", "--out", "out", "--quiet"], cwd=plugin, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((plugin / "out").rglob("seed0.json"))) == 2 and "scaledce:scaled_ce" in done.stdout


CLASSIFY = ["classify", "--quiet", "--epochs", "1", "--loss"]
BATCH = "calling it on a probe batch of 4x10 logits"
CASES = [
    ("module not found", [*CLASSIFY, "nosuchmod:f"], "loss 'nosuchmod:f': no module named 'nosuchmod'", None),
    ("module fails to import", [*CLASSIFY, "badimport:f"],
     "importing badimport raised RuntimeError: broken at import", None),
    ("attribute missing", [*CLASSIFY, "scaledce:scaled"],
     "loss 'scaledce:scaled': scaledce has no attribute 'scaled' (did you mean scaled_ce?)", None),
    ("not written module:NAME", [*CLASSIFY, "scaledce:"], "a plug-in loss is written package.module:NAME", None),
    ("not callable", [*CLASSIFY, "scaledce:SCALE"], "is float 2.0, not a function or an nn.Module subclass", None),
    ("a class but no nn.Module", [*CLASSIFY, "scaledce:NotAModule"], "is a class but not an nn.Module subclass",
     None),
    ("raises on the probe", [*CLASSIFY, "scaledce:boom"], f"loss 'scaledce:boom': {BATCH} raised ValueError: boom",
     None),
    ("returns no scalar", [*CLASSIFY, "scaledce:per_sample"], f"{BATCH} returned a tensor of shape (4,), not a scalar",
     None),
    ("returns nan", [*CLASSIFY, "scaledce:nan_loss"], f"{BATCH} returned nan; a loss must be finite", None),
    ("returns inf", [*CLASSIFY, "scaledce:inf_loss"], f"{BATCH} returned inf; a loss must be finite", None),
    ("returns no tensor", [*CLASSIFY, "scaledce:a_number"], f"{BATCH} returned float 1.0, not a tensor", None),
    ("no gradient reaches the logits", [*CLASSIFY, "scaledce:detached"], "does not depend on the logits", None),
    ("one positional parameter", [*CLASSIFY, "scaledce:one_argument"], "takes 1 positional parameter(s)", None),
    ("a parameter without a default", [*CLASSIFY, "scaledce:needs_weight"], "parameter 'weight' has no default", None),
    ("a default no recipe holds", [*CLASSIFY, "scaledce:tensor_default"], "parameter 'weight' defaults to a Tensor",
     None),
    ("building it raises", [*CLASSIFY, "scaledce:Refuses"],
     "building Refuses(scale=1.0) raised RuntimeError: no such scale", None),
    ("a parameter of the wrong type", [*CLASSIFY, "scaledce:scaled_ce", "--set", "loss.params.scale=abc"],
     "loss 'scaledce:scaled_ce': parameter 'scale' must be a number, got str 'abc'", None),
    ("an unknown parameter", [*CLASSIFY, "scaledce:scaled_ce", "--set", "loss.params.nope=1"],
     "loss 'scaledce:scaled_ce' has no parameter 'nope'; valid parameters: scale", None),
    ("an entry point of two distributions", [*CLASSIFY, "twice"],
     "loss 'twice' is an entry point of several distributions (one, two)",
     lambda root: [dist_info(root / "site", dist, "twice = scaledce:scaled_ce") for dist in ("one", "two")]),
    ("an unknown bare name", [*CLASSIFY, "scaled_ce"], "unknown loss.name 'scaled_ce'; valid choices: ce, ", None),
    ("longtail: raises on the probe", ["longtail", "--quiet", "--epochs", "1", "--loss", "scaledce:boom"],
     "raised ValueError: boom", None),
    ("continual: raises on the probe", ["continual", "--quiet", "--epochs", "1", "--loss", "scaledce:boom"],
     "raised ValueError: boom", None),
    ("segment: raises on the probe", ["segment", "--quiet", "--epochs", "1", "--loss", "scaledce:boom"],
     "raised ValueError: boom", None),
]


@pytest.mark.parametrize("argv, message, setup", [pytest.param(argv, message, setup, id=name)
                                                  for name, argv, message, setup in CASES])
def test_a_bad_plugin_is_one_line_and_nothing_written(plugin, monkeypatch, capsys, argv, message, setup):
    monkeypatch.syspath_prepend(str(plugin / "site"))
    check_case(plugin, monkeypatch, capsys, argv, message, setup)


def test_a_plugin_failing_in_training_ends_the_run_in_one_line(tmp_path, monkeypatch, capsys):
    """A plug-in that passes the probe and raises later (on the first training batch of 32): exit 1
    with its exception named, not "internal error"."""
    (tmp_path / "laterboom.py").write_text(
        "import torch.nn.functional as F\n"
        "def loss(logits, targets):\n"
        "    if len(targets) > 4:\n"
        "        raise ValueError('too many')\n"
        "    return F.cross_entropy(logits, targets)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from hemcli.cli import main

    code = main(["classify", "--arch", "mlp", "--epochs", "1", "--quiet", "--loss", "laterboom:loss"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("hem: error: loss 'laterboom:loss' raised ValueError on a batch of 32x10 logits: too many")
