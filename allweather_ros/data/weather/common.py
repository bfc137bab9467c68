"""Shared pieces of the weather renderers: severity bands, frame scale, the scattering model,
moving particles and smooth noise."""
from __future__ import annotations

import cv2
import numpy as np


def band(rng: np.random.Generator, severity: str, bands: dict[str, tuple[float, float]]):
    """A value drawn uniformly from the severity's band."""
    low, high = bands[severity]
    return float(rng.uniform(low, high))


def scale(shape: tuple[int, ...]) -> float:
    """Pixel sizes below are for a 256-pixel frame; larger frames get proportionally larger."""
    return float(np.clip(min(shape[:2]) / 256.0, 0.5, 4.0))


def scatter(image: np.ndarray, transmission, airlight: np.ndarray) -> np.ndarray:
    """Koschmieder's model I = J t + A (1 - t), for a scalar or per-pixel transmission t."""
    t = np.asarray(transmission, np.float32)
    if t.ndim == 2:
        t = t[..., None]
    return image * t + airlight * (1.0 - t)


def tinted(rng: np.random.Generator, level: float, spread: float) -> np.ndarray:
    """A near-grey colour of brightness `level` with per-channel jitter up to `spread`."""
    return np.clip(level + rng.uniform(-spread, spread, 3), 0.0, 1.0).astype(np.float32)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised motion-blur kernel: an antialiased line `length` px long, `angle` rad off
    vertical."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c, half = size // 2, (length - 1) / 2
    dx, dy = np.sin(angle) * half, np.cos(angle) * half
    p0 = (round((c - dx) * 16), round((c - dy) * 16))
    p1 = (round((c + dx) * 16), round((c + dy) * 16))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
    if kernel.sum() == 0:
        kernel[c, c] = 1.0
    return kernel / kernel.sum()


def render_particles(seeds, radius: float, length: float, angle: float, defocus: float):
    """Grow seed points into discs, smear them along their motion, then defocus them."""
    out = seeds
    r = round(radius)
    if r > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    if length > 1.5:
        out = cv2.filter2D(out, -1, line_kernel(length, angle), borderType=cv2.BORDER_CONSTANT)
    if defocus > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), defocus)
    return out


def particle_layer(shape, rng, count: float, radius, length, angle, defocus) -> np.ndarray:
    """Opacity (H, W) of `count` particles; one lone particle peaks at its own opacity."""
    h, w = shape[:2]
    seeds = np.zeros((h, w), np.float32)
    n = rng.poisson(count)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.5, 1.0, n)
    reach = int(2 * (radius + length + 3 * defocus)) + 3
    probe = np.zeros((2 * reach + 1,) * 2, np.float32)
    probe[reach, reach] = 1.0
    peak = render_particles(probe, radius, length, angle, defocus).max()
    layer = render_particles(seeds, radius, length, angle, defocus) / peak
    return np.clip(layer, 0.0, 1.0)


def smooth_noise(shape, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a few random cells, smoothly interpolated."""
    h, w = shape[:2]
    grid = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def fractal_noise(shape, rng: np.random.Generator, cells: tuple[int, ...]) -> np.ndarray:
    """Octaves of smooth noise, each finer one (more `cells`) at half the weight: shapes with
    both large masses and ragged edges (fog banks, sheets of water)."""
    return sum(smooth_noise(shape, rng, c) * 0.5**i for i, c in enumerate(cells))


# --------------------------------------------------------------------------- layers
