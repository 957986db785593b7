"""hemcli.engine: the epoch, optimisers and schedules, and the checkpoint (fit itself: test_engine_loop.py)."""
import os

import pytest
import torch

from hemcli.engine.device import DeviceManager
from hemcli.errors import HemError
from hemcli.engine.batches import TensorBatches
from hemcli.engine.checkpoint import Checkpointer
from hemcli.engine.loop import train_epoch
from hemcli.engine.optim import lr_factor, make_optimizer, make_scheduler


def test_train_loss_is_the_mean_over_samples_not_batches():
    """Batches of 4, 4 and 2 samples whose loss is the mean target: the epoch's loss is the mean over
    all 10 targets, 4.5, whatever the shuffle (a mean of batch means would weigh the last two double)."""
    x, y = torch.zeros(10, 1), torch.arange(10)
    model = torch.nn.Linear(1, 10)
    batches = TensorBatches(x, y, 4, torch.Generator().manual_seed(0))
    loss_fn = lambda logits, targets: logits.sum() * 0 + targets.float().mean()  # noqa: E731
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dm = DeviceManager(torch.device("cpu"))
    losses = [train_epoch(model, loss_fn, batches, optimizer, dm)[0] for _ in range(5)]
    assert losses == pytest.approx([4.5] * 5, abs=1e-6)


def cfg(**optim):
    return {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False, **optim},
            "schedule": {"name": "multistep", "milestones": [2, 3], "gamma": 0.1, "warmup_epochs": 0,
                         "warmup_start": 0.01}, "epochs": 4}


def test_multistep_schedule_values():
    model = torch.nn.Linear(2, 2)
    opt = make_optimizer(cfg(), model.parameters())
    sched = make_scheduler(cfg(), opt)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.001])


