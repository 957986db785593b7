"""`hem sweep` end to end: the acceptance grid on every backend, a kill -9 and a rerun, failures, bad input.

One uninterrupted local sweep (CPU, --deterministic) is the reference every other way of running the
same grid must reproduce file for file.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scipy import stats

from hemcli import cli
from hemcli.runs.sweep.backends import BackendOptions
from hemcli.runs.sweep.backends.on_slurm import slurm_minutes, slurm_parameters

# One CPU thread per run on every backend: a different thread count sums in another order.
GRID = ["classify", "--loss", "ce,hem", "--seed", "0-2", "--set", "loss.params.M=500,2000", "--epochs", "3",
        "--deterministic", "--cpus-per-run", "1"]
# Seed 0 of GRID: every condition once (three runs), where a test needs a sweep but not the whole grid
SEED_0 = [*GRID[:GRID.index("--seed")], "--seed", "0", *GRID[GRID.index("--seed") + 2:]]
VOLATILE = ("created", "timings", "environment")


def hem(*args, timeout=600, **kwargs):
    return subprocess.run([sys.executable, "-m", "hemcli", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def files(out: Path) -> list[str]:
    """Every file a sweep leaves, but the Slurm logs (job ids differ from run to run)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "slurm-logs" not in p.parts)


def stable(path: Path) -> dict:
    """A result without what differs between two identical runs: clock times and the machine."""
    result = json.loads(path.read_text())
    for key in VOLATILE:
        result.pop(key)
    result["history"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in result["history"]]
    return result


