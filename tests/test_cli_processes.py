"""The command line as separate processes: concurrent runs on one result path, Ctrl-C, and stdout
that cannot be written (a full device, a closed pipe). Slower than the in-process tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import planned_result

HEM = [sys.executable, "-m", "hemcli"]
pytestmark = pytest.mark.slow


def _ctrl_c_as_usual() -> None:
    # A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and a child inherits
    # that; these tests need the Ctrl-C a person at a terminal would give.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, cwd):
    return subprocess.Popen([*HEM, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_usual)


def wait_for_line(process, text: str) -> list[str]:
    """Read the process's stderr until a line contains ``text``; returns the lines read."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never appeared; stderr was {''.join(lines)!r}")


def test_a_second_run_on_the_same_path_is_refused_and_ctrl_c_says_how_to_resume(tmp_path):
    # 5000 epochs: still running when Ctrl-C comes, however fast the machine.
    args = ["classify", "--epochs", "5000", "--arch", "mlp", "--out", "out"]
    first = start(*args, cwd=tmp_path)
    wait_for_line(first, "epoch 2/5000")  # holds the lock, and the checkpoint of epoch 1 exists
    second = subprocess.run([*HEM, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lock = planned_result("out", {"epochs": 5000, "model.arch": "mlp"}).with_name(".seed0.json.lock")
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr == (f"hem: error: another hem run is writing {lock.parent / 'seed0.json'} (its lock "
                             f"{lock} is held); wait for it, or choose another --seed or --out\n")
    first.send_signal(signal.SIGINT)
    try:
        _, rest = first.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        first.kill()
        raise AssertionError("Ctrl-C did not stop the run") from None
    assert first.returncode == 130
    checkpoint = lock.parent / "seed0.ckpt.pt"
    assert rest.splitlines()[-1] == f"hem: interrupted; continue with --resume (checkpoint {checkpoint})"
    assert sorted(p.name for p in (tmp_path / lock.parent).iterdir()) == ["seed0.ckpt.pt"]


def test_concurrent_runs_into_one_folder(tmp_path):
    """Seeds 0-3 at once all finish; two more runs of seeds 0 and 1 find their path taken."""
    seeds = [0, 1, 2, 3, 0, 1]
    runs = [start("classify", "--epochs", "2", "--arch", "mlp", "--quiet", "--seed", str(seed), "--out", "out",
                  cwd=tmp_path) for seed in seeds]
    ended = [(run.wait(timeout=300), run.stdout.read(), run.stderr.read()) for run in runs]
    by_seed, folder = {}, planned_result("out", {"epochs": 2, "model.arch": "mlp"}).parent
    for seed, (code, out, err) in zip(seeds, ended):
        by_seed.setdefault(seed, []).append((code, out, err))
    for seed, outcomes in by_seed.items():
        assert sorted(code for code, _, _ in outcomes) == [0] + [2] * (len(outcomes) - 1), outcomes
        for code, out, err in outcomes:
            if code == 2:  # refused at the lock, or after the winner had already finished
                assert err.count("\n") == 1 and ("is held" in err or "result already exists" in err), err
            else:
                assert out == f"{folder / f'seed{seed}.json'}\n" and err == ""
    folder = tmp_path / folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"seed{s}.json" for s in range(4)] + [f"seed{s}.ckpt.pt" for s in range(4)])
    assert all(json.loads((folder / f"seed{s}.json").read_text())["seed"] == s for s in range(4))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_report_to_a_full_device(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"schema_version": 1, "task": "classify", "status": "complete",
                                                 "recipe": {}, "metrics": {"clean_accuracy": 90}}))
    with open("/dev/full", "w") as full:
        done = subprocess.run([*HEM, "report", str(tmp_path)], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2
    assert done.stderr == "hem: error: cannot write the output: No space left on device\n"


def test_report_into_a_closed_pipe_is_quiet(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"schema_version": 1, "task": "classify", "status": "complete",
                                                 "recipe": {}, "metrics": {"clean_accuracy": 90}}))
    process = subprocess.Popen([*HEM, "report", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # as `hem report ... | head -0` would
    assert process.wait(timeout=60) == 141 and process.stderr.read() == b""
