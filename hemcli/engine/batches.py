"""Training mini-batches: ``TensorBatches`` for sets that live on the device (uint8 or float
tensors, augmented a whole batch at a time there, no per-image Python), ``LoaderBatches`` for sets
too large for memory (ImageNet), streamed through a DataLoader with workers and pinned memory.

Both yield ``(x, y, weight)``: float inputs in [0, 1] on the device, labels, and the factor that
makes a data-parallel run's averaged gradient the gradient of the whole global batch (``Shard``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.data
from torch import nn


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; float images pass unchanged."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


@dataclass(frozen=True)
class Shard:
    """This process's part of every global batch in a run over ``world`` processes (DDP)."""

    rank: int = 0
    world: int = 1

    def bounds(self, n: int) -> tuple[int, int]:
        """[start, end) of this rank's part of n samples; parts differ in size by one at most."""
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def batches(self, size: int, batch_size: int) -> int:
        """Global batches of an epoch over ``size`` samples: a last one smaller than the world is
        dropped, since a rank without a sample cannot take part in the gradient's average."""
        full, rest = divmod(size, batch_size)
        return full + (rest >= self.world)

    def weight(self, n: int) -> float:
        """Loss factor for this rank's part of a global batch of n: DDP averages the ranks'
        gradients, so each rank's mean loss is scaled by (its size * world / n) to make that
        average the mean over all n samples, also when n does not divide evenly."""
        start, end = self.bounds(n)
        return (end - start) * self.world / n


def epoch_order(labels: torch.Tensor, generator: torch.Generator, balanced: bool = False) -> torch.Tensor:
    """The sample indices of one epoch, shuffled: each sample once, or with ``balanced`` (random
    oversampling, Appendix E.1) every class as often as the largest: a class of n_j samples gives each
    of them floor(n_max / n_j) times and n_max mod n_j more drawn without replacement, so an epoch
    holds C * n_max samples (classes without samples stay out)."""
    if not balanced:
        return torch.randperm(len(labels), generator=generator)
    labels = labels.cpu()
    counts = torch.bincount(labels)
    most = int(counts.max())
    parts = []
    for j in counts.nonzero().flatten().tolist():
        members = (labels == j).nonzero().flatten()
        repeats, extra = divmod(most, len(members))
        picked = members[torch.randperm(len(members), generator=generator)[:extra]]
        parts += [members.repeat(repeats), picked]
    order = torch.cat(parts)
    return order[torch.randperm(len(order), generator=generator)]


def epoch_size(labels: torch.Tensor, balanced: bool = False) -> int:
    """Samples in an ``epoch_order``: every sample once, or C * n_max when oversampling."""
    if not balanced:
        return len(labels)
    counts = torch.bincount(labels.cpu())
    return int((counts > 0).sum()) * int(counts.max())


def draw_crop_flip(n: int, generator: torch.Generator, pad: int = 4) -> tuple[torch.Tensor, ...]:
    """The random shifts (dy, dx in 0..2*pad) and mirror flags of n images."""
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    return dy, dx, torch.rand(n, generator=generator) < 0.5


