"""The records of ``hem segment``'s datasets: ``SegmentationData``, one loaded split (tensors in
memory, or a Dataset of (image, mask) pairs read from disk per item), and ``SegmentationInfo``, a
dataset of the registry (``hemcli.data.segmentation``). Kept apart from the registry so that the
readers (``folders``, ``shapes``) build them without importing it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.utils.data

from hemcli.errors import HemError


@dataclass
class SegmentationData:
    """One split: in-memory ``images`` and ``masks``, or a ``dataset`` of (image, mask) pairs.

    ``files`` are the label files the masks come from, in item order (empty for a generated set);
    the class-count cache is keyed by them. ``whole`` is the full split when this is a ``limited``
    part of it: class counts are the whole split's, so the loss a smoke run builds is the full run's."""

    num_classes: int
    ignore_index: int
    images: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    dataset: torch.utils.data.Dataset | None = None
    files: tuple[Path, ...] = ()
    whole: "SegmentationData | None" = field(default=None, repr=False)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def __len__(self) -> int:
        return len(self.masks) if self.in_memory else len(self.dataset)

    def iter_masks(self):
        """The masks, as one tensor when in memory, else one (H, W) tensor per item (read without its
        image where the dataset can)."""
        if self.in_memory:
            yield self.masks
            return
        read = getattr(self.dataset, "mask", None) or (lambda i: self.dataset[i][1])
        for index in range(len(self.dataset)):
            yield read(index)

    def as_tensors(self, max_bytes: int = 4 << 30) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, masks) as tensors, reading a streamed set whole: it must be of one image size and
        take at most ``max_bytes``."""
        if self.in_memory:
            return self.images, self.masks
        first_image, first_mask = self.dataset[0]
        need = len(self.dataset) * (first_image.numel() + 8 * first_mask.numel())
        if need > max_bytes:
            raise HemError(f"{len(self.dataset)} images of {first_image.shape[2]}x{first_image.shape[1]} take "
                           f"{need / 2**30:.1f} GiB as tensors, over the limit of {max_bytes / 2**30:.1f} GiB; stream them")
        images, masks = [first_image], [first_mask]
        for index in range(1, len(self.dataset)):
            image, mask = self.dataset[index]
            if image.shape != first_image.shape:
                name = getattr(self.dataset, "name", lambda i: f"item {i}")(index)
                raise HemError(f"{name} is {image.shape[2]}x{image.shape[1]}, the first image "
                               f"{first_image.shape[2]}x{first_image.shape[1]}; tensors need one size")
            images.append(image)
            masks.append(mask)
        return torch.stack(images), torch.stack(masks)

    def limited(self, limit: int | None) -> "SegmentationData":
        """At most ``limit`` items, a fixed random subset (the same for every seed), for smoke runs."""
        if limit is None or limit >= len(self):
            return self
        pick = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:limit].sort().values
        files = tuple(self.files[i] for i in pick.tolist()) if self.files else ()
        if self.in_memory:
            return SegmentationData(self.num_classes, self.ignore_index, self.images[pick], self.masks[pick],
                                    files=files, whole=self.whole or self)
        subset = getattr(self.dataset, "subset", None)
        dataset = subset(pick.tolist()) if subset else torch.utils.data.Subset(self.dataset, pick.tolist())
        return SegmentationData(self.num_classes, self.ignore_index, dataset=dataset, files=files,
                                whole=self.whole or self)


@dataclass(frozen=True)
class SegmentationInfo:
    """A segmentation dataset: ``loader(root, split)``, its classes and ignore index, whether it loads
    into memory, the splits it has (``test_split`` is the one a run is evaluated on) and its files."""

    name: str
    loader: Callable[[str | None, str], SegmentationData]
    num_classes: int
    ignore_index: int
    class_names: tuple[str, ...]
    in_memory: bool
    description: str
    splits: tuple[str, ...] = ("train", "test")
    test_split: str = "test"
    files: str = ""  # the layout under --data-root, and where to get it

    def __post_init__(self):
        if len(self.class_names) != self.num_classes or self.test_split not in self.splits:
            raise ValueError(f"segmentation dataset {self.name}: class names or splits do not match")
