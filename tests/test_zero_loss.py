"""Zero-loss skipping and the share of zero-loss samples (hemcli/engine/zero_loss.py, issue 29)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hemcli.cli import main
from hemcli.engine.batches import TensorBatches
from hemcli.engine.device import DeviceManager
from hemcli.engine.loop import train_epoch
from hemcli.engine.zero_loss import ZeroLoss, frozen_batch_norm, zero_loss_for
from hemcli.losses import build_loss


def digits(n=600):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images[:n], dtype=torch.float32).unsqueeze(1) / 16
    return x, torch.tensor(data.target[:n])


def lenet_like(seed=0, batch_norm=False):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 6, 3), *( [nn.BatchNorm2d(6)] if batch_norm else []), nn.ReLU(), nn.Flatten(),
              nn.Linear(6 * 6 * 6, 10)]
    return nn.Sequential(*layers)


def one_epoch(loss_name, skip, epochs=4, optimizer="sgd", seed=0, **params):
    x, y = digits()
    net = lenet_like(seed)
    loss_fn = build_loss(loss_name, num_classes=10, class_counts=torch.bincount(y).tolist(), **params)
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-2))
    zero = zero_loss_for(loss_fn, loss_name, skip)
    dm = DeviceManager(torch.device("cpu"))
    shares, results = [], []
    for epoch in range(epochs):
        batches = TensorBatches(x, y, 64, torch.Generator().manual_seed(epoch))
        results.append(train_epoch(net, loss_fn, batches, opt, dm, zero=zero))
        shares.append(zero.share())
    return net.state_dict(), results, shares


@pytest.mark.parametrize("loss_name, optimizer", [("hem", "sgd"), ("hem", "adam"), ("hem-", "sgd"), ("mm", "sgd")])
def test_skipping_gives_the_same_weights_without_batch_norm(loss_name, optimizer):
    """HEM's batch loss is the mean over its positive samples, MM's over all (the subset's loss scaled by
    positive / all): in both, the samples of zero loss add nothing to the gradient."""
    plain, plain_results, plain_shares = one_epoch(loss_name, False, optimizer=optimizer)
    skipped, skipped_results, skipped_shares = one_epoch(loss_name, True, optimizer=optimizer)
    for key in plain:
        torch.testing.assert_close(skipped[key], plain[key], rtol=1e-5, atol=1e-6)
    assert skipped_shares == plain_shares and plain_shares[-1] > 0.05  # something was skipped
    for (loss_a, acc_a), (loss_b, acc_b) in zip(plain_results, skipped_results):
        assert loss_b == pytest.approx(loss_a, rel=1e-5) and acc_b == pytest.approx(acc_a)


def test_the_share_is_the_count_of_samples_whose_eq1_errors_are_all_zero():
    """With lr 0 the network stays as built: the share is that of the whole set, counted here from
    Eq. 1 (a sample's HEM loss is 0 exactly when no competing logit is within its margin)."""
    x, y = digits()
    net = lenet_like(3)
    with torch.no_grad():
        net[-1].bias.copy_(torch.linspace(0, 9, 10) * 2.5)  # classes ranked by bias: some samples meet the margin
    counts = torch.bincount(y).tolist()
    loss_fn = build_loss("hem", num_classes=10, class_counts=counts)
    zero = zero_loss_for(loss_fn, "hem", skip=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    train_epoch(net, loss_fn, TensorBatches(x, y, 50, torch.Generator().manual_seed(0)), opt,
                DeviceManager(torch.device("cpu")), zero=zero)
    with torch.no_grad():
        logits = net(x)
    margins = loss_fn.margins if loss_fn.shared_margin is None else torch.full((10,), loss_fn.shared_margin)
    errors = (logits - logits.gather(1, y[:, None]) + margins[None, :]).clamp(min=0)
    errors[torch.arange(len(y)), y] = 0
    expected = (errors.max(1).values == 0).float().mean().item()
    assert 0 < expected < 1 and zero.share() == pytest.approx(expected)


def test_a_batch_without_a_positive_sample_still_takes_the_optimisers_step():
    """Momentum and weight decay move the weights on a batch of zero loss; skipping must too."""
    x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)

    def run(skip):
        torch.manual_seed(0)
        net = nn.Linear(4, 3)
        with torch.no_grad():
            net.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))  # class 0 wins by far: every HEM loss is 0
        loss_fn = build_loss("hem", num_classes=3, class_counts=[8, 8, 8])
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
        zero = zero_loss_for(loss_fn, "hem", skip)
        for seed in range(2):
            train_epoch(net, loss_fn, TensorBatches(x, y, 8, torch.Generator().manual_seed(seed)), opt,
                        DeviceManager(torch.device("cpu")), zero=zero)
        assert zero.share() == 1.0
        return net.state_dict()

    plain, skipped = run(False), run(True)
    for key in plain:
        torch.testing.assert_close(skipped[key], plain[key])
    torch.manual_seed(0)
    assert not torch.allclose(plain["weight"], nn.Linear(4, 3).weight)  # weight decay did move them


