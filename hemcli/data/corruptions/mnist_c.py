"""MNIST-C's 15 corruptions (Mu & Gilmer 2019, arXiv:1906.02337) for greyscale images of any size.

Each corruption takes one uint8 (H, W) image and a ``numpy.random.Generator`` and returns a uint8
(H, W) image, as the authors' code works on 0-255 images. MNIST-C has one severity per corruption:
the level each function of the authors' released code (google-research/mnist-c, ``corruptions.py``)
uses by default, which is the level the released set was made at:

==============  ==========================================================================
shot_noise      Poisson noise, c = 3 photons per unit intensity (imagecorruptions severity 5)
impulse_noise   salt-and-pepper, amount 0.17 (imagecorruptions severity 4)
glass_blur      Gaussian sigma 0.7, max shift 1 px, 2 passes; each pixel swapped with
                probability 1/2 (MNIST-C's coin flip; imagecorruptions always swaps)
motion_blur     radius 10, sigma 3, angle uniform in [-45, 45] degrees (see ``motion_blur``)
shear           0.4 rad, random sign, about the image centre (skimage's 2019 shear definition)
scale           zoom out by 0.7 (sampling matrix 1/0.7) about the centre
rotate          0.4 rad (23 degrees), random sign, about the centre
brightness      +0.5 on the HSV value (= clip(x + 0.5) for grey; imagecorruptions severity 5)
translate       3 px on each axis, random signs
stripe          invert the outer quarter columns (columns < 7 and >= 21 of 28)
fog             plasma fractal (diamond-square, 256x256, decay 1.4), strength 3.0
spatter         mud (imagecorruptions severity 4 parameters): N(0.65, 0.3) blurred by sigma 1,
                kept above 0.65, mask blurred by sigma 1.5 and kept from 0.8, colour 63/255
dotted_line     a line between random rows of the first and last column, 2-px dashes
zigzag          corners every 4 px along a line from column 2 to 25 (rising or falling up to
                5 px), alternately 2 px either side of it
canny_edges     skimage's Canny edge map (sigma 1) as a binary image
==============  ==========================================================================

Where the corruption is imagecorruptions' own and has no length in pixels (shot and impulse
noise, brightness), the library does it (grey repeated to RGB, padded to 32x32, one channel
kept). Glass blur, fog and spatter are written here: their blur widths must scale with the image
(below), and the library's glass blur swaps every pixel and its fog draws the fractal at the
image's size (MNIST-C crops 28x28 out of a 256x256 fractal, a much smoother fog).

Sizes: the authors' code is written for 28x28. Lengths in pixels (blur sigmas, motion radius,
shift, maximum glass-blur offset, line width, dash length) are multiplied by k = min(H, W) / 28
(integer ones rounded, at least 1), and line end points map the 0..27 grid onto 0..side-1, so an
8x8 digit gets the same look; at 28x28 every value is the authors'. Results are rounded to uint8.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import ndimage

MNIST_C_NAMES: tuple[str, ...] = (
    "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
    "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
)

Grey = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def to_u8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 0..255, rounded to nearest."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _k(img: np.ndarray) -> float:
    """Pixel-length scale against MNIST's 28 px."""
    return min(img.shape) / 28.0


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage's ``gaussian`` defaults (edge pixels repeated, truncated at 4 sigma)."""
    return ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=4.0)


# ---- the imagecorruptions ones --------------------------------------------------------------


