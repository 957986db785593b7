"""Losses: every registry entry against the same contract, then each loss against values worked out
independently (paper Table 1, PyTorch's own losses, numpy, hand computation), then the registry.

The fast HEM (hemcli.losses.hem_function) is checked against ``hem_reference`` below: the paper's
Eq. 1-2 written op by op with plain autograd and a detached threshold.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hemcli.errors import HemError
from hemcli.losses import LOSSES, LossInfo, build_loss, hem_margins, register_loss
from hemcli.losses import modules as loss_modules

ALL_LOSSES = sorted(LOSSES)
MARGIN_LOSSES = ["mm", "hem-", "hem"]
C = 5
COUNTS = [50, 100, 200, 400, 800]  # imbalanced, so that hem's per-class margins differ


def make(name, num_classes=C, counts=COUNTS, **params):
    return build_loss(name, num_classes=num_classes, class_counts=counts, **params)


def random_batch(n=8, c=C, *rest, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn((n, c) + rest, generator=gen, dtype=dtype)
    targets = torch.randint(0, c, (n,) + rest, generator=gen)
    return logits, targets


def value_and_grad(loss_fn, logits, targets):
    logits = logits.detach().clone().requires_grad_()
    value = loss_fn(logits, targets)
    value.backward()
    return value.detach(), logits.grad


def hem_reference(logits, targets, margins, margin_index="logit", ignore_index=-100):
    """Eq. 1-2 op by op: per-sample mean of the errors >= the (detached) mean error; mean of positive samples."""
    num_classes = logits.shape[1]
    y = logits.movedim(1, -1).reshape(-1, num_classes)
    t = targets.reshape(-1)
    valid = t != ignore_index
    y, t = y[valid], t[valid]
    margins = torch.as_tensor(margins, dtype=y.dtype).expand(num_classes)
    mu = margins[t].unsqueeze(1) if margin_index == "target" else margins.unsqueeze(0)
    errors = torch.relu(y - y.gather(1, t.unsqueeze(1)) + mu)
    errors = errors * (1 - F.one_hot(t, num_classes).to(y.dtype))  # e_l = 0
    threshold = errors.mean(dim=1, keepdim=True).detach()
    kept = (errors >= threshold).to(y.dtype)
    sample_loss = (errors * kept).sum(dim=1) / kept.sum(dim=1)
    positive = sample_loss[sample_loss > 0]
    return positive.mean() if len(positive) else logits.sum() * 0


# ---------------------------------------------------------------- the contract, for every loss


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_returns_finite_scalar(name):
    logits, targets = random_batch()
    value = make(name)(logits, targets)
    assert value.dim() == 0 and value.dtype == torch.float32
    assert torch.isfinite(value)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradient_reaches_logits_of_a_badly_classified_batch(name):
    logits, _ = random_batch(seed=1)
    targets = logits.argmin(dim=1)  # every sample classified as wrongly as it can be
    value, grad = value_and_grad(make(name), logits, targets)
    assert value > 0
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", MARGIN_LOSSES)
def test_zero_when_the_margin_is_met(name):
    targets = torch.tensor([0, 3, 4, 1])
    logits = torch.zeros(4, C)
    logits[torch.arange(4), targets] = 100.0  # beyond every margin (the largest here is ~6.3)
    value, grad = value_and_grad(make(name), logits, targets)
    assert value.item() == 0.0
    assert torch.isfinite(grad).all() and (grad == 0).all()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_pixels_are_samples(name):
    """(N, C, H, W) gives the loss and gradient of the same pixels flattened to (N*H*W, C)."""
    logits, targets = random_batch(2, C, 3, 4, seed=2)
    flat_logits = logits.movedim(1, -1).reshape(-1, C)
    loss = make(name)
    value, grad = value_and_grad(loss, logits, targets)
    flat_value, flat_grad = value_and_grad(loss, flat_logits, targets.reshape(-1))
    torch.testing.assert_close(value, flat_value)
    torch.testing.assert_close(grad.movedim(1, -1).reshape(-1, C), flat_grad)


@pytest.mark.parametrize("ignore_index", [-100, 255])
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_ignore_index_drops_samples(name, ignore_index):
    logits, targets = random_batch(seed=3)
    targets[[1, 4, 5]] = ignore_index
    keep = targets != ignore_index
    loss = make(name, ignore_index=ignore_index)
    value, grad = value_and_grad(loss, logits, targets)
    kept_value, kept_grad = value_and_grad(loss, logits[keep], targets[keep])
    torch.testing.assert_close(value, kept_value)
    # The mean is over the valid samples of the same batch, so their gradients match too.
    torch.testing.assert_close(grad[keep], kept_grad)
    assert (grad[~keep] == 0).all()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_a_batch_without_valid_samples_gives_exactly_zero(name):
    logits, _ = random_batch(4, C, 2, 2, seed=4)
    targets = torch.full((4, 2, 2), -100)
    value, grad = value_and_grad(make(name), logits, targets)
    assert value.item() == 0.0
    assert torch.isfinite(grad).all() and (grad == 0).all()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_bfloat16_logits_are_computed_in_float32(name):
    logits, targets = random_batch(16, C, seed=5)
    low = logits.to(torch.bfloat16)
    loss = make(name)
    value, grad = value_and_grad(loss, low, targets)
    expected, expected_grad = value_and_grad(loss, low.float(), targets)
    assert value.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad.float(), expected_grad, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_every_loss_is_described(name):
    info = LOSSES[name]
    module = make(name)
    assert info.name == name and info.description and "\n" not in info.description
    for word in ("Input:", "logits", "targets"):
        assert word in type(module).__doc__


# ---------------------------------------------------------------- golden values: paper Table 1

TABLE_1 = [  # y (target = first logit), CE (tau = 1), LN (tau = 0.04), as printed
    ([1.0, -1.0, -1.0, -1.0], 0.34, 0.00),
    ([0.6, 0.1, 0.1, 0.1], 1.04, 0.00),
    ([0.6, 0.3, 0.0, -0.1], 1.02, 0.00),
    ([0.6, 0.5, 0.0, -0.7], 1.00, 0.09),
    ([0.6, 0.7, 0.0, -3.5], 0.98, 1.10),
    ([0.0, 1.0, 0.0, 0.0], 1.74, 25.00),
]


@pytest.mark.parametrize("y, ce, ln", TABLE_1)
def test_table_1_ce_and_ln_columns(y, ce, ln):
    logits, targets = torch.tensor([y]), torch.tensor([0])
    assert round(build_loss("ce", num_classes=4)(logits, targets).item(), 2) == ce
    assert round(build_loss("ln", num_classes=4)(logits, targets).item(), 2) == ln


# Table 1's MM and HEM columns (mu = 0.5) do not follow from Eq. 1, 2, 8, 9; these are the equations' values,
# worked by hand: e.g. [0.6, 0.3, 0, -0.1] has e = [0, .2, 0, 0]: MM .2 / 4 = .05 (printed .11), HEM .2 (printed .45);
# [0, 1, 0, 0] has e = [0, 1.5, .5, .5]: MM 2.5 / 4, HEM keeps only 1.5 (>= mean .625) (printed .66 and .88).
TABLE_1_BY_EQUATIONS = [0.0, 0.0, 0.05, 0.1, 0.15, 0.625], [0.0, 0.0, 0.2, 0.4, 0.6, 1.5]


@pytest.mark.parametrize("row", range(6))
def test_table_1_mm_and_hem_rows_follow_the_equations(row):
    logits, targets = torch.tensor([TABLE_1[row][0]]), torch.tensor([0])
    mm, hem = (value.item() for value in (build_loss("mm", num_classes=4, margin=0.5)(logits, targets),
                                          build_loss("hem-", num_classes=4, margin=0.5)(logits, targets)))
    assert mm == pytest.approx(TABLE_1_BY_EQUATIONS[0][row], abs=1e-6)
    assert hem == pytest.approx(TABLE_1_BY_EQUATIONS[1][row], abs=1e-6)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradient_follows_the_upstream_gradient(name):
    """d(3 L)/dy = 3 dL/dy: what a scaled loss (GradScaler, loss weights) relies on."""
    logits, targets = random_batch(seed=21)
    loss = make(name)
    _, grad = value_and_grad(loss, logits, targets)
    _, scaled_grad = value_and_grad(lambda y, t: 3.0 * loss(y, t), logits, targets)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(scaled_grad, 3.0 * grad)


class _AutocastProbe(loss_modules._LossModule):
    """A loss made of an op that CPU autocast runs in bfloat16 (a matmul), to see the guard work."""

    loss_name = "probe"

    def loss(self, logits, targets):
        return (logits @ torch.eye(logits.shape[1])).sum()


def test_loss_modules_switch_autocast_off():
    logits = torch.full((2, 3), 1.0 + 2 ** -10)  # exact in float32, rounds to 1.0 in bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _AutocastProbe()(logits, torch.tensor([0, 1]))
    assert value.dtype == torch.float32 and value.item() == 6 * (1.0 + 2 ** -10)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_autocast_does_not_lower_the_loss_precision(name):
    logits, targets = random_batch(16, C, seed=20)
    low = logits.to(torch.bfloat16)
    loss = make(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(low, targets)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(low.float(), targets))


# ---------------------------------------------------------------- each loss against an independent value


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_ce_matches_torch(tau):
    logits, targets = random_batch(seed=6)
    value = build_loss("ce", num_classes=C, tau=tau)(logits, targets)
    torch.testing.assert_close(value, F.cross_entropy(logits / tau, targets))


def log_softmax_np(y):
    y = np.asarray(y, dtype=np.float64)
    shifted = y - y.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_label_smoothing_against_numpy(alpha):
    logits, targets = random_batch(seed=7)
    targets[2] = -100
    value = build_loss("ls", num_classes=C, alpha=alpha)(logits, targets)
    keep = targets.numpy() != -100
    smoothed = np.eye(C)[targets.numpy()[keep]] * (1 - alpha) + alpha / C
    expected = np.mean(-(smoothed * log_softmax_np(logits.numpy()[keep])).sum(axis=1))
    assert value.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_mm_matches_torch(margin):
    logits, targets = random_batch(seed=8)
    value, grad = value_and_grad(build_loss("mm", num_classes=C, margin=margin), logits, targets)
    expected, expected_grad = value_and_grad(lambda y, t: F.multi_margin_loss(y, t, margin=margin), logits, targets)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("tau", [1.0, 0.5, 2.0])
def test_la_against_numpy(tau):
    logits, targets = random_batch(seed=9)
    value = make("la", tau=tau)(logits, targets)
    prior = np.array(COUNTS, dtype=np.float64) / sum(COUNTS)
    adjusted = log_softmax_np(logits.numpy() + tau * np.log(prior))
    expected = -adjusted[np.arange(len(targets)), targets.numpy()].mean()
    assert value.item() == pytest.approx(expected, rel=1e-5)
    balanced = build_loss("la", num_classes=C, class_counts=[7] * C, tau=tau)(logits, targets)
    torch.testing.assert_close(balanced, F.cross_entropy(logits, targets))


def test_focal_with_gamma_zero_is_ce():
    logits, targets = random_batch(seed=10)
    torch.testing.assert_close(make("focal", gamma=0.0)(logits, targets), F.cross_entropy(logits, targets))


def test_focal_by_hand():
    y = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    p = np.exp(y) / np.exp(y).sum(axis=1, keepdims=True)
    p_target = p[[0, 1], [0, 1]]
    expected = np.mean(-(1 - p_target) ** 2 * np.log(p_target))
    value = build_loss("focal", num_classes=3)(torch.tensor(y, dtype=torch.float32), torch.tensor([0, 1]))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_dice_against_numpy():
    logits, targets = random_batch(3, 4, 2, 5, seed=11)
    targets[0, 1, 2] = 255
    value = build_loss("dice", num_classes=4, ignore_index=255)(logits, targets)
    y = logits.movedim(1, -1).reshape(-1, 4).double().numpy()
    t_index = targets.reshape(-1).numpy()
    keep = t_index != 255
    z = np.exp(y[keep]) / np.exp(y[keep]).sum(axis=1, keepdims=True)
    t = np.eye(4)[t_index[keep]]
    per_class = 1 - 2 * (t * z).sum(axis=0) / (t + z).sum(axis=0)
    assert value.item() == pytest.approx(per_class.mean(), rel=1e-5)


def test_sigmoid_against_numpy():
    logits, targets = random_batch(seed=12)
    value = build_loss("sigmoid", num_classes=C)(logits, targets)
    y, t = logits.double().numpy(), np.eye(C)[targets.numpy()]
    z = 1 / (1 + np.exp(-y))
    expected = np.mean(-(t * np.log(z) + (1 - t) * np.log(1 - z)).sum(axis=1))
    assert value.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("params", [{}, {"kappa": 2.0, "M": 3.0}])
def test_squared_against_numpy(params):
    kappa, target_value = params.get("kappa", 8.0), params.get("M", 0.83)
    logits, targets = random_batch(seed=13)
    value = build_loss("squared", num_classes=C, **params)(logits, targets)
    y, t = logits.double().numpy(), np.eye(C)[targets.numpy()]
    expected = np.mean(np.mean(kappa * t * (y - target_value) ** 2 + (1 - t) * y ** 2, axis=1))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_logit_penalty_against_numpy():
    logits, targets = random_batch(seed=14)
    beta = 10 ** -2.83
    value = build_loss("logit-penalty", num_classes=C)(logits, targets)
    y = logits.double().numpy()
    ce = -log_softmax_np(y)[np.arange(len(targets)), targets.numpy()]
    assert value.item() == pytest.approx(np.mean(ce + beta * (y ** 2).sum(axis=1)), rel=1e-5)


@pytest.mark.parametrize("le", [1.0, 0.5])
def test_encouraging_against_numpy(le):
    # Target probabilities spread from ~0.02 to ~1 - 1e-9: both sides of LE = 0.5 and the 1e-5 clamp.
    y = np.array([[-2.0, 2.0, 0.0], [0.0, 0.1, 0.2], [1.5, 0.0, 0.0], [25.0, 0.0, 0.0]])
    targets = np.array([0, 1, 0, 0])
    p = np.exp(y) / np.exp(y).sum(axis=1, keepdims=True)
    p_target = p[np.arange(4), targets]
    bonus = np.log(np.maximum(1 - p_target, 1e-5))
    if le < 1:
        bonus = np.where(p_target > le, np.log(1 - le) - (p_target - le) / (1 - le), bonus)
    expected = np.mean(-np.log(p_target) + bonus)
    assert (p_target > 0.5).any() and (p_target < 0.5).any() and (1 - p_target < 1e-5).any()
    value = build_loss("encouraging", num_classes=3, LE=le)(torch.tensor(y, dtype=torch.float32),
                                                             torch.tensor(targets))
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- HEM by hand


def hem_with_margin(margin, num_classes):
    return build_loss("hem-", num_classes=num_classes, margin=margin)


def test_hem_keeps_errors_tied_with_the_mean():
    """e = [0, .25, .25, .5]: mean .25, so both .25 are kept (>=): loss 1/3, not .5 (which '>' would give)."""
    logits, targets = torch.tensor([[0.0, -0.25, -0.25, 0.0]]), torch.tensor([0])
    value, grad = value_and_grad(hem_with_margin(0.5, 4), logits, targets)
    assert value.item() == pytest.approx(1 / 3, abs=1e-7)
    torch.testing.assert_close(grad, torch.tensor([[-1.0, 1 / 3, 1 / 3, 1 / 3]]))


def test_hem_batch_mean_is_over_positive_samples_only():
    """One sample with a single error of .5 among two with none: the batch loss is .5, not .5 / 3."""
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 4.0, 0.0]])
    targets = torch.tensor([0, 1, 1])  # sample 1: e = [0 - .5 + .5, 0, .5 - .5 + .5] = [0, 0, .5]
    value, grad = value_and_grad(hem_with_margin(0.5, 3), logits, targets)
    assert value.item() == 0.5
    expected = torch.zeros(3, 3)
    expected[1, 1], expected[1, 2] = -1.0, 1.0
    assert torch.equal(grad, expected)


def test_hem_averages_the_positive_samples():
    logits = torch.tensor([[0.0, -0.25, -0.25, 0.0], [0.0, 0.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([0, 0, 0])
    value = hem_with_margin(0.5, 4)(logits, targets)
    # sample 1: 1/3 (ties above); sample 2: e = [0, .5, .5, .5], mean .375, loss .5; sample 3: 0
    assert value.item() == pytest.approx((1 / 3 + 0.5) / 2, abs=1e-7)


def test_hem_all_zero_batch_is_exactly_zero_with_zero_gradient():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 1.5]])
    value, grad = value_and_grad(hem_with_margin(0.5, 3), logits, torch.tensor([0, 1]))
    assert value.item() == 0.0 and not torch.isnan(value)
    assert torch.equal(grad, torch.zeros(2, 3))


def test_hem_nan_logits_give_nan_loss():
    logits = torch.tensor([[float("nan"), 0.0, 0.0], [3.0, 0.0, 0.0]])
    assert torch.isnan(hem_with_margin(0.5, 3)(logits, torch.tensor([0, 0])))


def test_hem_margin_index_target_by_hand():
    """Counts (125, 500, 2000), M = 6000: mu = sqrt(M / (3 s)) = (4, 2, 1); y = 0 everywhere.

    target 0: 'logit' e = [0, 2, 1] -> mean 1, keep {2, 1}: 1.5;   'target' e = [0, 4, 4]: 4
    target 2: 'logit' e = [4, 2, 0] -> mean 2, keep {4, 2}: 3;     'target' e = [1, 1, 0]: 1
    """
    counts = [125, 500, 2000]
    torch.testing.assert_close(hem_margins(counts, 6000.0, per_class=True), torch.tensor([4.0, 2.0, 1.0]))
    logits = torch.zeros(1, 3)
    for target, by_logit, by_target in [(0, 1.5, 4.0), (2, 3.0, 1.0)]:
        t = torch.tensor([target])
        assert make("hem", 3, counts, M=6000)(logits, t).item() == pytest.approx(by_logit)
        assert make("hem", 3, counts, M=6000, margin_index="target")(logits, t).item() == pytest.approx(by_target)


def test_hem_margins_values():
    torch.testing.assert_close(hem_margins([5000] * 10, per_class=True), torch.full((10,), 0.2))
    assert hem_margins([5000] * 10, per_class=False).item() == pytest.approx(0.2)
    assert hem_margins([5000] * 10, per_class=False).dim() == 0
    # (250, 1000), M = 2000: per class sqrt(2000 / (2 s)) = (2, 1); shared sqrt(2000 / 1250)
    torch.testing.assert_close(hem_margins([250, 1000], 2000), torch.tensor([2.0, 1.0]))
    assert hem_margins([250, 1000], 2000, per_class=False).item() == pytest.approx(math.sqrt(1.6))


def test_hem_and_hem_minus_agree_on_balanced_counts():
    logits, targets = random_batch(16, 10, seed=15)
    counts = [5000] * 10
    hem = value_and_grad(make("hem", 10, counts), logits * 0.3, targets)
    hem_minus = value_and_grad(make("hem-", 10, counts), logits * 0.3, targets)
    assert hem[0] > 0
    torch.testing.assert_close(hem, hem_minus)


def test_hem_uses_the_shared_margin_path_for_equal_margins():
    assert make("hem", 10, [5000] * 10).shared_margin == pytest.approx(0.2)
    assert make("hem", C, COUNTS).shared_margin is None


# ---------------------------------------------------------------- fast HEM == op-by-op reference

REFERENCE_CASES = {
    "2d": dict(shape=(32, 7)),
    "2d-float64": dict(shape=(32, 7), dtype=torch.float64),
    "nchw": dict(shape=(3, 7, 4, 5)),
    "nchw-ignore": dict(shape=(3, 7, 4, 5), ignore=True),
    "2d-ignore-float64": dict(shape=(32, 7), ignore=True, dtype=torch.float64),
}


@pytest.mark.parametrize("margin_index", ["logit", "target"])
@pytest.mark.parametrize("margins", ["shared", "per-class"])
@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_fast_hem_equals_reference(case, margins, margin_index):
    spec = REFERENCE_CASES[case]
    shape, dtype = spec["shape"], spec.get("dtype", torch.float32)
    logits, targets = random_batch(shape[0], shape[1], *shape[2:], seed=16, dtype=dtype)
    if spec.get("ignore"):
        targets.view(-1)[::3] = -100
    counts = [5000] * 7 if margins == "shared" else [10, 40, 90, 160, 250, 360, 490]
    mu = hem_margins(counts, 200.0, per_class=True)
    loss = make("hem", 7, counts, M=200.0, margin_index=margin_index)
    value, grad = value_and_grad(loss, logits, targets)
    expected, expected_grad = value_and_grad(lambda y, t: hem_reference(y, t, mu.to(dtype), margin_index),
                                             logits, targets)
    assert value.dtype == dtype and value > 0
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_fast_hem_equals_reference_with_ties_and_zero_samples():
    # Quarter steps: every error and mean is exact, so many errors tie with their sample's mean.
    gen = torch.Generator().manual_seed(17)
    logits = torch.randint(-4, 5, (64, 6), generator=gen).double() / 4
    targets = torch.randint(0, 6, (64,), generator=gen)
    logits[:8] = -10.0
    logits[torch.arange(8), targets[:8]] = 10.0  # eight samples with loss 0
    loss = build_loss("hem-", num_classes=6, margin=0.5)
    value, grad = value_and_grad(loss, logits, targets)
    expected, expected_grad = value_and_grad(lambda y, t: hem_reference(y, t, 0.5), logits, targets)
    torch.testing.assert_close(value, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)


def test_fast_hem_gradient_is_that_of_the_kept_errors_mean():
    """Gradient of the average of the kept errors, threshold detached (paper, Section 3)."""
    logits, targets = random_batch(4, 6, seed=18, dtype=torch.float64)
    logits = logits.requires_grad_()
    y_l = logits.gather(1, targets.unsqueeze(1))
    errors = torch.relu(logits - y_l + 0.7).scatter(1, targets.unsqueeze(1), 0.0)
    kept = errors >= errors.mean(1, keepdim=True).detach()
    per_sample = torch.stack([errors[i][kept[i]].mean() for i in range(4)])
    per_sample[per_sample > 0].mean().backward()
    _, grad = value_and_grad(build_loss("hem-", num_classes=6, margin=0.7), logits, targets)
    torch.testing.assert_close(grad, logits.grad)


def test_fast_hem_backward_twice_with_retain_graph():
    logits, targets = random_batch(seed=19)
    logits.requires_grad_()
    value = make("hem")(logits, targets)
    first = torch.autograd.grad(value, logits, retain_graph=True)[0]
    second = torch.autograd.grad(value, logits)[0]
    assert first.abs().sum() > 0
    torch.testing.assert_close(first, second)


# ---------------------------------------------------------------- CUDA (run where a GPU is present)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_cuda_matches_cpu(name):
    """Same value and gradient on CUDA as on CPU, ignored pixels included; the module is not moved
    to the GPU by hand (its buffers follow the logits)."""
    logits, targets = random_batch(16, C, 3, 3, seed=21)
    targets.view(-1)[::5] = -100
    loss = make(name)
    value, grad = value_and_grad(loss, logits, targets)
    cuda_value, cuda_grad = value_and_grad(loss, logits.cuda(), targets.cuda())
    assert cuda_value.is_cuda and cuda_grad.is_cuda
    torch.testing.assert_close(cuda_value.cpu(), value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cuda_grad.cpu(), grad, rtol=1e-5, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_cuda_autocast_keeps_float32_loss(name):
    logits, targets = random_batch(32, C, seed=22)
    low = logits.cuda().to(torch.bfloat16).requires_grad_()
    loss = make(name).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        value = loss(low, targets.cuda())
    value.backward()
    assert value.dtype == torch.float32 and low.grad.dtype == torch.bfloat16
    torch.testing.assert_close(value.cpu(), loss.cpu()(low.detach().float().cpu(), targets))


# ---------------------------------------------------------------- registry and build_loss errors


def test_register_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_loss(LossInfo("ce", lambda **kw: None, "again", {}))


def test_register_and_build_a_new_loss():
    info = LossInfo("test-only-ce", lambda *, num_classes, class_counts, ignore_index, tau:
                    loss_modules.CrossEntropyLoss(tau, ignore_index), "test", {"tau": 1.0})
    try:
        assert register_loss(info) is info
        assert isinstance(build_loss("test-only-ce", num_classes=3, tau=2), loss_modules.CrossEntropyLoss)
    finally:
        LOSSES.pop("test-only-ce")


def test_loss_info_is_frozen():
    with pytest.raises(Exception):
        LOSSES["ce"].name = "other"
    with pytest.raises(TypeError):
        LOSSES["ce"].defaults["tau"] = 3.0


def test_unknown_loss_lists_valid_names():
    with pytest.raises(HemError, match="unknown loss 'cross'.*ce.*hem-.*squared"):
        build_loss("cross", num_classes=3)


def test_unknown_parameter_names_the_loss_and_its_parameters():
    with pytest.raises(HemError, match="'hem' has no parameter 'mu'; valid parameters: M, margin, margin_index"):
        build_loss("hem", num_classes=3, class_counts=[1, 2, 3], mu=0.5)
    with pytest.raises(HemError, match="'dice' has no parameter 'tau'; valid parameters: none"):
        build_loss("dice", num_classes=3, tau=1.0)


@pytest.mark.parametrize("name, params", [("ce", {"tau": "1.0"}), ("focal", {"gamma": True}),
                                          ("hem", {"margin_index": 1}), ("hem-", {"margin": "big"}),
                                          ("ls", {"alpha": None})])
def test_parameter_of_wrong_type(name, params):
    with pytest.raises(HemError, match=f"loss '{name}': parameter '{next(iter(params))}' must be"):
        build_loss(name, num_classes=3, class_counts=[1, 2, 3], **params)


def test_int_accepted_for_float_parameters():
    assert build_loss("ce", num_classes=3, tau=2).tau == 2.0
    assert build_loss("hem-", num_classes=3, margin=1).shared_margin == 1.0


@pytest.mark.parametrize("name, params, message", [
    ("ce", {"tau": 0.0}, "tau must be > 0"),
    ("ls", {"alpha": 1.5}, "alpha must be in"),
    ("hem", {"margin_index": "class"}, "margin_index must be one of logit, target"),
    ("hem-", {"margin": -1.0}, "margin must be >= 0"),
    ("encouraging", {"LE": 0.0}, "LE must be in"),
])
def test_parameter_out_of_range(name, params, message):
    with pytest.raises(HemError, match=message):
        build_loss(name, num_classes=3, class_counts=[1, 2, 3], **params)


@pytest.mark.parametrize("name", ["la", "hem", "hem-"])
def test_losses_needing_class_counts_raise_without_them(name):
    assert LOSSES[name].needs_class_counts
    with pytest.raises(HemError, match=f"loss '{name}' needs class_counts"):
        build_loss(name, num_classes=3)


@pytest.mark.parametrize("name", ["hem", "hem-"])
def test_explicit_margin_replaces_class_counts(name):
    loss = build_loss(name, num_classes=3, margin=0.5)
    assert loss.shared_margin == 0.5


@pytest.mark.parametrize("counts, message", [([1, 2], "2 class counts for 3 classes"),
                                             ([1, 0, 2], "positive number"), ([1, -3, 2], "positive number"),
                                             (["a", 1, 2], "positive number")])
def test_bad_class_counts(counts, message):
    with pytest.raises(HemError, match=message):
        build_loss("la", num_classes=3, class_counts=counts)


def test_class_counts_ignored_by_losses_that_do_not_use_them():
    assert build_loss("ce", num_classes=3, class_counts=[0, 0, 0]) is not None


def test_shape_mismatch_is_a_hem_error():
    with pytest.raises(HemError, match="targets of shape"):
        make("ce")(torch.zeros(4, C), torch.zeros(5, dtype=torch.long))
    with pytest.raises(HemError, match="built for 5 classes"):
        make("hem")(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
