"""Calibration of predicted probabilities: expected calibration error, negative log-likelihood and
the multi-class Brier score. Probabilities are (N, C) with rows summing to 1, labels (N,) class
indices; numpy arrays or torch tensors on any device. Results are Python floats.
"""
from __future__ import annotations

import torch

from hemcli.errors import HemError

# loose enough for half-precision softmax rows, tight enough to catch logits passed as probabilities
_ROW_SUM_TOLERANCE = 1e-2


def to_tensor(values, name: str) -> torch.Tensor:
    """``values`` (numpy array, torch tensor on any device, or sequence) as a CPU tensor."""
    if hasattr(values, "detach"):
        return values.detach().cpu()
    try:
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError) as err:
        raise HemError(f"{name} must be an array of numbers ({err})") from None


def class_inputs(values, labels, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 (N, C) ``values``, int64 (N,) labels in [0, C)), or a one-line HemError."""
    values, labels = to_tensor(values, name), to_tensor(labels, "labels")
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise HemError(f"{name} must have shape (N, C) with N, C >= 1, got {tuple(values.shape)}")
    if not (values.is_floating_point() and torch.isfinite(values).all()):
        raise HemError(f"{name} must be finite floating-point numbers")
    if labels.ndim != 1 or labels.shape[0] != values.shape[0]:
        raise HemError(f"labels must have shape ({values.shape[0]},) to match {name}, got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise HemError(f"labels must be integer class indices, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= values.shape[1]:
        raise HemError(f"labels must lie in [0, {values.shape[1] - 1}], got {int(labels.min())}..{int(labels.max())}")
    return values.double(), labels.long()


def probability_inputs(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """``class_inputs`` plus a check that every row is a probability vector."""
    probs, labels = class_inputs(probs, labels, "probabilities")
    if probs.min() < 0 or probs.max() > 1 or (probs.sum(1) - 1).abs().max() > _ROW_SUM_TOLERANCE:
        raise HemError("probabilities must lie in [0, 1] with rows summing to 1 (apply softmax to logits first)")
    return probs, labels


def expected_calibration_error(probs, labels, bins: int = 15) -> float:
    """Top-label ECE (Guo et al. 2017), l1: sum over bins b of |acc_b - conf_b| * n_b / N, where
    conf = max probability, acc = (argmax == label), and bin k holds k/B <= conf < (k+1)/B.

    In [0, 1]. Binned as torchmetrics' ``multiclass_calibration_error(norm="l1")`` does, so the two
    agree even for confidences on an edge: edges are ``torch.linspace(0, 1, B + 1)`` in float32 and
    confidences are compared in float32; a confidence of exactly 1 forms a bin of its own.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise HemError(f"bins must be a positive integer, got {bins!r}")
    probs, labels = probability_inputs(probs, labels)
    conf, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float32)
    index = torch.bucketize(conf.float(), edges, right=True) - 1  # 0..bins; bins only for conf == 1
    # per bin, sum(conf - correct) = n_b (conf_b - acc_b): its absolute value over N is the bin's term
    gap = torch.zeros(bins + 1, dtype=torch.float64).index_add_(0, index, conf - correct)
    return float(gap.abs().sum() / conf.numel())


def negative_log_likelihood(logits, labels) -> float:
    """Mean over samples of -log softmax(logits)[label], i.e. ``F.cross_entropy(logits, labels)``.

    Takes *logits* (N, C), not probabilities, so that log-softmax is computed stably (float64) and a
    confident wrong prediction costs a large finite value rather than log(0).
    """
    logits, labels = class_inputs(logits, labels, "logits")
    log_probs = torch.log_softmax(logits, dim=1)
    return float(-log_probs.gather(1, labels.unsqueeze(1)).mean())


def brier_score(probs, labels) -> float:
    """Multi-class Brier score (Brier 1950): mean over samples of sum over classes of
    (p_c - onehot(label)_c)^2; in [0, 2], 0 = certain and right."""
    probs, labels = probability_inputs(probs, labels)
    target = torch.zeros_like(probs).scatter_(1, labels.unsqueeze(1), 1.0)
    return float(((probs - target) ** 2).sum(dim=1).mean())