def _library(name: str, severity: int) -> Grey:
    def corrupt(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from hemcli.data.corruptions.rgb import corrupt_rgb

        rgb = np.repeat(img[:, :, None], 3, axis=2)
        return corrupt_rgb(rgb, name, severity, int(rng.integers(2**32)))[:, :, 0].copy()

    corrupt.__doc__ = f"imagecorruptions' {name} at its severity {severity} (MNIST-C's level)."
    return corrupt


shot_noise = _library("shot_noise", 5)
impulse_noise = _library("impulse_noise", 4)
brightness = _library("brightness", 5)


# ---- blurs and weather ------------------------------------------------------------------------


def glass_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur (sigma 0.7k), 2 passes of local swaps (each pixel, with probability 1/2, with one up to
    ``delta`` px away, offsets in [-delta, delta)), blur again. The swaps run bottom-right to
    top-left one after another, as in the authors' code, so a pixel can travel several steps."""
    k = _k(img)
    sigma, delta, passes = 0.7 * k, max(1, round(k)), 2
    x = (_blur(img / 255.0, sigma) * 255.0).astype(np.uint8)  # truncated, like np.uint8() there
    h, w = x.shape
    rows, cols = np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1)
    src = np.tile((rows[:, None] * w + cols[None, :]).ravel(), passes)
    offsets = rng.integers(-delta, delta, size=(len(src), 2))
    flips = rng.random(len(src)) < 0.5
    flat = x.ravel().tolist()
    for a, b, flip in zip(src.tolist(), (src + offsets[:, 0] * w + offsets[:, 1]).tolist(), flips.tolist()):
        if flip:
            flat[a], flat[b] = flat[b], flat[a]
    x = np.asarray(flat, dtype=np.float64).reshape(h, w) / 255.0
    return to_u8(_blur(x, sigma))


def motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A one-sided line blur: out(p) = sum_i g_i in(p + round(i * (cos a, sin a))), i = 0 ..
    2 ceil(r) (r = 10k), g_i proportional to exp(-i^2 / (2 (3k)^2)), a uniform in [-45, 45] deg.

    MNIST-C calls ImageMagick's MotionBlurImage (radius 10, sigma 3), which builds this same
    kernel (width 2r + 1, half-Gaussian weights, offsets rounded half down along the angle); it
    is not available here. Differences: ImageMagick works in 16-bit and blends at the border
    by its virtual-pixel method; here the border pixels are repeated and the result rounded.
    """
    k = _k(img)
    angle = math.radians(rng.uniform(-45.0, 45.0))
    width = 2 * math.ceil(10 * k) + 1
    steps = np.arange(width)
    weights = np.exp(-steps**2 / (2 * (3 * k) ** 2))
    weights /= weights.sum()
    dy = np.ceil(steps * math.sin(angle) - 0.5).astype(int)
    dx = np.ceil(steps * math.cos(angle) - 0.5).astype(int)
    h, w = img.shape
    padded = np.pad(img / 255.0, width, mode="edge")
    out = sum(g * padded[width + oy: width + oy + h, width + ox: width + ox + w]
              for g, oy, ox in zip(weights, dy, dx))
    return to_u8(out)


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) height map in [0, 1] by the diamond-square algorithm on a torus.

    Each step sets the new points to the mean of their 4 neighbours plus uniform noise of
    amplitude a^2 (a = 100, divided by ``decay`` per halving), as in Hendrycks' and MNIST-C's fog.
    ``size`` must be a power of two.
    """
    grid = np.zeros((size, size))
    step, amp = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[0::step, 0::step]
        square = corners + np.roll(corners, -1, 0)
        square = square + np.roll(square, -1, 1)
        grid[half::step, half::step] = square / 4 + amp * rng.uniform(-amp, amp, square.shape)
        centres = grid[half::step, half::step]
        across = corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)
        grid[0::step, half::step] = across / 4 + amp * rng.uniform(-amp, amp, across.shape)
        down = corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)
        grid[half::step, 0::step] = down / 4 + amp * rng.uniform(-amp, amp, down.shape)
        step, amp = half, amp / decay
    grid -= grid.min()
    return grid / grid.max()


