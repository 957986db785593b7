"""The fused HEM (hemcli/losses/fused.py, issue 29) against the hand-written autograd Function, for every
margin option, ignored samples, (N, C) and (N, C, H, W) inputs and each reduction: values and gradients.

Eager, the plain-ops form is checked in full; compiled by inductor on this CPU (as CUDA would run it)
for one case of each margin option and shape, since each compilation takes seconds."""
from __future__ import annotations

import pytest
import torch

from hemcli.losses import fused
from hemcli.losses.functional import high_error_margin, hem_path
from hemcli.losses.hem_function import HighErrorMarginFunction

MARGINS = {"shared": 0.7, "per-class logit": ("logit", [0.1, 0.5, 0.9, 1.3, 0.2]),
           "per-class target": ("target", [0.1, 0.5, 0.9, 1.3, 0.2])}


def case(kind: str, shape: tuple, ignored: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(shape, generator=generator, dtype=torch.float64) * 2).requires_grad_()
    targets = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator)
    if ignored:
        targets.view(-1)[::3] = -100
    spec = MARGINS[kind]
    margins, index = (spec, "logit") if isinstance(spec, float) else (
        torch.tensor(spec[1][: shape[1]], dtype=torch.float64), spec[0])
    return logits, targets, margins, index


def value_and_grad(fn, logits, targets, margins, index, reduction):
    logits.grad = None
    value = fn(logits, targets, margins, index, -100, reduction)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).view(value.shape)
    (value * weights).sum().backward()  # a non-uniform upstream gradient for 'none'
    return value.detach().clone(), logits.grad.clone()


def reference(logits, targets, margins, index, ignore_index, reduction):
    return HighErrorMarginFunction.apply(logits, targets, margins, index, ignore_index, reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignored", [False, True])
@pytest.mark.parametrize("shape", [(64, 5), (3, 5, 4, 6)])
@pytest.mark.parametrize("kind", list(MARGINS))
def test_the_plain_ops_form_equals_the_hand_written_function(kind, shape, ignored, reduction):
    inputs = case(kind, shape, ignored)
    expected = value_and_grad(reference, *inputs, reduction)
    got = value_and_grad(fused.hem_eager, *inputs, reduction)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)


def test_a_sample_with_zero_loss_passes_no_gradient_even_on_the_kink():
    """Sample 0's margin error is exactly 0 at the clamp (y_1 - y_0 + mu = 0): its loss is 0 and so its gradient."""
    logits = torch.tensor([[1.5, 1.0, -3.0], [0.0, 2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 0])
    loss = fused.hem_eager(logits, targets, 0.5)
    loss.backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[1].abs().sum() > 0
    # sample 1: e = [0, 2.5, 0.5], mean 1, kept {2.5}: loss 2.5, gradient +1 on logit 1, -1 on the target
    assert loss.item() == 2.5 and logits.grad[1].tolist() == [-1.0, 1.0, 0.0]


def test_cuda_logits_take_the_fused_path_and_cpu_logits_the_function(monkeypatch):
    cpu = torch.zeros(2, 3)
    assert hem_path(cpu) == "function" and hem_path(cpu, "fused") == "fused"

    class OnCuda:
        is_cuda = True

    assert hem_path(OnCuda()) == "fused"
    monkeypatch.setenv("HEM_FUSED", "0")
    assert hem_path(OnCuda()) == "function"


@pytest.mark.slow
@pytest.mark.parametrize("kind, shape", [("shared", (3, 5, 4, 6)), ("per-class logit", (64, 5)),
                                         ("per-class target", (3, 5, 4, 6))])
def test_compiled_by_inductor_it_equals_the_function(kind, shape):
    torch._dynamo.reset()
    fused._COMPILED.clear()
    logits, targets, margins, index = case(kind, shape, ignored=True, seed=1)
    logits32 = logits.detach().float().requires_grad_()
    margins32 = margins.float() if isinstance(margins, torch.Tensor) else margins
    expected = value_and_grad(reference, logits32, targets, margins32, index, "mean")
    got = value_and_grad(lambda *a: high_error_margin(*a, path="fused"), logits32, targets, margins32, index, "mean")
    assert not fused._FAILED, fused._FAILED
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-6)
