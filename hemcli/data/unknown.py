"""Unknown-class ("out-of-distribution") sets for the rejection evaluation (paper, Appendix B).

Four synthetic sets are built from the known test images (``synthetic_set``); the real ones are read
from the data folder (``unknown_real``, re-exported here); ``held_out_split`` makes a dataset's own
held-out classes its unknown set (``digits-heldout``).

The synthetic sets, each of ``n`` images shaped like the test images (N, C, H, W), pixels in [0, 1]:

- ``blobs``: Outlier Exposure's blobs (Hendrycks et al. 2019, their test scripts): pixels
  Bernoulli(0.7), a Gaussian blur (scikit-image's ``gaussian``: mode "nearest", truncate 4), then every
  value below 0.75 set to 0. OE's 32x32x3 images use sigma 1.5 (not 1.0; some 64x64 adaptations
  use 2) and, called with ``multichannel=False``, blur across the three colour channels too (the
  array is treated as one 3-D volume). Here the spatial sigma scales with the image, 1.5 * H / 32
  (28x28: 1.3125; 8x8: 0.375, where the blobs shrink to single pixels), and the channel sigma stays
  1.5 (the channel axis does not grow with the image). Kept pixels lie
  in [0.75, 1], the others are exactly 0: about 66% of a 28x28 grey image and 79% of a 32x32 RGB
  one (measured; a normal approximation of the blurred sum, in the tests, gives 68% and 80%).
- ``uniform``: every value independently U[0, 1).
- ``permuted``: test images with their pixel positions randomly permuted, one permutation per image;
  an RGB pixel moves as a whole, so each image keeps its multiset of pixels (and of colours).
- ``phase``: test images with the phase of each channel's 2-D Fourier transform replaced by the
  phase of the transform of a real white-noise image (one noise image per image, shared by its
  channels so that colours stay coherent), the amplitude kept: ``real(ifft2(|F(x)| e^{i angle F(noise)}))``.
  Noise is real, so its phase is Hermitian-antisymmetric and the inverse is real. The DC term keeps
  the image's own phase (0: a noise sum below zero would otherwise negate the mean brightness).
  The result is neither clipped nor rescaled, so the amplitude spectrum stays exact; values do
  leave [0, 1]: a sum of randomly shifted sinusoids is nearly Gaussian, and for Fashion-MNIST about
  24% of the pixels fall outside, within about [-1.1, 2.0].

Test images are chosen as a seeded subset without replacement when ``n`` <= N, else cycled in order.
Every set is drawn from a local ``torch.Generator`` seeded with ``seed`` (never the global RNG), on
the CPU, so the same seed gives the same tensor on any machine.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch

from hemcli.data.unknown_real import (HELD_OUT, REAL_SETS, REAL_UNKNOWN, RealUnknown, find_real_unknown,
                                      load_real_unknown, real_unknown_sets, real_unknown_source)
from hemcli.errors import HemError, unknown_name

__all__ = ["SYNTHETIC_SETS", "synthetic_set", "blob_sigma", "blobs_from_bits", "held_out_split",
           "HELD_OUT", "REAL_SETS", "REAL_UNKNOWN", "RealUnknown", "find_real_unknown", "load_real_unknown",
           "real_unknown_sets", "real_unknown_source"]

SYNTHETIC_SETS = ("blobs", "uniform", "permuted", "phase")

BLOB_P = 0.7            # share of ones before the blur (OE)
BLOB_THRESHOLD = 0.75   # blurred values below it become 0 (OE)
BLOB_SIGMA_32 = 1.5     # OE's sigma for 32x32 images, also its sigma across channels
_CHUNK = 1024           # images per step, which bounds the temporary memory


def synthetic_set(name: str, test_x: torch.Tensor, n: int = 10000, seed: int = 0) -> torch.Tensor:
    """``n`` images of the synthetic set ``name`` (float32 (n, C, H, W) on the CPU) for test images
    ``test_x`` (N, C, H, W) in [0, 1]; see the module docstring for each recipe."""
    if name not in SYNTHETIC_SETS:
        raise unknown_name("unknown set", name, SYNTHETIC_SETS)
    if test_x.dim() != 4 or len(test_x) == 0:
        raise HemError(f"synthetic sets need test images shaped (N, C, H, W), got {tuple(test_x.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise HemError(f"the number of unknown images must be a positive integer, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    x = test_x.detach().to("cpu", torch.float32)
    return _MAKERS[name](x, n, generator)


def _uniform(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Each value independently U[0, 1)."""
    return torch.rand((n, *x.shape[1:]), generator=generator)


