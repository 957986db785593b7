"""The command line in-process: results kept unless --overwrite, listings, start-up, the safety net.
(Bad input, case by case: test_bad_input.py; separate processes: test_cli_processes.py.)"""
import json
import subprocess
import sys

import pytest

from conftest import planned_result
from hemcli.cli import main

FAST = ["--epochs", "1", "--quiet"]


def hem(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_same_run_twice_is_done_once_and_kept_byte_for_byte(capsys, tmp_path):
    """Issue 27: a pipeline line can be run again; only --overwrite trains again."""
    out = tmp_path / "out"
    code, first, _ = hem(capsys, "classify", *FAST, "--out", str(out))
    assert code == 0
    [result] = out.rglob("*.json")
    before = result.read_bytes()
    code, again, stderr = hem(capsys, "classify", *FAST, "--out", str(out))
    assert (code, again) == (0, first) and result.read_bytes() == before
    assert stderr == f"hem: already done: {first.strip()} (--overwrite trains it again)\n"
    code, _, stderr = hem(capsys, "classify", *FAST, "--out", str(out), "--eval", "clean,calibration")
    assert code == 0 and stderr.endswith(f"its evaluations lack calibration: hem evaluate {first.strip()} "
                                         "--eval calibration\n") and result.read_bytes() == before
    assert hem(capsys, "classify", *FAST, "--out", str(out), "--overwrite")[0] == 0
    assert result.read_bytes() != before and json.loads(result.read_text())["created"]


def test_an_unfinished_run_needs_resume_or_overwrite(capsys, tmp_path):
    out = tmp_path / "out"
    assert hem(capsys, "classify", "--epochs", "2", "--quiet", "--out", str(out))[0] == 0
    [result] = out.rglob("seed0.json")
    result.unlink()  # as a run killed after its last checkpoint leaves it
    code, stdout, stderr = hem(capsys, "classify", "--epochs", "2", "--quiet", "--out", str(out))
    assert (code, stdout) == (2, "") and stderr == (
        f"hem: error: an unfinished run of this condition and seed has a checkpoint at "
        f"{result.with_suffix('.ckpt.pt')}: pass --resume to continue it, or --overwrite to start again\n")
    assert hem(capsys, "classify", "--epochs", "2", "--quiet", "--out", str(out), "--resume")[0] == 0


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


def test_a_bug_ends_in_one_line_and_exit_1(capsys, monkeypatch):
    import hemcli.report

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(hemcli.report, "report", broken)
    monkeypatch.delenv("HEM_DEBUG", raising=False)
    code, stdout, stderr = hem(capsys, "report", ".")
    assert (code, stdout) == (1, "")
    assert stderr == ("hem: internal error: ZeroDivisionError: division by zero second line "
                      "(HEM_DEBUG=1 shows the traceback)\n")
    monkeypatch.setenv("HEM_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["report", "."])


def test_ctrl_c_outside_a_run_says_interrupted(capsys, monkeypatch):
    import hemcli.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hemcli.report, "report", interrupted)
    assert hem(capsys, "report", ".") == (130, "", "hem: interrupted\n")


def test_overwrite_replaces_the_result_and_starts_a_fresh_checkpoint(capsys, tmp_path):
    import torch

    out = tmp_path / "out"
    args = ["classify", "--arch", "mlp", "--epochs", "2", "--quiet", "--out", str(out)]
    assert hem(capsys, *args)[0] == 0
    [checkpoint] = out.rglob("*.ckpt.pt")
    state = torch.load(checkpoint, weights_only=True)
    state["epoch"], state["history"] = 1, state["history"][:1]
    state["history"][0]["train_loss"] = 123.0  # a mark that only a resumed run would carry on
    torch.save(state, checkpoint)
    assert hem(capsys, *args, "--overwrite")[0] == 0
    state = torch.load(checkpoint, weights_only=True)
    assert state["epoch"] == 2 and state["history"][0]["train_loss"] != 123.0
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["seed0.ckpt.pt", "seed0.json"]


def test_numbers_on_the_command_line_and_in_a_recipe_read_as_meant(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim: {lr: 1e-3}\nepochs: 01\n")
    code, stdout, _ = hem(capsys, "classify", "-r", str(recipe), "--seed", "010", "--arch", "mlp", "--quiet",
                          "--out", str(tmp_path / "out"))
    assert code == 0 and stdout.strip().endswith("/seed10.json") and "/classify/digits/mlp/hem/" in stdout
    recipe_used = json.loads(open(stdout.strip()).read())["recipe"]
    assert (recipe_used["seed"], recipe_used["epochs"], recipe_used["optim"]["lr"]) == (10, 1, 0.001)
    code, stdout, _ = hem(capsys, "classify", "--lr", "2e-3", "--epochs", "1", "--arch", "mlp", "--quiet",
                          "--out", str(tmp_path / "out2"))
    assert json.loads(open(stdout.strip()).read())["recipe"]["optim"]["lr"] == 0.002


def test_a_full_disk_while_checkpointing_is_one_line(capsys, tmp_path, monkeypatch):
    import torch

    def disk_full(obj, handle, *args, **kwargs):
        handle.write(b"x" * 65536)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    out = tmp_path / "out"
    code, stdout, stderr = hem(capsys, "classify", "--arch", "mlp", "--epochs", "2", "--quiet", "--out", str(out))
    checkpoint = planned_result(out, {"model.arch": "mlp", "epochs": 2}).with_suffix(".ckpt.pt")
    assert (code, stdout) == (2, "")
    assert stderr == f"hem: error: no space left on device writing checkpoint {checkpoint}\n"
    assert not out.exists()  # the temporary file is gone, and with it the folders the run made
