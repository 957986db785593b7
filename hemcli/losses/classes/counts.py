"""The class counts a loss class is given: ``class_counts`` (one per class) or ``num_samples`` (balanced)."""
from __future__ import annotations

from hemcli.errors import HemError
from hemcli.losses.margins import checked_class_counts, is_finite_number

COUNTS_ARGS = """
        num_classes (int): the number of classes C (the logits' size along dim 1).
        class_counts (sequence of numbers, optional): the number of training samples of each class,
            C positive numbers (a list, tuple or 1-D tensor).
        num_samples (number, optional): the total number of training samples, for balanced classes:
            it stands for ``class_counts = [num_samples / C] * C``. Give this or ``class_counts``."""


def check_num_classes(loss: str, num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise HemError(f"loss {loss!r}: num_classes must be an integer >= 2, got {num_classes!r}")
    return num_classes


def resolve_class_counts(loss: str, num_classes, class_counts=None, num_samples=None) -> tuple[float, ...]:
    """The C class counts as floats: ``class_counts`` checked, or ``num_samples`` spread evenly.

    Exactly one of the two must be given; anything else is a one-line HemError.
    """
    num_classes = check_num_classes(loss, num_classes)
    if class_counts is not None and num_samples is not None:
        raise HemError(f"loss {loss!r}: give class_counts or num_samples, not both")
    if class_counts is None and num_samples is None:
        raise HemError(f"loss {loss!r} needs the training set's class sizes: give class_counts (samples per "
                       "class) or num_samples (their total, for balanced classes)")
    if class_counts is not None:
        return checked_class_counts(class_counts, num_classes, owner=f"loss {loss!r}")
    if not is_finite_number(num_samples) or num_samples <= 0:
        raise HemError(f"loss {loss!r}: num_samples must be a positive number, got {num_samples!r}")
    return (float(num_samples) / num_classes,) * num_classes
