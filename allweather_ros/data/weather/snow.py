"""Snow renderers: flakes at several depths, a fine blizzard behind a bright veil, a few
large out-of-focus flakes close to the lens, and grey flakes under an overcast sky."""
from __future__ import annotations

import cv2
import numpy as np

from .common import band, particle_layer, scale, scatter, tinted

_FLAKES = {"slight": (50, 180), "moderate": (180, 550), "heavy": (550, 1600)}
_SIZE = {"slight": (1.0, 2.2), "moderate": (1.5, 3.5), "heavy": (2.5, 5.5)}
_VEIL = {"slight": (0.0, 0.06), "moderate": (0.04, 0.15), "heavy": (0.12, 0.3)}


def _area(shape) -> float:
    return shape[0] * shape[1] / 256.0**2


def layered_flakes(image, severity, rng):
    """Flakes at 2-5 depths: far ones small, sharp and many; near ones big, defocused and
    streaked by their fall; over a bright veil of snow-laden air."""
    s = scale(image.shape)
    layers = int(rng.integers(2, 6))
    flakes = band(rng, severity, _FLAKES) * _area(image.shape)
    biggest = band(rng, severity, _SIZE) * s
    wind = np.deg2rad(rng.uniform(-40.0, 40.0))
    streak = rng.uniform(0.0, 1.0) ** 2 * 16.0 * s  # often still, sometimes long streaks
    out = image
    alpha = np.zeros(image.shape[:2], np.float32)
    for depth in range(layers):
        near = depth / (layers - 1)
        layer = particle_layer(
            image.shape,
            rng,
            count=flakes * (1.0 - 0.8 * near) / layers * 2.0,
            radius=0.5 + (biggest - 0.5) * near**1.5,
            length=streak * (0.2 + near),
            angle=wind + np.deg2rad(rng.normal(0.0, 8.0)),
            defocus=rng.uniform(0.3, 0.8) + 2.5 * near**2 * s * rng.uniform(0.3, 1.0),
        )
        layer *= rng.uniform(0.55, 1.0)
        out = out * (1.0 - layer[..., None]) + layer[..., None] * tinted(rng, 0.95, 0.04)
        alpha = np.maximum(alpha, layer)
    veil = band(rng, severity, _VEIL)
    out = scatter(out, 1.0 - veil, tinted(rng, rng.uniform(0.75, 0.95), 0.04))
    return out, np.maximum(alpha, veil)


_GRAIN = {"slight": (0.001, 0.004), "moderate": (0.004, 0.015), "heavy": (0.015, 0.05)}
_BLIZZARD_VEIL = {"slight": (0.0, 0.05), "moderate": (0.05, 0.18), "heavy": (0.18, 0.45)}


def blizzard(image, severity, rng):
    """Wind-driven fine snow: a dense grain of tiny flakes blown into short slanted dashes,
    over a bright veil that thickens with distance and drifts in gusts."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    grain = (rng.random((h, w)) < band(rng, severity, _GRAIN)).astype(np.float32)
    grain *= rng.uniform(0.6, 1.0, (h, w)).astype(np.float32)
    angle = np.deg2rad(rng.uniform(30.0, 75.0) * rng.choice((-1, 1)))
    length = rng.uniform(2.0, 7.0) * s
    size = int(length) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = np.sin(angle) * c, np.cos(angle) * c
    cv2.line(kernel, (int(c - dx), int(c - dy)), (int(c + dx), int(c + dy)), 1.0, 1)
    dashes = cv2.filter2D(grain, -1, kernel / max(kernel.sum(), 1.0))
    dashes = cv2.GaussianBlur(dashes, (0, 0), 0.5 * min(s, 2.0))
    alpha = np.clip(dashes * rng.uniform(1.5, 3.0), 0.0, 1.0)
    out = image * (1.0 - alpha[..., None]) + alpha[..., None] * tinted(rng, 0.96, 0.02)
    gusts = cv2.resize(rng.random((3, 3)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)
    rows = np.linspace(1.0, 0.5, h, dtype=np.float32)[:, None]
    veil = band(rng, severity, _BLIZZARD_VEIL) * rows * (0.7 + 0.6 * gusts)
    veil = np.clip(veil, 0.0, 0.9).astype(np.float32)
    out = scatter(out, 1.0 - veil, tinted(rng, rng.uniform(0.8, 0.97), 0.02))
    return out, np.maximum(alpha, veil)


_NEAR_COUNT = {"slight": (3, 8), "moderate": (10, 25), "heavy": (30, 70)}


def near_flakes(image, severity, rng):
    """Large flakes drifting just in front of the lens: few, big, soft-edged and irregular,
    semi-transparent, with fine far snow behind them."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = rng.poisson(band(rng, severity, _NEAR_COUNT) * _area(image.shape) / s**2)
    alpha = np.zeros((h, w), np.float32)
    for _ in range(n):
        r = rng.uniform(4.0, 16.0) * s
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        blob = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 4))):  # clumped crystals: a few overlapping lobes
            oy, ox = rng.normal(0, 0.4 * r, 2)
            axes = (max(1, int(r * rng.uniform(0.5, 1.0))), max(1, int(r * rng.uniform(0.4, 0.9))))
            cv2.ellipse(blob, (int(cx + ox), int(cy + oy)), axes, rng.uniform(0, 180), 0, 360,
                        1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), r * rng.uniform(0.25, 0.6))
        blob = blob / max(float(blob.max()), 1e-6) * rng.uniform(0.3, 0.75)
        alpha = np.maximum(alpha, blob)
    far = particle_layer(image.shape, rng, count=band(rng, severity, _FLAKES) * _area(image.shape),
                         radius=0.5, length=0.0, angle=0.0, defocus=rng.uniform(0.3, 0.8))
    alpha = np.maximum(alpha, far * rng.uniform(0.4, 0.9))
    out = image * (1.0 - alpha[..., None]) + alpha[..., None] * tinted(rng, 0.93, 0.03)
    return out, alpha


_OVERCAST = {"slight": (40, 140), "moderate": (140, 450), "heavy": (450, 1300)}


def overcast_flakes(image, severity, rng):
    """Snow under an overcast sky: the flakes are lit by the same dull light as everything else,
    so they are a mid grey that shows dark against the bright sky and light against the ground,
    opaque rather than glowing; irregular clumps of several sizes drifting with a little blur,
    and a faint grey veil instead of a bright one."""
    s = scale(image.shape)
    count = band(rng, severity, _OVERCAST) * _area(image.shape)
    drift = np.deg2rad(rng.uniform(-30.0, 30.0))
    alpha = np.zeros(image.shape[:2], np.float32)
    for size in (0.5, 1.2, 2.5):
        layer = particle_layer(image.shape, rng, count=count / (1.0 + size), radius=size * s,
                               length=rng.uniform(0.0, 4.0) * s, angle=drift,
                               defocus=rng.uniform(0.3, 0.6) * size * s)
        alpha = np.maximum(alpha, layer * rng.uniform(0.6, 0.95))
    grey = tinted(rng, rng.uniform(0.55, 0.8), 0.03)
    out = image * (1.0 - alpha[..., None]) + alpha[..., None] * grey
    veil = band(rng, severity, _VEIL) * 0.7
    out = scatter(out, 1.0 - veil, tinted(rng, rng.uniform(0.6, 0.8), 0.02))
    return out, np.maximum(alpha, veil)