def test_the_probe_leaves_batch_norm_statistics_as_they_were():
    net = lenet_like(0, batch_norm=True).train()
    bn = net[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    with torch.no_grad(), frozen_batch_norm(net):
        net(torch.randn(16, 1, 8, 8))
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert bn.num_batches_tracked == before[2] and bn.momentum == 0.1
    net(torch.randn(16, 1, 8, 8))
    assert not torch.equal(bn.running_mean, before[0])  # training's own forward still updates them


def test_losses_that_are_never_zero_have_no_share():
    loss_fn = build_loss("ce", num_classes=10)
    assert zero_loss_for(loss_fn, "ce", False) is None
    with pytest.raises(ValueError):
        ZeroLoss(loss_fn, "everything", False)


def hem(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_epoch_records_the_share_and_skipping_is_its_own_condition(tmp_path, capsys):
    common = ["classify", "--epochs", "2", "--arch", "lenet", "--quiet", "--out", str(tmp_path)]
    code, plain, _ = hem(capsys, *common)
    code2, skipped, _ = hem(capsys, *common, "--skip-zero-loss")
    assert code == code2 == 0 and plain != skipped and "skip_zero_loss=true--" in skipped
    a, b = (json.loads(open(path.strip()).read()) for path in (plain, skipped))
    assert [h["zero_loss_share"] for h in a["history"]] == [h["zero_loss_share"] for h in b["history"]]
    assert a["metrics"] == b["metrics"]  # lenet has no BatchNorm: the same training
    code, ce, _ = hem(capsys, *common, "--loss", "ce")
    assert code == 0 and all("zero_loss_share" not in h for h in json.loads(open(ce.strip()).read())["history"])


@pytest.mark.parametrize("argv, message", [
    (["classify", "--loss", "ce", "--skip-zero-loss"],
     "train.skip_zero_loss needs a loss whose per-sample value can be exactly 0 (mm, hem-, hem); loss 'ce' is never 0"),
    (["segment", "--set", "train.skip_zero_loss=true"],
     "train.skip_zero_loss skips samples of one label each (hem classify, hem longtail); a segmentation loss is "
     "per pixel"),
])
def test_skipping_where_it_cannot_apply_is_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = hem(capsys, *argv, "--epochs", "1")
    assert (code, out, err) == (2, "", f"hem: error: {message}\n") and not any(tmp_path.iterdir())


def test_the_share_leaves_ignored_positions_out():
    """Per pixel (segmentation): of 2x2x3 positions 3 are ignored; of the 9 others, those with zero loss
    are counted by hand from Eq. 1 (shared margin 1)."""
    loss_fn = build_loss("hem-", num_classes=3, class_counts=[1000, 500, 500], ignore_index=-100)
    assert loss_fn.shared_margin == 1.0  # sqrt(M / sum(counts)) with M = 2000
    logits = torch.zeros(2, 3, 2, 3)
    logits[:, 0] = 5.0  # class 0 leads every other by 5 > margin: a target 0 has zero loss
    targets = torch.tensor([[[0, 0, 1], [-100, 2, 0]], [[-100, 0, 0], [1, -100, 2]]])
    zero = ZeroLoss(loss_fn, "positive", skip=False, ignore_index=-100)
    zero.count(logits, targets)
    valid = targets != -100
    assert int(valid.sum()) == 9
    assert zero.share() == pytest.approx(int(((targets == 0) & valid).sum()) / 9)  # 5 of 9
