import itertools

import pytest
import torch

from hemcli.device import DeviceManager
from hemcli.errors import HemError
from hemcli.train import Checkpointer, TensorBatches, crop_flip, make_optimizer, make_scheduler


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
