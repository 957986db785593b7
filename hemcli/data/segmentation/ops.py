"""Tensor operations on segmentation batches: padding to the network's stride and cropping back,
paired augmentation (the same crop and flip for an image and its mask), and a DataLoader collate
that pads images of different sizes into one batch.

Masks are padded with the ignore index, never with a class, so padding adds no pixels to the loss
or the metric; images are padded with 0.
"""
from __future__ import annotations

import torch
from torch import nn


def pad_to_multiple(images: torch.Tensor, masks: torch.Tensor | None, multiple: int = 32,
                    ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]:
    """Pad images (N, C, H, W) with 0 and masks (N, H, W) with ``ignore_index`` at the bottom and right
    up to a multiple of ``multiple`` (an FPN halves the size five times); also returns the original
    (H, W), for ``crop_to``. ``masks`` may be None (prediction only)."""
    if masks is not None and ignore_index is None:
        raise TypeError("pad_to_multiple needs ignore_index to pad masks")
    height, width = images.shape[-2:]
    extra_h, extra_w = -height % multiple, -width % multiple
    if extra_h or extra_w:
        images = nn.functional.pad(images, (0, extra_w, 0, extra_h))
        if masks is not None:
            masks = nn.functional.pad(masks, (0, extra_w, 0, extra_h), value=ignore_index)
    return images, masks, (height, width)


def crop_to(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The top-left (H, W) = ``size`` of logits (N, C, H', W') or predictions (N, H', W')."""
    return tensor[..., :size[0], :size[1]]


def augment_pairs(images: torch.Tensor, masks: torch.Tensor, crop: tuple[int, int] | None, flip: bool,
                  generator: torch.Generator, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of a batch (on any device), one random ``crop`` (height, width) and, with ``flip``, a
    horizontal mirror with probability 1/2, applied alike to the image and its mask by one gather each.

    A crop larger than the images pads them on both sides by the difference (images 0, masks
    ``ignore_index``) first, so the whole image lands somewhere random inside the crop. The draws come
    from ``generator`` (a CPU one; they are moved to the batch's device)."""
    n, _, height, width = images.shape
    crop_h, crop_w = crop or (height, width)
    pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
    if pad_h or pad_w:
        images = nn.functional.pad(images, (pad_w, pad_w, pad_h, pad_h))
        masks = nn.functional.pad(masks, (pad_w, pad_w, pad_h, pad_h), value=ignore_index)
    dy = torch.randint(0, images.shape[-2] - crop_h + 1, (n,), generator=generator)
    dx = torch.randint(0, images.shape[-1] - crop_w + 1, (n,), generator=generator)
    mirror = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    rows, cols = _grid(dy, dx, mirror, crop_h, crop_w, images.device)
    batch = torch.arange(n, device=images.device)[:, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return images[batch[:, None], channels, rows[:, None], cols[:, None]], masks[batch, rows, cols]


def _grid(dy, dx, mirror, crop_h: int, crop_w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row (n, h, 1) and column (n, 1, w) indices of each crop, the columns reversed where mirrored."""
    dy, dx, mirror = dy.to(device), dx.to(device), mirror.to(device)
    rows = (dy[:, None] + torch.arange(crop_h, device=device))[:, :, None]
    cols = (dx[:, None] + torch.arange(crop_w, device=device))[:, None, :]
    return rows, torch.where(mirror[:, None, None], cols.flip(-1), cols)


def pad_collate(batch: list[tuple[torch.Tensor, torch.Tensor]],
                ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A DataLoader ``collate_fn`` (bind ``ignore_index`` with functools.partial) for streamed sets, whose
    images differ in size: each pair padded at the bottom and right to the batch's largest, stacked."""
    height = max(image.shape[-2] for image, _ in batch)
    width = max(image.shape[-1] for image, _ in batch)
    images, masks = [], []
    for image, mask in batch:
        right, bottom = width - image.shape[-1], height - image.shape[-2]
        images.append(nn.functional.pad(image, (0, right, 0, bottom)))
        masks.append(nn.functional.pad(mask, (0, right, 0, bottom), value=ignore_index))
    return torch.stack(images), torch.stack(masks)
