"""The generated ``shapes`` set, the offline default of ``hem segment``: no files, the same tensors
for the same seed on every machine (drawn on the CPU from a torch.Generator).

Each image is ``size`` x ``size`` RGB: a textured grey-ish background (a random tint, sinusoidal
stripes, pixel noise) with up to ``per_image`` filled circles, rectangles and triangles laid over each
other. A shape's colour is its class's hue with a per-shape jitter and the same pixel noise, so colour
helps but a pixel's class is not a lookup of its value. Classes: 0 background, 1 circle,
2 rectangle, 3 triangle. With ``border`` > 0 the outermost pixels of every mask are ``ignore_index``,
so the training and metric code's ignore handling is exercised on the offline set too.
``load_shapes`` is the registry's loader: a fixed draw per split.
"""
from __future__ import annotations

import math

import torch

from hemcli.data.segmentation.records import SegmentationData
from hemcli.errors import unknown_name

SHAPE_CLASSES = ("background", "circle", "rectangle", "triangle")
# the class hues (circle, rectangle, triangle), far enough apart that the jitter below keeps them apart
_HUES = torch.tensor([[205.0, 70.0, 60.0], [60.0, 185.0, 75.0], [70.0, 95.0, 210.0]])
_JITTER, _NOISE = 35.0, 14.0


def make_shapes(n: int, seed: int, size: int = 64, per_image: int = 4, border: int = 1,
                ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images uint8 (n, 3, size, size) and masks int64 (n, size, size), fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    image = _background(n, yy, xx, g)
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    for slot in range(per_image):
        kind = torch.randint(1, len(SHAPE_CLASSES), (n,), generator=g)
        # the first shape is always drawn, later ones with probability 0.7: 1 to per_image shapes
        drawn = (torch.rand(n, generator=g) < 0.7) | (slot == 0)
        inside = _inside(kind, yy, xx, size, g) & drawn[:, None, None]
        colour = _HUES[kind - 1] + (torch.rand(n, 3, generator=g) * 2 - 1) * _JITTER
        image = torch.where(inside[:, None], colour[:, :, None, None], image)
        mask = torch.where(inside, kind[:, None, None], mask)
    image = image + torch.randn(image.shape, generator=g) * _NOISE
    if border:
        edge = torch.ones(size, size, dtype=torch.bool)
        edge[border:-border, border:-border] = False
        mask[:, edge] = ignore_index
    return image.round().clamp_(0, 255).to(torch.uint8), mask


def _background(n: int, yy: torch.Tensor, xx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Grey levels 70-170 with a small tint per channel, and stripes of random angle and period."""
    grey = 70 + torch.rand(n, 1, generator=g) * 100
    base = grey + (torch.rand(n, 3, generator=g) * 2 - 1) * 20
    angle = torch.rand(n, generator=g) * math.pi
    frequency = 0.15 + torch.rand(n, generator=g) * 0.45
    phase = torch.rand(n, generator=g) * 2 * math.pi
    along = xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None]
    stripes = 25 * torch.sin(along * frequency[:, None, None] + phase[:, None, None])
    return base[:, :, None, None] + stripes[:, None]


def _inside(kind: torch.Tensor, yy: torch.Tensor, xx: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """(n, H, W) bool: the pixels of each image's shape of ``kind`` at a random place and size."""
    n = len(kind)
    cy, cx = (torch.rand(2, n, generator=g) * size)[:, :, None, None]
    radius = (size * (0.09 + torch.rand(n, generator=g) * 0.16))[:, None, None]
    aspect = (0.5 + torch.rand(n, generator=g) * 0.5)[:, None, None]
    inside = torch.empty(n, size, size, dtype=torch.bool)
    for shape, test in enumerate((_circle, _rectangle, _triangle), 1):
        pick = kind == shape  # each image's test runs only for its own kind of shape
        inside[pick] = test(yy - cy[pick], xx - cx[pick], radius[pick], aspect[pick])
    return inside


def _circle(dy, dx, radius, aspect):
    return dy ** 2 + dx ** 2 <= radius ** 2


def _rectangle(dy, dx, radius, aspect):
    return (dy.abs() <= radius * aspect) & (dx.abs() <= radius)


def _triangle(dy, dx, radius, aspect):
    # apex at the top, widening downwards to a base 1.2 radii wide each side
    down = dy + radius
    return (down >= 0) & (down <= 2 * radius) & (dx.abs() <= 0.6 * down)


SHAPES_SIZES = {"train": 512, "test": 128}


def load_shapes(root: str | None = None, split: str = "train") -> SegmentationData:
    """The generated shapes ``split`` (``root`` unused): 64x64, 4 classes, a 1-pixel ignored border."""
    if split not in SHAPES_SIZES:
        raise unknown_name("shapes split", split, SHAPES_SIZES)
    # seed 0 for train, 1 for test: two different draws, the same on every machine
    images, masks = make_shapes(SHAPES_SIZES[split], seed=list(SHAPES_SIZES).index(split), border=1)
    return SegmentationData(len(SHAPE_CLASSES), 255, images, masks)