def blob_sigma(height: int) -> float:
    """The blobs' spatial blur sigma for images ``height`` pixels high: OE's 1.5 at 32, in proportion."""
    return BLOB_SIGMA_32 * height / 32


def _blobs(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Bernoulli(0.7) pixels, blurred and thresholded (``blobs_from_bits``)."""
    out = torch.empty((n, *x.shape[1:]))
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        bits = (torch.rand((count, *x.shape[1:]), generator=generator) < BLOB_P).float()
        out[start:start + count] = blobs_from_bits(bits)
    return out


def blobs_from_bits(bits: torch.Tensor) -> torch.Tensor:
    """OE's blob step on 0/1 images (n, C, H, W): Gaussian blur (sigmas 1.5 across channels,
    ``blob_sigma`` along H and W; edges repeated, kernel cut at 4 sigma, as scikit-image's
    ``gaussian`` which OE calls), then values below 0.75 set to 0."""
    from scipy.ndimage import gaussian_filter

    _, _, height, width = bits.shape
    sigma = (0.0, BLOB_SIGMA_32, blob_sigma(height), blob_sigma(width))
    blurred = torch.from_numpy(gaussian_filter(bits.numpy().astype("float32"), sigma=sigma,
                                               mode="nearest", truncate=4.0))
    return blurred.masked_fill_(blurred < BLOB_THRESHOLD, 0.0)


def _sources(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of the test images to transform: a seeded subset without replacement, else cycling."""
    if n <= count:
        return torch.randperm(count, generator=generator)[:n]
    return torch.arange(n) % count


def _permuted(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Test images with their H*W pixel positions permuted (one permutation per image, channels
    of a pixel moving together)."""
    _, channels, height, width = x.shape
    chosen = _sources(len(x), n, generator)
    out = torch.empty((n, channels, height * width))
    for start in range(0, n, _CHUNK):
        images = x[chosen[start:start + _CHUNK]].reshape(-1, channels, height * width)
        # argsort of uniform noise: a uniformly random permutation per row, all rows in one call
        order = torch.rand((len(images), height * width), generator=generator).argsort(dim=1)
        out[start:start + len(images)] = images.gather(2, order[:, None, :].expand_as(images))
    return out.reshape(n, channels, height, width)


def _phase(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Test images with each channel's Fourier phase replaced by a white-noise image's phase."""
    _, channels, height, width = x.shape
    chosen = _sources(len(x), n, generator)
    out = torch.empty((n, channels, height, width))
    for start in range(0, n, _CHUNK):
        images = x[chosen[start:start + _CHUNK]].double()
        noise = torch.randn((len(images), 1, height, width), generator=generator, dtype=torch.float64)
        spectrum = torch.fft.fft2(images)
        phase = torch.fft.fft2(noise).angle().expand_as(spectrum).clone()
        phase[..., 0, 0] = spectrum[..., 0, 0].angle()
        mixed = torch.polar(spectrum.abs(), phase)
        out[start:start + len(images)] = torch.fft.ifft2(mixed).real.float()
    return out


_MAKERS: dict[str, Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]] = {
    "blobs": _blobs, "uniform": _uniform, "permuted": _permuted, "phase": _phase,
}


def held_out_split(x: torch.Tensor, y: torch.Tensor, known_classes: Sequence[int]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split labelled images into the known classes and the rest (the unknown set).

    Returns ``(known_x, known_y, unknown_x)``: the images whose label is in ``known_classes`` with
    labels renumbered by position (``known_classes[i]`` becomes ``i``), and the other images.
    """
    known = [int(c) for c in known_classes]
    if not known or len(set(known)) != len(known):
        raise HemError(f"known classes must be distinct and not empty, got {list(known_classes)}")
    present = set(torch.unique(y).tolist())
    absent = [c for c in known if c not in present]
    if absent:
        raise HemError(f"known class(es) {absent} do not occur in the labels; present: {sorted(present)}")
    if present <= set(known):
        raise HemError(f"every class present ({sorted(present)}) is known: nothing is held out")
    relabel = torch.full((max(present | set(known)) + 1,), -1, dtype=torch.int64)
    relabel[torch.tensor(known)] = torch.arange(len(known))
    is_known = relabel[y] >= 0
    return x[is_known], relabel[y[is_known]], x[~is_known]
