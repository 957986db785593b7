"""Faults from the operating system and from other processes (issue 25): a write the system refuses
(disk full, quota, read-only, permission) is named in one line with the previous checkpoint kept and
no partial file; a closed stdout is exit 141, never "internal error"; SIGTERM ends a run as Ctrl-C
does (exit 143, lock released, resume hint); whatever a library prints goes to stderr; a FIFO is
never read as a result or an attack state; two sweeps on one folder share its runs.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import planned_result
from hemcli.cli import main
from test_bad_input import PlantedPickle, snapshot

HEM = [sys.executable, "-m", "hemcli"]


def hem(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


class RefusingDisk:
    """A file handle whose writes fail with ``code`` once ``allowed`` bytes went through, the way a
    disk fills up in the middle of a checkpoint; torch's zip writer then raises its own RuntimeError."""

    def __init__(self, handle, code: int, allowed: int = 4096):
        self.handle, self.code, self.left = handle, code, allowed

    def write(self, data) -> int:
        if len(data) > self.left:
            raise OSError(self.code, os.strerror(self.code))
        self.left -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def refuse_writes(monkeypatch, code: int, after_writes: int = 0) -> None:
    """Every atomic write after the first ``after_writes`` ones meets a refusing disk."""
    import hemcli.fileio

    original, count = hemcli.fileio.RecordingWriter.__init__, {"n": 0}

    def init(self, handle):
        count["n"] += 1
        original(self, RefusingDisk(handle, code) if count["n"] > after_writes else handle)

    monkeypatch.setattr(hemcli.fileio.RecordingWriter, "__init__", init)


REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}
TASK_ARGS = {"classify": ["--arch", "mlp"], "longtail": ["--arch", "mlp"],
             "segment": ["--set", "dataset.limit=4", "--batch-size", "2"],
             "continual": ["--set", "benchmark.experiences=2"]}


@pytest.mark.parametrize("task", TASK_ARGS)
@pytest.mark.parametrize("code", REASONS, ids=lambda code: errno.errorcode[code])
def test_a_refused_checkpoint_write_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, task, code):
    monkeypatch.chdir(tmp_path)
    refuse_writes(monkeypatch, code)
    exit_code, stdout, stderr = hem(task, "--epochs", "1", "--quiet", "--out", "out", *TASK_ARGS[task])
    assert (exit_code, stdout) == (2, "")
    assert stderr.count("\n") == 1 and stderr.startswith(f"hem: error: {REASONS[code]} writing checkpoint out/"), stderr
    assert "internal error" not in stderr and stderr.rstrip().endswith(".ckpt.pt")
    assert not (tmp_path / "out").exists()  # no partial file, and the folders the run made are gone


def test_a_full_disk_at_the_second_checkpoint_keeps_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refuse_writes(monkeypatch, errno.ENOSPC, after_writes=1)
    code, stdout, stderr = hem("classify", "--arch", "mlp", "--epochs", "3", "--quiet", "--out", "out")
    checkpoint = planned_result("out", {"model.arch": "mlp", "epochs": 3}).with_suffix(".ckpt.pt")
    assert (code, stdout, stderr) == (2, "", f"hem: error: no space left on device writing checkpoint {checkpoint}\n")
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["seed0.ckpt.pt"]  # no temporary file
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = hem("classify", "--arch", "mlp", "--epochs", "3", "--quiet", "--out", "out", "--resume")
    assert code == 0 and json.loads(Path(stdout.strip()).read_text())["history"][0]["epoch"] == 1


