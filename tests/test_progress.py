"""Progress in log files (issue 28, item 4): where stderr is not a terminal, a whole line at most every
``--progress-every`` seconds with the batch, images/s and ETA, for training epochs, corruption sets
and attacks; on a terminal the live counter of before; ``--quiet`` silences it."""
from __future__ import annotations

import io
import json
import re
import sys

import pytest

from hemcli import progress
from hemcli.cli import main
from hemcli.progress import Counter, Progress


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def interval_restored(monkeypatch):
    """--progress-every sets a process-wide interval: each test starts at the default and leaves it there."""
    monkeypatch.setattr(progress, "_log_every", [progress.DEFAULT_EVERY])


def test_a_log_gets_a_batch_line_every_interval_with_rate_and_eta():
    clock, log = FakeClock(), io.StringIO()
    bar = Progress(3, stream=log, every=10, now=clock)
    bar.start_epoch(1)
    for index in range(1, 21):  # one second and 32 images a batch
        clock.t = float(index)
        bar.batch(1, index, 20, 32)
    bar.epoch(1, 20.0, loss=0.5)
    bar.start_epoch(2)
    for index in range(1, 21):  # twice as fast now
        clock.t = 20.0 + index / 2
        bar.batch(2, index, 20, 32)
    assert log.getvalue().splitlines() == [
        # at 10 s: 320 images in 10 s; 10 batches of 1 s left, then 2 epochs of 20 batches of 1 s
        "epoch 1/3 batch 10/20  32 images/s  ETA 0:00:50",
        "epoch 1/3  loss 0.5  20.00s  ETA 0:00:40",
        # 10.5 s after the last line: 32 images in 0.5 s; 19 batches of 0.5 s, then epoch 3 as long as epoch 1
        "epoch 2/3 batch 1/20  64 images/s  ETA 0:00:30"]  # 29.5 s, rounded to even


def test_the_first_line_comes_one_interval_into_the_training():
    clock, log = FakeClock(), io.StringIO()
    bar = Progress(1, stream=log, every=5, now=clock)
    bar.start_epoch(1)
    for index, t in enumerate([1.0, 4.9, 5.0, 7.0, 10.5, 11.0], 1):
        clock.t = t
        bar.batch(1, index, 100, 8)
    shown = [re.match(r"epoch 1/1 batch (\d+)/100", line).group(1) for line in log.getvalue().splitlines()]
    assert shown == ["3", "5"]  # at 5.0 s and at 10.5 s (>= 5 s after the last line), nothing else


def test_zero_means_a_line_after_every_batch_but_the_last():
    log = io.StringIO()
    bar = Progress(1, stream=log, every=0, now=FakeClock())
    bar.start_epoch(1)
    for index in range(1, 5):
        bar.batch(1, index, 4, 1)
    assert [line.split("  ")[0] for line in log.getvalue().splitlines()] == [
        "epoch 1/1 batch 1/4", "epoch 1/1 batch 2/4", "epoch 1/1 batch 3/4"]


def test_a_terminal_keeps_the_live_counter_and_quiet_shows_nothing():
    clock, screen = FakeClock(), Terminal()
    bar = Progress(2, stream=screen, every=0, now=clock)
    bar.start_epoch(1)
    for index in range(1, 4):
        clock.t = index * 1.0
        bar.batch(1, index, 3, 32)
    assert screen.getvalue() == "\repoch 1/2 batch 1/3\repoch 1/2 batch 2/3\repoch 1/2 batch 3/3"
    log = io.StringIO()
    quiet = Progress(2, quiet=True, stream=log, every=0, now=clock)
    quiet.start_epoch(1)
    quiet.batch(1, 1, 3, 32)
    quiet.epoch(1, 1.0, loss=1.0)
    assert log.getvalue() == ""


def test_a_counter_gives_the_rate_and_eta_of_the_work_it_measured():
    clock, log = FakeClock(), io.StringIO()
    count = Counter("attack linf images", stream=log, every=10, now=clock)
    for t, done in [(2.0, 100), (3.0, 150), (12.0, 600), (13.0, 650), (20.0, 1000)]:
        clock.t = t
        count(done, 1000)
    assert log.getvalue().splitlines() == [
        "attack linf images 100/1000  50 images/s  0:00:02, ETA 0:00:18",  # first update: 100 in 2 s
        "attack linf images 600/1000  50 images/s  0:00:12, ETA 0:00:08",  # 10 s later; 3.0 and 13.0 skipped
        "attack linf images 1000/1000  50 images/s  0:00:20"]  # done: always shown


def test_a_counter_does_not_count_resumed_work_in_its_rate():
    clock, log = FakeClock(), io.StringIO()
    count = Counter("corruption sets", per_item=200, stream=log, every=0, now=clock)
    clock.t = 0.1
    count(5, 15)  # 5 sets cached: counted at once
    clock.t = 10.1
    count(7, 15)  # 2 sets of 200 images made in 10 s
    assert log.getvalue().splitlines() == ["corruption sets 5/15  0:00:00",
                                           "corruption sets 7/15  40 images/s  0:00:10, ETA 0:00:40"]


