"""hemcli.engine.loop.fit on a task of its own (a linear classifier of 64 random points): it seeds before
the task builds anything, resumes at the epoch after the checkpoint's, checkpoints every epoch,
trains every epoch before the task measures, and steps the schedule -- each checked against a
number worked out apart from fit (a second fit, the lr a multistep schedule gives by hand, the
weights of a run that was never stopped)."""
from __future__ import annotations

import pytest
import torch

from hemcli import recipes
from hemcli.engine.batches import TensorBatches
from hemcli.engine.device import DeviceManager
from hemcli.engine.loop import TrainParts, fit
from hemcli.tasks import classify

X = torch.rand(64, 5, generator=torch.Generator().manual_seed(1))
Y = (X.sum(1) > 2.5).long()


def cfg(**sets) -> dict:
    base = {"epochs": 3, "optim.name": "sgd", "optim.lr": 0.5, "batch_size": 16, "loss.name": "ce"}
    return recipes.resolve(classify.schema(), "classify", sets=[f"{k}={v}" for k, v in {**base, **sets}.items()])


class Task:
    """A linear classifier; ``measured`` records the weights each measure call saw; ``stop_at``
    makes the epoch's measure raise (a run killed after its checkpoint of the epoch before)."""

    def __init__(self, stop_at: int | None = None):
        self.initial, self.measured, self.stop_at = None, [], stop_at

    def build(self, generator: torch.Generator) -> TrainParts:
        net = torch.nn.Linear(5, 2)
        self.initial = net.weight.detach().clone()

        def measure(trained) -> dict:
            if self.stop_at is not None and len(self.measured) + 1 == self.stop_at:
                raise KeyboardInterrupt
            self.measured.append(trained.weight.detach().clone())
            return {"test_accuracy": 100.0 * (trained(X).argmax(1) == Y).float().mean().item()}

        return TrainParts(net, torch.nn.CrossEntropyLoss(), TensorBatches(X, Y, 16, generator), "a test task",
                          measure=measure)


DM = DeviceManager(torch.device("cpu"))


def test_fit_seeds_before_the_task_builds_its_network():
    first, second = Task(), Task()
    torch.manual_seed(123)
    one = fit(first.build, cfg(), DM, quiet=True)
    torch.manual_seed(456)  # whatever the global state was, the seed decides the initial weights
    two = fit(second.build, cfg(), DM, quiet=True)
    assert torch.equal(first.initial, second.initial)
    assert torch.equal(one.parts.net.weight, two.parts.net.weight)
    assert [h["train_loss"] for h in one.history] == [h["train_loss"] for h in two.history]


def test_every_epoch_is_trained_then_measured():
    task = Task()
    fitted = fit(task.build, cfg(), DM, quiet=True)
    assert [h["epoch"] for h in fitted.history] == [1, 2, 3] and len(task.measured) == 3
    assert torch.equal(task.measured[-1], fitted.parts.net.weight)  # the last measurement saw the trained net
    assert not torch.equal(task.measured[0], task.initial)  # ... and the first came after a training epoch


def test_the_schedule_is_stepped_once_an_epoch():
    fitted = fit(Task().build, cfg(**{"schedule.name": "multistep", "schedule.milestones": "[1, 2]",
                                      "schedule.gamma": 0.1}), DM, quiet=True)
    assert [h["lr"] for h in fitted.history] == pytest.approx([0.5, 0.05, 0.005])


def test_a_killed_run_resumes_at_the_next_epoch_with_the_weights_of_one_never_stopped(tmp_path):
    whole = fit(Task().build, cfg(), DM, quiet=True)
    checkpoint = tmp_path / "run.ckpt.pt"
    with pytest.raises(KeyboardInterrupt):  # killed while measuring epoch 2: the checkpoint is epoch 1's
        fit(Task(stop_at=2).build, cfg(), DM, checkpoint, quiet=True)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    resumed_task = Task()
    resumed = fit(resumed_task.build, cfg(), DM, checkpoint, resume=True, quiet=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3] and len(resumed_task.measured) == 2
    assert torch.equal(resumed.parts.net.weight, whole.parts.net.weight)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 3  # every epoch checkpointed
