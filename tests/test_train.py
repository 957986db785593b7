import itertools
import os

import pytest
import torch

from hemcli.device import DeviceManager
from hemcli.errors import HemError
from hemcli.train import Checkpointer, TensorBatches, crop_flip, make_optimizer, make_scheduler, train_epoch


def test_batches_cover_every_sample_once():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    batches = TensorBatches(x, y, 4, torch.Generator().manual_seed(0))
    seen = torch.cat([b for _, b in batches])
    assert len(batches) == 3 and sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(seen, y)  # shuffled


def test_crop_flip_is_a_shifted_crop_or_its_mirror():
    x = torch.arange(2 * 3 * 5 * 5).float().reshape(2, 3, 5, 5) + 1
    out = crop_flip(x, torch.Generator().manual_seed(1), pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        candidates = [padded[i, :, dy:dy + 5, dx:dx + 5] for dy, dx in itertools.product(range(5), range(5))]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_crop_flip_draws_every_shift_and_both_mirrors():
    """400 copies of one image with distinct pixel values: each output identifies its (dy, dx, flip)."""
    image = torch.arange(1, 10).float().reshape(1, 1, 3, 3)
    out = crop_flip(image.repeat(400, 1, 1, 1), torch.Generator().manual_seed(0), pad=1)
    padded = torch.nn.functional.pad(image[0], (1, 1, 1, 1))
    views = {(dy, dx, flip): (padded[:, dy:dy + 3, dx:dx + 3].flip(-1) if flip else padded[:, dy:dy + 3, dx:dx + 3])
             for dy, dx, flip in itertools.product(range(3), range(3), (False, True))}
    drawn = [next(key for key, view in views.items() if torch.equal(o, view)) for o in out]
    assert set(drawn) == set(views)  # all 9 shifts x 2 mirrors occur (p of missing one < 1e-8)
    assert 150 < sum(flip for _, _, flip in drawn) < 250  # about half mirrored


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
            "schedule": {"name": "multistep", "milestones": [2, 3], "gamma": 0.1}, "epochs": 4}


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
    with pytest.raises(HemError, match=f"cannot write checkpoint {path}: No space left on device"):
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
