"""The loaded classification sets and where they are read from (Appendix B.1.1).

Sets that fit in memory load as an ``ArrayData`` of tensors: the training images as stored (uint8
for the colour sets, float in [0, 1] for the MNIST family), the test images as float in [0, 1].
The training loop moves them to the device once and batches and augments them there
(airbench-style, ``hemcli.engine.batches``). ImageNet is too large for that: it loads as a ``StreamData``
of two ImageFolders, streamed through a DataLoader with workers. ``limited`` takes a fixed part of
either for smoke runs; ``data_root`` is the folder every loader reads under.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.utils.data

from hemcli.errors import HemError


@dataclass
class ArrayData:
    """Images (N, C, H, W) float32 in [0, 1] and int64 labels, split into train and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    # Images of classes kept out of training and test (``digits-heldout``): an unknown set of its own.
    held_out_x: torch.Tensor | None = None
    # The class counts of the whole training set when this is a ``limited`` part of it
    full_counts: list[int] | None = None
    # The real unknown sets by name (None: absent), found and read before training when the run
    # measures ``ood`` (``hemcli.evaluation.suite.preflight``), so a bad file fails before it trains
    real_unknown: dict | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def class_counts(self) -> list[int]:
        """Training samples per class (of the whole set, where this is a ``limited`` part of it)."""
        return self.full_counts or torch.bincount(self.train_y, minlength=self.num_classes).tolist()


@dataclass
class StreamData:
    """A set read from disk batch by batch: map-style datasets of (float (C, H, W) in [0, 1], label)."""

    train: object  # torch.utils.data.Dataset
    test: object
    num_classes: int
    input_shape: tuple[int, ...] = (3, 224, 224)
    full_counts: list[int] | None = None

    @property
    def train_y(self) -> torch.Tensor:
        from hemcli.engine.batches import targets_of
        return targets_of(self.train)

    @property
    def test_y(self) -> torch.Tensor:
        from hemcli.engine.batches import targets_of
        return targets_of(self.test)

    def class_counts(self) -> list[int]:
        return self.full_counts or torch.bincount(self.train_y, minlength=self.num_classes).tolist()


def limited(data, limit: int | None):
    """At most ``limit`` images of each split (a fixed random subset, the same for every seed), for
    smoke runs; ``data`` itself when ``limit`` is None. The class counts stay the whole training
    set's, so a loss built from them (HEM's margins) is the one the full run uses."""
    if limit is None:
        return data
    pick = lambda n: torch.randperm(n, generator=torch.Generator().manual_seed(0))[:limit].sort().values  # noqa: E731
    if isinstance(data, StreamData):
        subset = torch.utils.data.Subset
        return StreamData(subset(data.train, pick(len(data.train)).tolist()),
                          subset(data.test, pick(len(data.test)).tolist()), data.num_classes, data.input_shape,
                          data.class_counts())
    train, test = pick(len(data.train_y)), pick(len(data.test_y))
    return ArrayData(data.train_x[train], data.train_y[train], data.test_x[test], data.test_y[test],
                     data.num_classes, data.held_out_x, data.class_counts())


def data_root(root: str | None) -> Path:
    """``--data-root``, else ``$HEM_DATA``, else ``./data``; it may be missing, but not a file."""
    path = Path(root or os.environ.get("HEM_DATA") or "data").expanduser()
    if path.exists() and not path.is_dir():
        raise HemError(f"data root {path} is not a folder")
    return path