def lrs_of(config, epochs):
    opt = make_optimizer(config, torch.nn.Linear(2, 2).parameters())
    sched = make_scheduler(config, opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_exponential_warmup_then_fixed_lr():
    """Swin's recipe: AdamW at 1e-3 after 5 warm-up epochs from 0.01 of it, by hand:
    1e-3 * 0.01 ** (1 - e / 5) = 1e-5, 2.512e-5, 6.310e-5, 1.585e-4, 3.981e-4, then 1e-3."""
    config = cfg(name="adamw", lr=1e-3)
    config["schedule"].update(name="constant", milestones=[], warmup_epochs=5)
    assert lrs_of(config, 7) == pytest.approx([1e-5, 2.5119e-5, 6.3096e-5, 1.5849e-4, 3.9811e-4, 1e-3, 1e-3],
                                              rel=1e-4)


def test_warmup_before_multistep_and_cosine():
    config = cfg()
    config["schedule"].update(warmup_epochs=2, warmup_start=0.25, milestones=[3])
    assert lrs_of(config, 5) == pytest.approx([0.025, 0.05, 0.1, 0.01, 0.01])  # 0.1 * 0.25 ** (1 - e / 2)
    config["schedule"].update(name="cosine")
    config["epochs"] = 6  # 4 epochs of cosine after the warm-up: 1, (1 + cos(pi / 4)) / 2, 1 / 2, ...
    assert [lr_factor(config["schedule"], 6, e) for e in range(2, 6)] == pytest.approx(
        [1.0, 0.853553, 0.5, 0.146447], rel=1e-5)


def test_checkpoint_roundtrip_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = make_optimizer(cfg(), model.parameters())
    sched, gen = make_scheduler(cfg(), opt), torch.Generator().manual_seed(5)
    model(torch.rand(4, 3)).sum().backward()
    opt.step()
    saver = Checkpointer(tmp_path / "c.pt", cfg())
    saver.save(1, model, opt, sched, gen, [{"epoch": 1}])
    expected_draw = torch.rand(1, generator=gen)
    other = torch.nn.Linear(3, 2)
    opt2 = make_optimizer(cfg(), other.parameters())
    sched2, gen2 = make_scheduler(cfg(), opt2), torch.Generator()
    state = saver.load()
    saver.restore(state, other, opt2, sched2, gen2)
    assert torch.equal(other.weight, model.weight) and state["history"] == [{"epoch": 1}]
    assert torch.equal(torch.rand(1, generator=gen2), expected_draw)


def test_checkpoint_from_other_recipe_is_refused(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = make_optimizer(cfg(), model.parameters())
    Checkpointer(tmp_path / "c.pt", cfg()).save(1, model, opt, make_scheduler(cfg(), opt), torch.Generator(), [])
    with pytest.raises(HemError, match="another recipe"):
        Checkpointer(tmp_path / "c.pt", cfg(lr=0.5)).load()


def saved_checkpoint(path, epoch=1, recipe=None):
    model = torch.nn.Linear(3, 2)
    opt = make_optimizer(cfg(), model.parameters())
    saver = Checkpointer(path, recipe or cfg())
    saver.save(epoch, model, opt, make_scheduler(cfg(), opt), torch.Generator(), [{"epoch": epoch}])
    return saver, model, opt


def test_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    saver, model, opt = saved_checkpoint(path, epoch=1)
    real_save = torch.save

    def disk_full(obj, handle, *args, **kwargs):
        handle = open(handle, "wb") if isinstance(handle, (str, os.PathLike)) else handle
        handle.write(b"PK half a zip")
        handle.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(HemError, match=f"no space left on device writing checkpoint {path}"):
        saver.save(2, model, opt, make_scheduler(cfg(), opt), torch.Generator(), [])
    monkeypatch.setattr(torch, "save", real_save)
    assert saver.load()["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def _write_torch(obj):
    return lambda path: torch.save(obj, path)


NOT_CHECKPOINTS = {
    "empty file": lambda path: path.write_bytes(b""),
    "random bytes": lambda path: path.write_bytes(bytes(range(256)) * 4),
    "truncated": lambda path: path.write_bytes(_truncated_checkpoint(path)),
    "a list": _write_torch([1, 2, 3]),
    "a bare tensor": _write_torch(torch.zeros(3)),
    "no model": _write_torch({"format": "hem-checkpoint/1", "epoch": 1, "recipe": cfg(), "history": []}),
    "model of another type": _write_torch({"format": "hem-checkpoint/1", "epoch": 1, "recipe": cfg(),
                                           "history": [], "model": [1], "optimizer": {}, "scheduler": {},
                                           "generator": torch.zeros(1), "torch_rng": torch.zeros(1)}),
}


def _truncated_checkpoint(path):
    saved_checkpoint(path)
    return path.read_bytes()[:300]


@pytest.mark.parametrize("kind", list(NOT_CHECKPOINTS))
def test_anything_else_is_not_a_hem_checkpoint(tmp_path, kind):
    path = tmp_path / "c.pt"
    NOT_CHECKPOINTS[kind](path)
    with pytest.raises(HemError) as err:
        Checkpointer(path, cfg()).load()
    assert str(err.value) == (f"cannot read checkpoint {path}: not a hem checkpoint; "
                              "pass --overwrite to start again")


def test_checkpoint_that_does_not_fit_the_model(tmp_path):
    saver, _, _ = saved_checkpoint(tmp_path / "c.pt")
    other = torch.nn.Linear(4, 2)
    opt = make_optimizer(cfg(), other.parameters())
    with pytest.raises(HemError, match="not a hem checkpoint .it does not fit this model and optimiser."):
        saver.restore(saver.load(), other, opt, make_scheduler(cfg(), opt), torch.Generator())


def test_auxiliary_logits_add_their_loss_at_0_4():
    """A network that leaves logits in ``aux_out`` (Inception v3) trains on loss + 0.4 * aux loss: with
    the loss = mean of the logits' first column and SGD at lr 1, the aux head's weight moves by
    0.4 * mean(x) and the main head's by 1 * mean(x), worked by hand."""
    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.main, self.aux = torch.nn.Linear(1, 2, bias=False), torch.nn.Linear(1, 2, bias=False)
            self.aux_out = None

        def forward(self, x):
            self.aux_out = self.aux(x) if self.training else None
            return self.main(x)

    model = TwoHeads()
    before_main, before_aux = model.main.weight.detach().clone(), model.aux.weight.detach().clone()
    x = torch.tensor([[1.0], [3.0]])
    batches = [(x, torch.tensor([0, 1]), 1.0)]
    loss_fn = lambda logits, targets: logits[:, 0].mean()  # noqa: E731
    train_epoch(model, loss_fn, batches, torch.optim.SGD(model.parameters(), lr=1.0), DeviceManager(torch.device("cpu")))
    assert torch.allclose(before_main - model.main.weight, torch.tensor([[2.0], [0.0]]))
    assert torch.allclose(before_aux - model.aux.weight, torch.tensor([[0.8], [0.0]]))