def test_a_full_disk_in_a_sweep_fails_the_run_by_name(tmp_path, monkeypatch, capsys):
    """A sweep's run meets the full disk in its worker: the run fails with the reason, not as a bug."""
    from hemcli.runs.execute import sweep_one
    from hemcli.runs.spec import plan_run

    refuse_writes(monkeypatch, errno.ENOSPC)
    outcome = sweep_one(plan_run("classify", None, {"model.arch": "mlp", "epochs": 1}, [], tmp_path / "out"))
    assert outcome["status"] == "failed" and outcome["error"].startswith("no space left on device writing checkpoint")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs (needs root and mount; skipped elsewhere): a real disk that fills up."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_really_full_disk_is_named(small_tmpfs, tmp_path):
    """digits' MLP checkpoint (~1 MB) does not fit in 64 KiB: exit 2, one line, no partial file."""
    done = subprocess.run([*HEM, "classify", "--arch", "mlp", "--epochs", "2", "--quiet", "--out",
                           str(small_tmpfs / "out")], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("hem: error: no space left on device writing checkpoint ")
    assert done.stderr.count("\n") == 1 and not list(small_tmpfs.rglob("*"))


@pytest.mark.parametrize("argv", [["losses"], ["report", "RESULTS"], ["classify", "--arch", "mlp", "--epochs", "1",
                                                                      "--quiet", "--out", "out"]])
def test_a_closed_stdout_is_exit_141_without_a_word(tmp_path, argv):
    results = tmp_path / "results"
    results.mkdir()
    (results / "r.json").write_text(json.dumps({"schema_version": 1, "task": "classify", "status": "complete",
                                                "recipe": {}, "metrics": {"clean_accuracy": 90}}))
    argv = [str(results) if arg == "RESULTS" else arg for arg in argv]
    done = subprocess.run(" ".join([*HEM, *argv]) + " >&-", shell=True, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stderr) == (141, "")
    if argv[0] == "classify":  # the run itself is done and kept: only its path could not be printed
        assert (tmp_path / planned_result("out", {"model.arch": "mlp", "epochs": 1})).is_file()


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="no /proc here")
def test_a_closed_stdout_is_held_by_dev_null_so_no_file_takes_its_descriptor(tmp_path):
    """Started with fd 1 closed, the next file opened would get descriptor 1 and anything written to
    stdout would land in it (a checkpoint): hem's entry point parks /dev/null there first."""
    probe = ("import os, sys; import hemcli.cli as cli; "
             "cli.main = lambda: os.write(2, os.readlink('/proc/self/fd/1').encode()) and 0; cli.entry()")
    done = subprocess.run(f"{sys.executable} -c \"{probe}\" >&-", shell=True, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, os.devnull)