def apply_crop_flip(x: torch.Tensor, params: tuple[torch.Tensor, ...], pad: int = 4) -> torch.Tensor:
    """Crop each zero-padded image at its (dy, dx) and mirror the flagged ones, by one gather."""
    n, _, h, w = x.shape
    dy, dx, flip = (p.to(x.device) for p in params)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad``, and a random horizontal flip, per image."""
    return apply_crop_flip(x, draw_crop_flip(len(x), generator, pad), pad)


class TensorBatches:
    """Shuffled mini-batches of tensors that already live on the device (no workers, no copies).

    Every rank draws the same permutation and augmentation of each global batch from its own
    generator (seeded alike) and takes its ``shard`` of it, so N processes see the batches one
    process would."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator,
                 augment: str = "none", shard: Shard = Shard(), balanced: bool = False, transform=None):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator, self.augment, self.shard, self.balanced = generator, augment, shard, balanced
        self.transform = transform  # (x, y, generator) -> (x, y) of a global batch: paired augmentation
        self.size = epoch_size(y, balanced)

    def __len__(self) -> int:
        return self.shard.batches(self.size, self.batch_size)

    def __iter__(self):
        order = epoch_order(self.y, self.generator, self.balanced).to(self.y.device)
        for begin in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[begin:begin + self.batch_size]
            params = draw_crop_flip(len(idx), self.generator) if self.augment == "crop_flip" else None
            start, end = self.shard.bounds(len(idx))
            if self.transform is not None:  # drawn for the whole global batch, so every rank draws alike
                x, y = self.transform(self.x[idx], self.y[idx], self.generator)
                yield to_unit(x[start:end]), y[start:end], self.shard.weight(len(idx))
                continue
            x = self.x[idx[start:end]]
            if params is not None:
                x = apply_crop_flip(x, tuple(p[start:end] for p in params))
            yield to_unit(x), self.y[idx[start:end]], self.shard.weight(len(idx))


def targets_of(dataset) -> torch.Tensor:
    """The labels of a map-style dataset: an ImageFolder's ``targets``, a TensorDataset's second
    tensor, through Subsets."""
    if isinstance(dataset, torch.utils.data.Subset):
        return targets_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.int64)]
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return dataset.tensors[1]
    return torch.as_tensor(dataset.targets, dtype=torch.int64)


def worker_errors_as_one_line(batches):
    """``batches`` (a DataLoader's), with a HemError raised in a worker (a bad file) re-raised as the one
    line it was: PyTorch re-raises it in this process with the worker's traceback in its message."""
    from hemcli.errors import HemError

    try:
        yield from batches
    except HemError as err:
        text = str(err)
        if "Original Traceback" not in text:
            raise
        raise HemError(text.strip().splitlines()[-1].split("HemError: ", 1)[-1]) from None


class LoaderBatches:
    """Mini-batches streamed from a map-style dataset of (image tensor, label) by a DataLoader with
    ``workers`` processes and pinned memory, sharded like ``TensorBatches``.

    For (image, mask) pairs of different sizes: ``collate`` makes a batch of them (padding), and
    ``transform(x, y, generator) -> (x, y)`` augments each batch on the device (the same draws for both)."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, device: torch.device,
                 workers: int = 2, shard: Shard = Shard(), balanced: bool = False, collate=None, transform=None):
        self.dataset, self.batch_size, self.generator = dataset, batch_size, generator
        self.device, self.workers, self.shard, self.balanced = device, workers, shard, balanced
        self.collate, self.transform = collate, transform
        # only oversampling needs the labels: a segmentation set has masks, not labels
        self.labels = targets_of(dataset) if balanced else None
        self.size = epoch_size(self.labels, True) if balanced else len(dataset)

    def __len__(self) -> int:
        return self.shard.batches(self.size, self.batch_size)

    def _plan(self) -> tuple[list[list[int]], list[float]]:
        order = (epoch_order(self.labels, self.generator, True) if self.balanced
                 else torch.randperm(len(self.dataset), generator=self.generator)).tolist()  # as epoch_order
        parts, weights = [], []
        for begin in range(0, len(self) * self.batch_size, self.batch_size):
            batch = order[begin:begin + self.batch_size]
            start, end = self.shard.bounds(len(batch))
            parts.append(batch[start:end])
            weights.append(self.shard.weight(len(batch)))
        return parts, weights

    def __iter__(self):
        from torch.utils.data import DataLoader

        parts, weights = self._plan()
        # the workers' augmentation seeds come from this generator, so a seed repeats a run
        seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        loader = DataLoader(self.dataset, batch_sampler=parts, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda",
                            generator=torch.Generator().manual_seed(seed),
                            persistent_workers=False, collate_fn=self.collate)
        for (x, y), weight in zip(worker_errors_as_one_line(loader), weights):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.transform is not None:
                x, y = self.transform(x, y, self.generator)
            yield to_unit(x), y, weight
