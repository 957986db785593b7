"""Every registry loss per pixel (the paper's Section 3 and Appendix A, issue 17): logits (N, C, H, W) and targets (N, H, W) with
``ignore_index`` pixels give the loss of the valid pixels taken as samples of a flat (P, C) batch, the
ignored pixels get exactly zero gradient, and a batch of ignored pixels only gives 0 with a zero
gradient (a mean over no samples). DICE is also checked against segmentation_models_pytorch.
"""
from __future__ import annotations

import pytest
import torch

from hemcli.losses import LOSSES, build_loss

ALL_LOSSES = sorted(LOSSES)
C = 5
COUNTS = [50, 100, 200, 400, 800]  # imbalanced, so that hem's per-class margins differ; others ignore them
IGNORE_INDEXES = [255, -100]


def make(name, ignore_index, **params):
    return build_loss(name, num_classes=C, class_counts=COUNTS, ignore_index=ignore_index, **params)


def pixel_batch(ignore_index, seed=0, shape=(2, 6, 7), ignored_share=0.25):
    """Random logits (N, C, H, W), scaled so that some margin losses are 0 and some not, and targets
    (N, H, W) with about ``ignored_share`` of the pixels ``ignore_index``."""
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn((shape[0], C) + shape[1:], generator=gen)
    targets = torch.randint(0, C, shape, generator=gen)
    targets[torch.rand(shape, generator=gen) < ignored_share] = ignore_index
    return logits, targets


def flat_valid_pixels(logits, targets, ignore_index):
    """(P, C) logits and (P,) targets of the valid pixels: class moved last, pixels flattened."""
    flat_logits, flat_targets = logits.movedim(1, -1).reshape(-1, C), targets.reshape(-1)
    keep = flat_targets != ignore_index
    return flat_logits[keep], flat_targets[keep]


def value_and_grad(loss_fn, logits, targets):
    logits = logits.detach().clone().requires_grad_()
    value = loss_fn(logits, targets)
    value.backward()
    return value.detach(), logits.grad


@pytest.mark.parametrize("ignore_index", IGNORE_INDEXES)
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_pixel_loss_equals_the_loss_of_the_flattened_valid_pixels(name, ignore_index):
    logits, targets = pixel_batch(ignore_index, seed=1)
    loss = make(name, ignore_index)
    value, grad = value_and_grad(loss, logits, targets)
    flat_value, flat_grad = value_and_grad(loss, *flat_valid_pixels(logits, targets, ignore_index))
    torch.testing.assert_close(value, flat_value)
    # the same pixels, so the gradients agree pixel for pixel, not only the values
    torch.testing.assert_close(flat_valid_pixels(grad, targets, ignore_index)[0], flat_grad)


@pytest.mark.parametrize("ignore_index", IGNORE_INDEXES)
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_ignored_pixels_get_exactly_zero_gradient(name, ignore_index):
    logits, targets = pixel_batch(ignore_index, seed=2)
    ignored = targets == ignore_index
    # Extreme logits on the ignored pixels: a loss that computed them and masked the result afterwards
    # could still leak inf * 0 = NaN into their gradient.
    logits = torch.where(ignored.unsqueeze(1), 1e4 * torch.randn_like(logits), logits)
    value, grad = value_and_grad(make(name, ignore_index), logits, targets)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert (grad.movedim(1, -1)[ignored] == 0).all()
    assert grad.movedim(1, -1)[~ignored].abs().sum() > 0


@pytest.mark.parametrize("ignore_index", IGNORE_INDEXES)
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_all_pixels_ignored_gives_zero_with_zero_gradient(name, ignore_index):
    """A mean over no samples: every loss returns exactly 0 (DICE too, whose sums are all 0 then), and
    the gradient is 0, so an AMP scaler or optimiser step sees no NaN."""
    logits, _ = pixel_batch(ignore_index, seed=3)
    targets = torch.full((2, 6, 7), ignore_index)
    value, grad = value_and_grad(make(name, ignore_index), logits, targets)
    assert value.item() == 0.0
    assert (grad == 0).all()


def test_hem_per_pixel_averages_the_pixels_with_nonzero_loss_only():
    """HEM- with margin 1 on four pixels of one 1x4 image, C = 3 (Eq. 1-2 by hand):
    pixel 0: y = [5, 0, 0], l = 0 -> e = [0, 0, 0], loss 0;
    pixel 1: y = [0, 1, 0], l = 0 -> e = [0, 2, 1], mean 1, keep 2 and 1 -> loss 1.5;
    pixel 2: ignored;
    pixel 3: y = [0, 0, 2], l = 2 -> e = [0, 0, 0], loss 0.
    Batch loss = mean over the one pixel with non-zero loss = 1.5 (a mean over all valid pixels: 0.5).
    """
    logits = torch.tensor([[5.0, 0, 0], [0, 1, 0], [0, 9, 9], [0, 0, 2]]).T.reshape(1, 3, 1, 4)
    targets = torch.tensor([[[0, 0, 255, 2]]])
    loss = build_loss("hem-", num_classes=3, margin=1.0, ignore_index=255)
    assert loss(logits, targets).item() == pytest.approx(1.5)


def smp_dice(ignore_index):
    losses = pytest.importorskip("segmentation_models_pytorch.losses")
    return losses.DiceLoss(mode="multiclass", from_logits=True, ignore_index=ignore_index)


# Why smp's DiceLoss is a reference for the paper's dice (Appendix A.4) (read in segmentation_models_pytorch 0.6,
# losses/dice.py and _functional.py): in multiclass mode it takes softmax(y), zeroes probabilities and
# one-hot targets of ignored pixels, and per class sums over dims (0, 2) of (N, C, H*W) -- the batch and
# the pixels -- giving 2 I / clamp(sum z + sum t, eps) with I = (sum z + sum t - |z - t|_1) / 2 = sum t z
# for one-hot t and z in [0, 1]; 1 - that, mean over classes. One difference: a class with no valid
# target pixel gets loss 0 there (still divided by C), where the paper's formula gives 1 - 0 / sum z = 1.
@pytest.mark.parametrize("ignore_index", IGNORE_INDEXES)
def test_dice_equals_smp_when_every_class_occurs(ignore_index):
    logits, targets = pixel_batch(ignore_index, seed=4)
    assert set(targets[targets != ignore_index].tolist()) == set(range(C))
    value, grad = value_and_grad(make("dice", ignore_index), logits, targets)
    smp_value, smp_grad = value_and_grad(smp_dice(ignore_index), logits, targets)
    torch.testing.assert_close(value, smp_value)
    torch.testing.assert_close(grad, smp_grad)


def test_dice_counts_a_class_absent_from_the_targets_as_1_where_smp_counts_0():
    logits, targets = pixel_batch(255, seed=5)
    targets[(targets == 1) | (targets == 3)] = 0  # classes 1 and 3 now absent from the truth
    value = make("dice", 255)(logits, targets)
    smp_value = smp_dice(255)(logits, targets)
    torch.testing.assert_close(value, smp_value + 2 / C)
