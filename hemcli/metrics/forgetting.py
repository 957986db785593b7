"""Continual-learning metrics over an accuracy matrix.

``matrix[i][j]`` is the accuracy (%) on experience j's test set after training on experiences
0..i (rows: after each training experience; columns: every experience, trained yet or not). Only the
entries with j <= i are used, so those above the diagonal may be None (a task-incremental learner has
no head for a task it has not met).
"""
from __future__ import annotations

from typing import Sequence


def _square(matrix: Sequence[Sequence[float]]) -> int:
    steps = len(matrix)
    if steps == 0 or any(len(row) != steps for row in matrix):
        raise ValueError(f"an accuracy matrix must be T x T with T >= 1, got {[len(r) for r in matrix]}")
    return steps


def final_accuracy(matrix: Sequence[Sequence[float]], test_sizes: Sequence[int]) -> float:
    """Accuracy on the union of every experience's test set after the last one (the paper's metric):
    the last row weighted by the test set sizes."""
    steps = _square(matrix)
    if len(test_sizes) != steps or sum(test_sizes) <= 0:
        raise ValueError("one positive test size per experience")
    return sum(acc * n for acc, n in zip(matrix[-1], test_sizes)) / sum(test_sizes)


def average_forgetting(matrix: Sequence[Sequence[float]]) -> float | None:
    """Chaudhry et al. (2018): mean over experiences j < T-1 of the best accuracy on j before the
    last experience minus the accuracy on j after it, max_{i < T-1} a[i][j] - a[T-1][j], i >= j.
    None for a single experience."""
    steps = _square(matrix)
    if steps < 2:
        return None
    drops = [max(matrix[i][j] for i in range(j, steps - 1)) - matrix[-1][j] for j in range(steps - 1)]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Sequence[Sequence[float]]) -> float | None:
    """Lopez-Paz & Ranzato (2017): mean over j < T-1 of a[T-1][j] - a[j][j] (negative: forgetting).
    None for a single experience."""
    steps = _square(matrix)
    if steps < 2:
        return None
    return sum(matrix[-1][j] - matrix[j][j] for j in range(steps - 1)) / (steps - 1)
