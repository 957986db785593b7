"""Bad input through the real command line: one line, exit code 2, nothing written."""
import json
import subprocess
import sys

import pytest

from conftest import needs_shared
from hemcli.cli import main

FAST = ["--epochs", "1", "--quiet"]


def hem(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files_under(path):
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.mark.parametrize("args, message", [
    (["--loss", "xent"], "unknown loss.name 'xent'; valid choices: ce, "),
    (["--arch", "resnet9"], "unknown model.arch 'resnet9'; valid choices: mlp, lenet, convnet"),
    (["--dataset", "cifar11"], "unknown dataset.name 'cifar11'; valid choices: digits, mnist, fashion-mnist"),
    (["--set", "optim.lrr=0.1"], "unknown recipe key 'optim.lrr' (did you mean optim.lr?)"),
    (["--epochs", "-3"], "recipe key 'epochs' must be >= 1, got -3"),
    (["--epochs", "abc"], "recipe key 'epochs' must be an integer, got 'abc'"),
    (["--lr", "fast"], "recipe key 'optim.lr' must be a number, got 'fast'"),
    (["--set", "loss.params.Q=1"], "Q"),
    (["--device", "tpu"], "unknown device 'tpu'; valid choices: auto, cpu, cuda, mps"),
    (["--recipe", "does/not/exist.yaml"], "recipe file not found: does/not/exist.yaml"),
    (["--epoch", "3"], "No such option: --epoch"),
])
def test_bad_input_one_line_exit_2_nothing_written(capsys, tmp_path, args, message):
    out = tmp_path / "out"
    code, stdout, stderr = hem(capsys, "classify", *args, "--out", str(out), "--quiet")
    assert code == 2
    assert message in stderr
    assert stderr.startswith("hem: error: ") and stderr.count("\n") == 1
    assert "Traceback" not in stderr and stdout == ""
    assert files_under(out) == []


def test_malformed_yaml(capsys, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("loss:\n  name: hem\n epochs: 3\n")
    code, _, stderr = hem(capsys, "classify", "--recipe", str(recipe), "--out", str(tmp_path / "out"))
    assert code == 2 and f"malformed YAML in {recipe} at line 3" in stderr
    assert files_under(tmp_path / "out") == []


def test_missing_data_names_the_files(capsys, tmp_path):
    code, _, stderr = hem(capsys, "classify", "--dataset", "mnist", "--data-root", str(tmp_path / "empty"),
                          "--set", "dataset.download=false", "--out", str(tmp_path / "out"))
    assert code == 2 and "train split missing in" in stderr and "train-images-idx3-ubyte" in stderr
    assert files_under(tmp_path / "out") == []


def test_incomplete_shared_mnist(capsys, tmp_path):
    root = needs_shared("MNIST", "raw").parents[1]
    code, _, stderr = hem(capsys, "classify", "--dataset", "mnist", "--data-root", str(root),
                          "--set", "dataset.download=false", "--out", str(tmp_path / "out"))
    assert code == 2 and "train split missing" in stderr


def test_unwritable_out(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = hem(capsys, "classify", *FAST, "--out", str(blocker / "results"))
    assert code == 2 and "cannot write results under" in stderr
    assert blocker.read_text() == "x"


def test_existing_result_is_kept(capsys, tmp_path):
    out = tmp_path / "out"
    assert hem(capsys, "classify", *FAST, "--out", str(out))[0] == 0
    [result] = out.rglob("*.json")
    before = result.read_text()
    code, _, stderr = hem(capsys, "classify", *FAST, "--out", str(out))
    assert code == 2 and "already exists" in stderr and result.read_text() == before
    assert hem(capsys, "classify", *FAST, "--out", str(out), "--overwrite")[0] == 0
    assert json.loads(result.read_text())["created"]


def test_report_bad_format(capsys, tmp_path):
    code, _, stderr = hem(capsys, "report", str(tmp_path), "--format", "xml")
    assert code == 2 and "github" in stderr and "latex" in stderr


def test_losses_lists_every_loss(capsys):
    from hemcli.losses import LOSSES
    code, stdout, _ = hem(capsys, "losses")
    assert code == 0
    assert all(f"| {name} " in stdout for name in LOSSES)
    assert "M=2000" in stdout and "margin=null" in stdout
    assert "beta=0.00147911" in stdout  # 10 ** -2.83, as a recipe would spell it


def test_help_imports_nothing_heavy():
    probe = ("import sys; from hemcli.cli import main; code = main(['--help']); "
             "heavy = [m for m in ('torch', 'avalanche', 'segmentation_models_pytorch', 'torchattacks') "
             "if m in sys.modules]; print(code, heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("0 []")
    assert "classify" in out and "report" in out