def assert_same_sweep(out: Path, reference: Path, part: bool = False):
    """The same files with the same results; ``part``: ``out`` holds a part of the reference's grid."""
    assert set(files(out)) <= set(files(reference)) if part else files(out) == files(reference)
    for name in files(out):
        if name.endswith(".json"):
            assert stable(out / name) == stable(reference / name), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    done = hem("sweep", *GRID, "--jobs", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


pytestmark = pytest.mark.slow


def test_the_acceptance_grid_writes_nine_results_and_compares_each_hem_with_ce(reference):
    out, done = reference
    results = sorted(out.rglob("seed*.json"))
    assert len(results) == 9
    by_loss = {}
    for path in results:
        result = json.loads(path.read_text())
        by_loss.setdefault((result["recipe"]["loss"]["name"], result["recipe"]["loss"]["params"].get("M")),
                           []).append(result["metrics"]["clean_accuracy"])
    assert sorted(by_loss, key=str) == [("ce", None), ("hem", 2000), ("hem", 500)]
    assert "[9/9]" in done.stderr and "9 trained, 0 already finished, 0 failed" in done.stderr
    assert done.stdout.lstrip().startswith("| task")  # the report comes last, on stdout
    rows = json.loads(hem("report", str(out), "--format", "json").stdout)
    ce = by_loss[("ce", None)]
    for row in rows:
        if row["loss"] == "hem":
            hem_values = by_loss[("hem", int(row["M"]))]
            summary = row["metrics"]["clean_accuracy"]
            assert row["baseline"] == "matched"
            assert summary["delta"] == pytest.approx(sum(hem_values) / 3 - sum(ce) / 3)
            assert summary["p"] == pytest.approx(stats.ttest_ind(hem_values, ce).pvalue)


def test_a_rerun_skips_every_finished_run(reference, tmp_path):
    out, _ = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {name: (copy / name).read_bytes() for name in files(copy)}
    again = hem("sweep", *GRID, "--out", str(copy))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("] skipped ") == 9 and "0 trained" in again.stderr
    assert again.stderr.count("  already finished") == 9  # each found finished, not "finished by another sweep"
    assert {name: (copy / name).read_bytes() for name in files(copy)} == before


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux: from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def assert_gone(pids: set[int], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived its sweep"


def interrupted_runs(out: Path) -> list[Path]:
    return [p for p in out.rglob("seed*.ckpt.pt") if not p.with_suffix("").with_suffix(".json").exists()]


def kill_mid_sweep(out: Path) -> None:
    """Start the sweep and SIGKILL it (only it) once a result is written and another run has a
    checkpoint but no result yet; its workers must die with it."""
    command = [sys.executable, "-m", "hemcli", "sweep", *SEED_0, "--jobs", "2", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    helpers = set()  # the fork server and the workers, known before the kill (then they are init's)
    while process.poll() is None and time.monotonic() < deadline and not (
            len(list(out.rglob("seed*.json"))) >= 1 and interrupted_runs(out)):
        helpers |= descendants(process.pid)
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert_gone(helpers)


def test_killed_with_sigkill_and_run_again_ends_with_the_same_files(reference, tmp_path):
    # A digits run lasts 0.3 s and a worker needs ~0.1 s to notice its sweep died, so the interrupted run
    # can still finish: then the kill came too late for this scenario, and it is played again.
    for attempt in range(5):
        out = tmp_path / f"killed{attempt}"
        kill_mid_sweep(out)
        finished = {p: p.read_bytes() for p in out.rglob("seed*.json")}
        resumable = interrupted_runs(out)
        if 1 <= len(finished) < 3 and resumable:
            break
    assert 1 <= len(finished) < 3 and resumable
    again = hem("sweep", *SEED_0, "--jobs", "2", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("] skipped ") == len(finished)  # not retrained ...
    assert all(path.read_bytes() == content for path, content in finished.items())  # ... and untouched
    assert again.stderr.count("(resumed)") >= 1  # an interrupted run went on from its checkpoint
    assert len(list(out.rglob("seed0.json"))) == 3
    assert_same_sweep(out, reference[0], part=True)


# Ray's local instance, started inside a pytest-xdist worker, waited minutes for its workers (23 s
# alone, 314 s in a worker, 29 s of CPU): make test runs it after the parallel part ("serial").
@pytest.mark.parametrize("backend", [pytest.param(["--backend", "ray"], id="ray", marks=pytest.mark.serial),
                                     pytest.param(["--backend", "slurm", "--slurm-cluster", "local"], id="slurm-local")])
def test_other_backends_write_the_same_files(reference, tmp_path, backend):
    out = tmp_path / "out"
    done = hem("sweep", *SEED_0, *backend, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(list(out.rglob("seed0.json"))) == 3
    assert_same_sweep(out, reference[0], part=True)
    reference_report = hem("report", *(str(reference[0] / name) for name in files(out) if name.endswith(".json")))
    assert done.stdout == reference_report.stdout.replace(str(reference[0]), str(out))  # the same report


def test_a_failed_run_does_not_stop_the_others_and_is_listed_with_its_rerun_command(tmp_path):
    out = tmp_path / "out"
    done = hem("sweep", "classify", "--loss", "ce", "--lr", "1e30,0.001", "--epochs", "1", "--out", str(out))
    assert done.returncode == 1
    assert "1 of 2 runs failed:" in done.stderr and "loss became nan in epoch 1" in done.stderr
    rerun = next(line for line in done.stderr.splitlines() if "rerun:" in line).split("rerun: ")[1]
    assert rerun.startswith("hem classify --out") and "--lr 1e+30" in rerun
    assert len(list(out.rglob("seed*.json"))) == 1
    assert done.stderr.rstrip().endswith("hem: error: 1 of 2 runs failed (listed above)")
    assert "| ce" in done.stdout  # the report of what finished is still printed


def test_dry_run_prints_one_command_per_run_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    done = hem("sweep", *GRID, "--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 9 and all(line.startswith(f"hem classify --out {out} ") for line in lines)
    assert sum("--loss ce" in line for line in lines) == 3 and sum("loss.params.M=500" in line for line in lines) == 3
    assert not out.exists()


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written


@pytest.mark.parametrize("args, message", [
    (["--set", "optim.lrr=0.1,0.2"], "unknown recipe key 'optim.lrr'"),
    (["--set", "loss.params.M="], "--set loss.params.M: an empty list of values"),
    (["--seed", "4-1"], "--seed: the range 4-1 runs backwards; write 1-4"),
    (["--loss", "ce,hem", "--set", "loss.params.gamma=1,2"], "loss parameter 'gamma' is taken by no loss"),
    (["--backend", "dask"], "unknown backend 'dask'; valid choices: local, ray, slurm"),
    (["--backend", "slurm", "--slurm-time", "soon"], "--slurm-time must be minutes or [D-]HH:MM:SS"),
    (["--backend", "slurm", "--slurm-cluster", "pbs"], "unknown --slurm-cluster 'pbs'"),
])
def test_bad_sweeps_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["sweep", "classify", "--epochs", "1", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hem: error: ") and message in err
    assert not out.exists()


def test_unknown_task(capsys):
    assert cli.main(["sweep", "dance"]) == 2
    assert "unknown task 'dance'; valid choices: classify" in capsys.readouterr().err


@pytest.mark.parametrize("backend, extra", [("ray", "ray"), ("slurm", "slurm")])
def test_a_missing_backend_names_the_extra_to_install(tmp_path, capsys, monkeypatch, backend, extra):
    monkeypatch.setitem(sys.modules, {"ray": "ray", "slurm": "submitit"}[backend], None)  # import fails
    out = tmp_path / "out"
    assert cli.main(["sweep", "classify", "--out", str(out), "--backend", backend]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'hemcli[{extra}]'" in err
    assert not out.exists()


# ---------------------------------------------------------------- Slurm's job array


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30:00", 90), ("45:30", 46), ("2-00:00:00", 2880),
                                           ("1-1", 1500), (None, 1440)])
def test_slurm_time(text, minutes):
    assert slurm_minutes(text) == minutes


def test_the_sbatch_script_of_a_sweep(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from submitit.slurm.slurm import _make_sbatch_string

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    options = BackendOptions(cpus_per_run=4, gpus_per_run=1, slurm_partition="gpu", slurm_time="2:00:00",
                             slurm_array_parallelism=3)
    executor = submitit.SlurmExecutor(folder=tmp_path / "slurm-logs" / "%j")
    executor.update_parameters(**slurm_parameters(options, 9))  # what `hem sweep --backend slurm` passes
    script = _make_sbatch_string(command="true", folder=executor.folder, map_count=9, **executor.parameters)
    lines = set(script.splitlines())
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --time=120", "#SBATCH --gpus-per-node=1",
                     "#SBATCH --cpus-per-task=4", "#SBATCH --array=0-8%3", "#SBATCH --job-name=hem-sweep",
                     "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
                     f"#SBATCH --output={tmp_path}/slurm-logs/%A_%a/%A_%a_0_log.out"):
        assert expected in lines, (expected, script)


def test_local_workers_split_the_cores(monkeypatch):
    from hemcli.runs.sweep.backends import local as backends

    monkeypatch.setattr(backends, "cpu_count", lambda: 16)
    monkeypatch.setattr(backends, "_cuda_count", lambda: 0)
    assert [backends.LocalBackend(BackendOptions(jobs=jobs)).threads for jobs in (1, 2, 3, 32)] == [16, 8, 5, 1]
    assert backends.LocalBackend(BackendOptions(jobs=2, cpus_per_run=3)).threads == 3
    monkeypatch.setattr(backends, "_cuda_count", lambda: 4)
    assert backends.LocalBackend(BackendOptions()).jobs == 4  # one worker per GPU


def test_remote_workers_get_absolute_folders(tmp_path, monkeypatch):
    from hemcli.runs.spec import plan_run
    from hemcli.runs.sweep.backends import anchored

    monkeypatch.chdir(tmp_path)
    spec = plan_run("classify", None, {"dataset.root": "data"}, [], "results")
    remote = anchored(spec)
    assert remote.path == tmp_path / spec.path and remote.cfg["dataset"]["root"] == str(tmp_path / "data")
    assert (remote.name, remote.condition, remote.command) == (spec.name, spec.condition, spec.command)
    assert spec.cfg["dataset"]["root"] == "data"  # the sweep's own record is left as it was