def fog(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """out = clip((x + 3 F) * m / (m + 3)), m = max(x), F the top-left 28x28 of a 256x256 plasma
    fractal (decay 1.4), resized to the image for other sizes."""
    from skimage.transform import resize

    x = img / 255.0
    top = x.max()
    layer = plasma_fractal(256, 1.4, rng)[:28, :28]
    if layer.shape != x.shape:
        layer = resize(layer, x.shape, order=1, mode="edge", anti_aliasing=True)
    return to_u8((x + 3.0 * layer) * top / (top + 3.0))


def spatter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mud: L ~ N(0.65, 0.3) per pixel, blurred (sigma k); mask M = [L > 0.65] blurred (sigma
    1.5k) and zeroed below 0.8; out = x (1 - M) + 63/255 M."""
    k = _k(img)
    liquid = _blur(rng.normal(0.65, 0.3, size=img.shape), 1.0 * k)
    mask = _blur((liquid > 0.65).astype(np.float64), 1.5 * k)
    mask[mask < 0.8] = 0.0
    return to_u8(img / 255.0 * (1.0 - mask) + 63.0 / 255.0 * mask)


# ---- geometry -------------------------------------------------------------------------------


def _about_centre(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """skimage ``warp`` with inverse map p -> A (p - c) + c (p = (column, row), c the centre,
    13.5 for 28 px as in MNIST-C): bilinear, zero outside."""
    h, w = img.shape
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    full = np.eye(3)
    full[:2, :2] = matrix
    full[:2, 2] = centre - matrix @ centre
    return _warp(img, full)


def _warp(img: np.ndarray, full: np.ndarray) -> np.ndarray:
    """out(p) = in(full @ p) in homogeneous (column, row) coordinates, bilinear, 0 outside."""
    from skimage.transform import AffineTransform, warp

    out = warp(img / 255.0, inverse_map=AffineTransform(matrix=full), order=1, mode="constant", cval=0.0)
    return to_u8(out)


def _sign(rng: np.random.Generator) -> int:
    return int(rng.choice([-1, 1]))


def shear(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sampling matrix [[1, -sin s], [0, cos s]], s = +-0.4: skimage's AffineTransform(shear=s)
    when MNIST-C was made (skimage 0.22+ defines shear with tan instead)."""
    s = 0.4 * _sign(rng)
    return _about_centre(img, np.array([[1.0, -math.sin(s)], [0.0, math.cos(s)]]))


def rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by 0.4 rad (about 23 degrees) either way about the centre."""
    r = 0.4 * _sign(rng)
    return _about_centre(img, np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]]))


def scale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sampling matrix (1/0.7) I about the centre: the digit shrinks to 0.7 of its size."""
    return _about_centre(img, np.eye(2) / 0.7)


def translate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift by 3k px along each axis, each sign random (out(p) = in(p + (dx, dy)))."""
    d = 3.0 * _k(img)
    full = np.eye(3)
    full[:2, 2] = d * rng.choice([-1, 1], size=2)
    return _warp(img, full)


# ---- occlusions and edges ---------------------------------------------------------------------


def stripe(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert the left and right quarter: columns < round(W/4) and >= W - round(W/4)."""
    out = img.copy()
    n = round(img.shape[1] / 4)
    out[:, :n] = 255 - out[:, :n]
    out[:, img.shape[1] - n:] = 255 - out[:, img.shape[1] - n:]
    return out


def canny_edges(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """skimage's Canny (sigma k, default thresholds 0.1 / 0.2) as 0 / 255."""
    from skimage.feature import canny

    return canny(img / 255.0, sigma=1.0 * _k(img)).astype(np.uint8) * 255


def segment(shape: tuple[int, int], c0: float, r0: float, c1: float, r1: float, width: float) -> np.ndarray:
    """MNIST-C's line intensity: with d the vertical distance of a pixel to the line through
    (c0, r0) and (c1, r1), 1 + log(1 - d / width) clipped to [0, 1] (1 on the line, 0 from
    d >= width), only in columns floor(c0) .. ceil(c1) - 1; nothing for a vertical segment."""
    h, w = shape
    if c1 == c0:
        return np.zeros(shape)
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    dist = np.minimum(np.abs(rows - (r0 + (r1 - r0) / (c1 - c0) * (cols - c0))), width * (1 - 1e-10))
    line = np.clip(1.0 + np.log1p(-dist / width), 0.0, 1.0)
    line[:, : max(0, math.floor(c0))] = 0.0
    line[:, max(0, math.ceil(c1)):] = 0.0
    return line


def _grid(shape: tuple[int, int]) -> tuple[float, float]:
    """Factors mapping MNIST's 0..27 grid onto this image's columns and rows."""
    return (shape[1] - 1) / 27.0, (shape[0] - 1) / 27.0


def dotted_line(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A line (width 2.3k) from (column 0, row r0) to (column 27, row r1), r0, r1 uniform in 0..26,
    with dashes of round(2k) columns, the first one off; added to the image and clipped."""
    k, (cx, ry) = _k(img), _grid(img.shape)
    r0, r1 = rng.integers(0, 27, size=2)
    line = segment(img.shape, 0.0, r0 * ry, 27 * cx, r1 * ry, 2.3 * k)
    dash = max(1, round(2 * k))
    line[:, (np.arange(img.shape[1]) // dash) % 2 == 0] = 0.0
    return to_u8(img / 255.0 + line)


def zigzag_points(r0: int, r1: int, leg: float = 2.0, amplitude: float = 2.0) -> np.ndarray:
    """Corners (2, n) as (column, row) on the 28 grid of a zigzag from (2, r0) towards (25, r1).

    Along the straight line of length d: corners at (2i + 1) leg, alternately +-amplitude off the
    line, then the end point at d. The authors' code puts that end point at an offset of
    r_last / (2 (d - 4 floor(d / 4))), which is not on the zigzag and shoots far off for some d;
    here the last leg is cut at d (its offset interpolated linearly).
    """
    c0, c1 = 2.0, 25.0
    theta = math.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / math.cos(theta)
    count = int((d - leg) // (2 * leg)) + 1
    along = [0.0] + [(2 * i + 1) * leg for i in range(count)]
    off = [0.0] + [(-1) ** i * amplitude for i in range(count)]
    if d > along[-1]:
        along.append(d)
        off.append(off[-1] * (1 - (d - along[-2]) / leg))
    t, o = np.array(along), np.array(off)
    cos, sin = math.cos(theta), math.sin(theta)
    return np.stack([t * cos - o * sin + c0, t * sin + o * cos + r0])


def zigzag(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag (see ``zigzag_points``; r0 uniform in 0..26, r1 = r0 + uniform -5..4) drawn leg by
    leg with ``segment`` (width 2.3k), each added to the image and clipped."""
    k, (cx, ry) = _k(img), _grid(img.shape)
    r0 = int(rng.integers(0, 27))
    cols, rows = zigzag_points(r0, r0 + int(rng.integers(-5, 5)))
    x = img / 255.0
    for i in range(1, len(cols)):
        line = segment(img.shape, cols[i - 1] * cx, rows[i - 1] * ry, cols[i] * cx, rows[i] * ry, 2.3 * k)
        x = np.clip(x + line, 0.0, 1.0)
    return to_u8(x)


GREY_CORRUPTIONS: dict[str, Grey] = {
    "shot_noise": shot_noise, "impulse_noise": impulse_noise, "glass_blur": glass_blur,
    "motion_blur": motion_blur, "shear": shear, "scale": scale, "rotate": rotate,
    "brightness": brightness, "translate": translate, "stripe": stripe, "fog": fog,
    "spatter": spatter, "dotted_line": dotted_line, "zigzag": zigzag, "canny_edges": canny_edges,
}
assert tuple(GREY_CORRUPTIONS) == MNIST_C_NAMES


def corrupt_grey(img: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """One MNIST-C corruption of a uint8 (H, W) image -> uint8 (H, W)."""
    return GREY_CORRUPTIONS[name](img, rng)
