"""Hendrycks & Dietterich's common corruptions for RGB images, through the ``imagecorruptions``
package (the maintained fork ``imagecorruptions-imaug``, same import name).

``RGB_NAMES`` is ``imagecorruptions.get_corruption_names('all')``: the 15 common corruptions then
the 4 extra ("validation") ones, each at severities 1..5.

Two things the package needs:

- Size: it refuses images under 32x32. Smaller images are padded up to 32 on each short side by
  reflection (half before, half after), corrupted, and the original window is cropped back. The
  corruption then sees the reflected border as image content (a blur pulls in mirrored pixels
  rather than zeros), and noise patterns are drawn at the padded size.
- Seeds: most corruptions draw from numpy's global RNG; ``glass_blur`` and ``impulse_noise``
  take a ``seed`` argument instead (a fresh generator otherwise). Each image gets its own seed
  (``corrupt_rgb``'s ``seed``), set both ways right before the call, so the output does not depend
  on which process or in which order the images are done.
"""
from __future__ import annotations

import warnings

import numpy as np

RGB_NAMES: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_SIDE = 32  # imagecorruptions' smallest accepted height and width
_SEED_ARGUMENT = {"glass_blur", "impulse_noise"}  # these ignore numpy's global RNG


def pad_to(img: np.ndarray, side: int = MIN_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an (H, W, ...) image to at least ``side`` x ``side``; the padded image and the
    (top, left) corner of the original inside it."""
    h, w = img.shape[:2]
    extra_h, extra_w = max(0, side - h), max(0, side - w)
    top, left = extra_h // 2, extra_w // 2
    widths = [(top, extra_h - top), (left, extra_w - left)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, widths, mode="reflect"), (top, left)


def corrupt_rgb(img: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions' ``name`` at ``severity`` of a uint8 (H, W, 3) image -> uint8 (H, W, 3).

    ``seed`` (0 <= seed < 2**32) fixes every random draw of the call.
    """
    from imagecorruptions import corrupt

    h, w = img.shape[:2]
    padded, (top, left) = pad_to(np.ascontiguousarray(img))
    np.random.seed(seed)
    extra = {"seed": seed} if name in _SEED_ARGUMENT else {}
    with warnings.catch_warnings():  # the package's own deprecation noise, once per image
        warnings.simplefilter("ignore")
        out = corrupt(padded, corruption_name=name, severity=severity, **extra)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out[top: top + h, left: left + w])