def run_with_stderr_in(path, argv: list[str]) -> tuple[int, str]:
    """``hem ...`` in this process with stderr redirected to a file, as in a batch job's log."""
    with open(path, "w") as log:
        saved, sys.stderr = sys.stderr, log
        try:
            code = main([str(arg) for arg in argv])
        finally:
            sys.stderr = saved
    return code, path.read_text()


TRAIN = ["classify", "--epochs", "1", "--batch-size", "20", "--set", "dataset.limit=400"]  # 20 batches


def slow_batches(monkeypatch, seconds: float) -> None:
    """Every training batch lasts at least ``seconds`` (the loss waits), however fast the machine."""
    import time

    import hemcli.losses

    real_build = hemcli.losses.build_loss

    def slowed(*args, **kwargs):
        inner = real_build(*args, **kwargs)

        def loss(logits, targets):
            time.sleep(seconds)
            return inner(logits, targets)
        return loss

    monkeypatch.setattr(hemcli.losses, "build_loss", slowed)


def test_a_training_logs_batch_lines_before_its_first_epoch_ends(tmp_path, monkeypatch):
    slow_batches(monkeypatch, 0.025)  # 20 batches: at least 0.5 s, a line due by batch 8 at 0.2 s
    code, log = run_with_stderr_in(tmp_path / "train.log", [*TRAIN, "--progress-every", "0.2", "--out",
                                                            tmp_path / "out"])
    assert code == 0, log
    lines = log.splitlines()
    epoch_end = next(i for i, line in enumerate(lines) if line.startswith("epoch 1/1  loss"))
    batch_lines = [line for line in lines[:epoch_end] if re.fullmatch(
        r"epoch 1/1 batch \d+/20  \d+ images/s  ETA \d+:\d\d:\d\d", line)]
    [result] = (tmp_path / "out").rglob("seed0.json")
    seconds = json.loads(result.read_text())["history"][0]["seconds"]
    assert 1 <= len(batch_lines) <= seconds / 0.2 + 1, log  # at most one every 0.2 s
    assert "\r" not in log  # whole lines, no live counter, in a file


def test_quiet_silences_the_batch_lines_and_bad_intervals_are_one_line(tmp_path, capsys):
    code, log = run_with_stderr_in(tmp_path / "train.log", [*TRAIN, "--progress-every", "0", "--quiet", "--out",
                                                            tmp_path / "out"])
    assert code == 0 and log == ""
    for bad in ("-1", "soon", "nan"):
        assert main(["classify", "--progress-every", bad, "--out", str(tmp_path / "bad")]) == 2
        assert capsys.readouterr().err == (f"hem: error: --progress-every must be a number of seconds >= 0 "
                                           f"(0: every batch), got {bad!r}\n")
    assert not (tmp_path / "bad").exists()


def test_corruptions_and_attacks_log_their_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HEM_CACHE", str(tmp_path / "cache"))  # no corruption set cached by an earlier run
    out = tmp_path / "out"
    assert main(["classify", "--epochs", "1", "--set", "dataset.limit=200", "--quiet", "--out", str(out)]) == 0
    [result] = out.rglob("seed0.json")
    capsys.readouterr()
    code, log = run_with_stderr_in(tmp_path / "corrupt.log", [
        "evaluate", result, "--eval", "corrupt", "--corrupt-samples", "20", "--set", "evaluation.workers=1",
        "--progress-every", "0"])
    assert code == 0, log
    made = re.findall(r"^corruption sets (\d+)/15(  [\d.]+ images/s  \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d)?", log,
                      re.MULTILINE)
    assert [int(done) for done, _ in made] == list(range(16))  # MNIST-C's 15 sets, a line each (and the start)
    assert all(eta for done, eta in made[1:-1])  # images/s and an ETA while the sets are made
    progress.set_log_interval(progress.DEFAULT_EVERY)  # as a new process starts: hem attack sets its own
    code, log = run_with_stderr_in(tmp_path / "attack.log", [
        "attack", result, "--attack-samples", "12", "--attack-batch-size", "4", "--set", "evaluation.attack_norms=[linf]",
        "--progress-every", "0"])
    assert code == 0, log
    attacked = re.findall(r"^attack linf images (\d+)/12(  [\d.]+ images/s)?  \d+:\d\d:\d\d(, ETA \d+:\d\d:\d\d)?$",
                          log, re.MULTILINE)
    assert [done for done, _, _ in attacked] == ["4", "8", "12"]  # a line per batch of 4
    assert attacked[1][1] and attacked[1][2]  # images/s and an ETA while attacking (the first batch may be
    assert attacked[2][1] and not attacked[2][2]  # too quick to tell from resumed ones); no ETA once done
    assert json.loads(result.read_text())["metrics"]["robust_accuracy_linf"] >= 0


def test_a_rate_is_written_without_an_exponent():
    """A fast machine's 1234.5 images/s is "1234", not "1.23e+03" (log readers and the patterns above)."""
    assert [progress.per_second(rate) for rate in (1234.5, 150.0, 45.67, 1.0, 0.01234, 0.00001)] == [
        "1234", "150", "45.7", "1", "0.0123", "0.000010"]