def test_sigterm_ends_a_run_like_ctrl_c(tmp_path):
    args = ["classify", "--epochs", "5000", "--arch", "mlp", "--out", "out"]
    run = subprocess.Popen([*HEM, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in run.stderr:
        if "epoch 2/5000" in line:  # the checkpoint of epoch 1 exists
            break
    run.send_signal(signal.SIGTERM)
    try:
        stdout, rest = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        raise AssertionError("SIGTERM did not stop the run") from None
    result = planned_result("out", {"epochs": 5000, "model.arch": "mlp"})
    checkpoint = result.with_suffix(".ckpt.pt")
    assert (run.returncode, stdout) == (143, "")
    assert rest.splitlines()[-1] == f"hem: terminated; continue with --resume (checkpoint {checkpoint})"
    assert sorted(p.name for p in (tmp_path / result.parent).iterdir()) == ["seed0.ckpt.pt"]  # lock released


def test_what_a_library_prints_during_a_run_goes_to_stderr(tmp_path, monkeypatch):
    import hemcli.engine.loop

    original = hemcli.engine.loop.train_epoch

    def chatty(*args, **kwargs):
        print("Mapping cpu to cpu")  # what Avalanche's checkpoint loader printed
        return original(*args, **kwargs)

    monkeypatch.setattr(hemcli.engine.loop, "train_epoch", chatty)
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = hem("classify", "--arch", "mlp", "--epochs", "2", "--quiet", "--out", "out")
    assert code == 0 and stdout == f"{planned_result('out', {'model.arch': 'mlp', 'epochs': 2})}\n"
    assert stderr.count("Mapping cpu to cpu") == 2


def test_what_a_library_prints_in_a_sweep_worker_goes_to_stderr(tmp_path, monkeypatch, capsys):
    import hemcli.engine.loop
    from hemcli.runs.execute import sweep_one
    from hemcli.runs.spec import plan_run

    original = hemcli.engine.loop.train_epoch
    monkeypatch.setattr(hemcli.engine.loop, "train_epoch",
                        lambda *a, **k: (print("Mapping cpu to cpu"), original(*a, **k))[1])
    assert sweep_one(plan_run("classify", None, {"model.arch": "mlp", "epochs": 1}, [], tmp_path))["status"] == "done"
    out, err = capsys.readouterr()
    assert out == "" and "Mapping cpu to cpu" in err


def test_a_fifo_among_results_is_skipped_by_report_and_refused_by_evaluate(tmp_path):
    good = tmp_path / "results" / "good.json"
    good.parent.mkdir()
    good.write_text(json.dumps({"schema_version": 1, "task": "classify", "status": "complete",
                                "recipe": {"loss": {"name": "ce"}}, "metrics": {"clean_accuracy": 90}}))
    os.mkfifo(tmp_path / "results" / "pipe.json")
    report = subprocess.run([*HEM, "report", "results"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and "90.00" in report.stdout
    assert report.stderr == "skipping results/pipe.json: a FIFO, not a regular file\n"
    before = snapshot(tmp_path)
    evaluate = subprocess.run([*HEM, "evaluate", "results"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (evaluate.returncode, evaluate.stdout) == (2, "")
    assert evaluate.stderr == "hem: error: results/pipe.json is a FIFO, not a regular file; a result is a JSON file\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content", ["planted", "fifo"])
def test_an_attack_state_that_is_not_one_builds_nothing_and_blocks_nothing(tmp_path, capsys, content):
    from hemcli.evaluation.attack import load_state

    path = tmp_path / ".seed0.attack-linf.pt"
    if content == "fifo":
        os.mkfifo(path)
    else:
        torch.save({"batches": 1, "logits": PlantedPickle(tmp_path / "MARKER")}, path)
    state = load_state(path, "settings", n_classes=10, batch_size=4, total=8)
    assert state["batches"] == 0 and not (tmp_path / "MARKER").exists()
    assert "attacking from the start" in capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished digits run (result and checkpoint), copied by each test that measures it again."""
    out = tmp_path_factory.mktemp("finished")
    code, stdout, stderr = hem("classify", "--arch", "mlp", "--epochs", "1", "--quiet", "--out", str(out / "r"))
    assert code == 0, stderr
    return Path(stdout.strip())


MEASURE_CASES = [
    ("planted checkpoint", ["evaluate", "RESULT", "--eval", "calibration"], "not a hem checkpoint", "planted"),
    ("planted checkpoint, attack", ["attack", "RESULT"], "not a hem checkpoint", "planted"),
    ("a FIFO as the checkpoint", ["evaluate", "RESULT"], "has no checkpoint beside it", "fifo"),
    ("--set eval=[]", ["evaluate", "RESULT", "--set", "eval=[]"], "recipe key 'eval' must name at least one of", None),
    ("--eval ood, no scores", ["evaluate", "RESULT", "--eval", "ood", "--set", "evaluation.scores=[]"],
     "recipe key 'evaluation.scores' must name at least one of msp, mls, energy, gen, got []", None),
    ("attack, no norms", ["attack", "RESULT", "--set", "evaluation.attack_norms=[]"],
     "recipe key 'evaluation.attack_norms' must name at least one of linf, l2, got []", None),
    ("--scores []", ["attack", "RESULT", "--scores", "[]"], "recipe key 'evaluation.scores' must name", None),
]


@pytest.mark.parametrize("argv, message, checkpoint", [pytest.param(*case[1:], id=case[0]) for case in MEASURE_CASES])
def test_measuring_again_refuses_before_changing_anything(tmp_path, finished_run, argv, message, checkpoint):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(finished_run.parent, folder)
    result = folder / finished_run.name
    if checkpoint is not None:
        target = result.with_suffix(".ckpt.pt")
        target.unlink()
        if checkpoint == "fifo":
            os.mkfifo(target)
        else:
            torch.save({"format": "hem-checkpoint/1", "model": PlantedPickle(tmp_path / "MARKER")}, target)
    before = snapshot(tmp_path)
    code, stdout, stderr = hem(*[str(result) if arg == "RESULT" else arg for arg in argv])
    assert (code, stdout) == (2, "") and stderr.count("\n") == 1 and stderr.startswith("hem: error: ")
    assert message in stderr and "Traceback" not in stderr
    assert snapshot(tmp_path) == before and not (tmp_path / "MARKER").exists()


class InlineBackend:
    """Runs each run in this process, one after the other."""
    slots, describe = 1, "this process"

    def run(self, specs):
        from hemcli.runs.execute import sweep_one
        for spec in specs:
            yield spec, sweep_one(spec)


@pytest.mark.parametrize("other_finishes", [True, False])
def test_a_run_another_sweep_holds_is_waited_for(tmp_path, other_finishes):
    """The other holder finishes the run: counted as done there; it stops without a result: run here."""
    import threading

    from hemcli.runs import sweep as sweeps
    from hemcli.runs.lock import RunLock

    specs = sweeps.plan("classify", None, {"arch": "mlp", "epochs": "1", "seed": "0-1"}, [], tmp_path / "out")
    held = RunLock(specs[1].path).__enter__()

    def other_sweep():
        time.sleep(1.5)  # long after the sweep met the run taken
        if other_finishes:
            specs[1].path.write_text(specs[0].path.read_text())
        held.__exit__(None, None, None)

    threading.Thread(target=other_sweep).start()
    outcomes = dict((spec.seed, outcome) for spec, outcome in sweeps.run(specs, InlineBackend(), quiet=True,
                                                                           poll_seconds=0.1))
    assert outcomes[0]["status"] == "done"
    assert (outcomes[1]["status"], outcomes[1].get("elsewhere")) == (("skipped", True) if other_finishes
                                                                      else ("done", None))
    assert specs[1].path.is_file()


def test_two_sweeps_on_one_folder_share_the_runs_and_both_succeed(tmp_path):
    args = ["sweep", "classify", "--arch", "mlp", "--epochs", "2", "--seed", "0-2", "--jobs", "1", "--out", "out"]
    first = subprocess.Popen([*HEM, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the second starts while the first is planning or training its first run
    second = subprocess.run([*HEM, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    assert "failed" not in first_err.replace("0 failed", "") and "failed" not in second.stderr.replace("0 failed", "")
    results = sorted(p.name for p in (tmp_path / "out").rglob("seed*.json"))
    assert results == [f"seed{s}.json" for s in range(3)]


@pytest.mark.parametrize("argv", [["classify", "-r", "bomb.yaml"], ["sweep", "classify", "-r", "bomb.yaml"],
                                  ["continual", "--set", "strategy.params=BOMB"]])
def test_an_alias_bomb_is_refused_before_torch_is_imported(tmp_path, argv):
    """torch alone costs ~0.6 GB and seconds to import: the refusal comes before, in a small process."""
    from test_bad_input import alias_bomb

    (tmp_path / "bomb.yaml").write_text("loss:\n  params:\n" + "".join(f"    {line}\n" for line in
                                                                        alias_bomb().splitlines()))
    argv = [arg.replace("BOMB", alias_bomb(flow=True)) for arg in argv]
    probe = (f"import sys; from hemcli.cli import main; code = main({argv!r}); "
             "print(code, 'torch' in sys.modules, 'avalanche' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["2", "False", "False"] and "aliases expand to more than" in done.stderr
