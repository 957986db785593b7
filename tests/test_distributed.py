"""Data-parallel training: ``torchrun --nproc-per-node 2 -m hemcli classify`` on CPU (gloo) learns
the weights one process learns on the same global batches, writes one result, and resumes."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO, planned_result
from hemcli.engine.batches import Shard
from hemcli.cli import main
from hemcli.runs.paths import checkpoint_path

# digits' 1437 training images in global batches of 64: 22 of 64 and one of 29, split 32/32 and 14/15
# over two ranks, so the uneven last batch is covered too. The MLP has no batch norm, whose
# per-rank statistics would differ from one process's by design.
# SGD at a small lr keeps training smooth: at lr 0.1 two epochs amplify the last-bit differences of
# summing gradients in another order to 0.1 in the weights (measured), at 0.01 they stay below 1e-7.
ARGS = ["--arch", "mlp", "--loss", "hem", "--batch-size", "64", "--device", "cpu", "--quiet",
        "--set", "optim.name=sgd", "--set", "optim.lr=0.01"]
FLAGS = {"model.arch": "mlp", "loss.name": "hem", "batch_size": 64, "device": "cpu",
         "optim.name": "sgd", "optim.lr": 0.01}


def torchrun(out, *extra, processes=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "hemcli", "classify", *ARGS, "--out", str(out), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


def weights(result_path):
    return torch.load(checkpoint_path(result_path), map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key


@pytest.mark.slow
def test_two_processes_learn_what_one_learns_and_only_rank0_writes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["classify", *ARGS, "--epochs", "1", "--out", str(one)]) == 0
    run = torchrun(two, "--epochs", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    path = planned_result(two, {**FLAGS, "epochs": 1})
    assert run.stdout.split() == [str(path)]  # one result line: rank 1 prints nothing
    assert sorted(p.name for p in path.parent.iterdir()) == ["seed0.ckpt.pt", "seed0.json"]
    assert_same_weights(weights(path), weights(planned_result(one, {**FLAGS, "epochs": 1})))
    result = json.loads(path.read_text())
    mine = json.loads(planned_result(one, {**FLAGS, "epochs": 1}).read_text())
    assert result["environment"]["processes"] == 2 and mine["environment"]["processes"] == 1
    # the loss and accuracies are sums over both ranks' shares, so they match one process's
    for key in ("train_loss", "train_accuracy", "test_accuracy"):
        assert result["history"][0][key] == pytest.approx(mine["history"][0][key], rel=1e-4)


@pytest.mark.slow
def test_a_ddp_run_resumes_where_a_run_stopped(tmp_path, monkeypatch):
    """A 2-epoch run stopped after epoch 1 (its checkpoint kept) and resumed by two processes ends
    with the weights of an uninterrupted 2-epoch run."""
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["classify", *ARGS, "--epochs", "2", "--out", str(whole)]) == 0
    from hemcli.engine import loop

    real, calls = loop.train_epoch, []

    def stop_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", stop_in_epoch_two)
    assert main(["classify", *ARGS, "--epochs", "2", "--out", str(stopped)]) == 130
    path = planned_result(stopped, {**FLAGS, "epochs": 2})
    assert not path.exists() and torch.load(checkpoint_path(path), weights_only=True)["epoch"] == 1
    run = torchrun(stopped, "--epochs", "2", "--resume")
    assert run.returncode == 0, run.stderr[-2000:]
    assert [h["epoch"] for h in json.loads(path.read_text())["history"]] == [1, 2]
    assert_same_weights(weights(path), weights(planned_result(whole, {**FLAGS, "epochs": 2})))


def test_shard_weights_make_the_average_of_rank_means_the_global_mean():
    """Worked by hand for 29 samples over 2 ranks: 14 and 15, weights 14*2/29 and 15*2/29."""
    assert [Shard(r, 2).bounds(29) for r in (0, 1)] == [(0, 14), (14, 29)]
    assert Shard(0, 2).weight(29) == pytest.approx(28 / 29) and Shard(1, 2).weight(29) == pytest.approx(30 / 29)
    assert Shard(0, 4).batches(10, 4) == 2 and Shard(0, 2).batches(10, 4) == 3  # a last batch of 2 is kept by 2
