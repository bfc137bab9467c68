"""Haze renderers: the atmosphere between the camera and the scene (Koschmieder's model
I = J t + A (1 - t)), with the transmission t and the airlight A drawn four different ways."""
from __future__ import annotations

import cv2
import numpy as np

from .common import band, fractal_noise, scale, scatter, smooth_noise, tinted

_BETA = {"slight": (0.1, 0.35), "moderate": (0.35, 0.9), "heavy": (0.9, 2.2)}


def depth_proxy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relative scene depth in [0, 1] (1 = far) from cues that hold in most outdoor frames:
    rows above a horizon are far and the ground nears the camera towards the bottom; bright,
    colourless regions (high dark channel: sky, distant walls) are far; fog is patchy."""
    h, w = image.shape[:2]
    horizon = rng.uniform(0.2, 0.6)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    ground = np.clip((y - horizon) / (1.0 - horizon), 0.0, 1.0) ** rng.uniform(0.5, 2.0)
    rows = np.broadcast_to(1.0 - ground, (h, w))
    patch = max(3, round(7 * scale(image.shape))) | 1
    dark = cv2.erode(image.min(axis=2), np.ones((patch, patch), np.uint8))
    dark = cv2.GaussianBlur(dark, (0, 0), patch)
    weight = rng.uniform(0.5, 0.9)
    depth = weight * rows + (1.0 - weight) * dark
    depth = depth + rng.uniform(0.0, 0.3) * (smooth_noise(image.shape, rng, 4) - 0.5)
    depth = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), 2.0 * patch)
    depth = (depth - depth.min()) / max(float(np.ptp(depth)), 1e-6)
    near = rng.uniform(0.05, 0.3)  # even the nearest point is seen through some air
    return near + (1.0 - near) * depth


def depth_haze(image, severity, rng):
    """Uniform fog over an estimated depth: t = exp(-beta d), a near-white or bluish airlight."""
    beta = band(rng, severity, _BETA)
    transmission = np.exp(-beta * depth_proxy(image, rng)).astype(np.float32)
    airlight = tinted(rng, rng.uniform(0.65, 1.0), 0.08)
    return scatter(image, transmission, airlight), 1.0 - transmission


_PATCH_DENSITY = {"slight": (0.08, 0.3), "moderate": (0.3, 0.7), "heavy": (0.7, 1.6)}


def patchy_fog(image, severity, rng):
    """Fog banks that drift through the scene: the optical depth is fractal noise (several
    octaves of smooth noise), not the scene's depth, so dense and thin patches sit side by side
    at any distance."""
    octaves = fractal_noise(image.shape, rng, (2, 4, 8, 16))
    octaves = (octaves - octaves.min()) / max(float(np.ptp(octaves)), 1e-6)
    contrast = rng.uniform(1.0, 3.0)  # from gentle swells to sharp-edged banks
    density = octaves**contrast
    optical = band(rng, severity, _PATCH_DENSITY) * (0.3 + 1.7 * density)
    transmission = np.exp(-optical).astype(np.float32)
    airlight = tinted(rng, rng.uniform(0.7, 0.95), 0.03)
    return scatter(image, transmission, airlight), 1.0 - transmission


_SMOG_BETA = {"slight": (0.12, 0.4), "moderate": (0.4, 1.0), "heavy": (1.0, 2.4)}
_SMOG_COLOURS = (  # yellow-brown smog, dusty orange, grey-blue mist, greenish sodium haze
    (0.78, 0.70, 0.52), (0.85, 0.66, 0.45), (0.62, 0.70, 0.80), (0.70, 0.74, 0.58),
)


def coloured_haze(image, severity, rng):
    """Smog and dust: a strongly coloured airlight, thicker towards the top of the frame along
    a tilted horizon, and a brighter glow around the light source (the sun behind the smog)."""
    h, w = image.shape[:2]
    tilt = rng.uniform(-0.3, 0.3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rows = 1.0 - (yy / h + tilt * (xx / w - 0.5))
    depth = np.clip(rows, 0.0, 1.0) ** rng.uniform(0.6, 1.5)
    depth = 0.2 + 0.8 * depth
    transmission = np.exp(-band(rng, severity, _SMOG_BETA) * depth).astype(np.float32)
    base = np.array(_SMOG_COLOURS[rng.integers(len(_SMOG_COLOURS))], np.float32)
    colour = np.clip(base * rng.uniform(0.85, 1.15) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0)
    cy, cx = rng.uniform(-0.2, 0.4) * h, rng.uniform(0.0, 1.0) * w
    glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (rng.uniform(0.3, 0.8) * h) ** 2))
    airlight = np.clip(colour + 0.15 * glow[..., None], 0.0, 1.0).astype(np.float32)
    return scatter(image, transmission, airlight), 1.0 - transmission


_GLOW_BETA = {"slight": (0.15, 0.45), "moderate": (0.45, 1.1), "heavy": (1.1, 2.5)}


def lamplit_mist(image, severity, rng):
    """Mist at dusk or under street lamps: the airlight is dim and warm or cold (the lamps and
    the last daylight light the mist, not the sun), so the veil darkens bright regions as well as
    lifting dark ones, and every light source swells into a halo (the atmosphere's multiple
    scattering spreads its light wide)."""
    s = scale(image.shape)
    transmission = np.exp(-band(rng, severity, _GLOW_BETA)
                          * depth_proxy(image, rng)).astype(np.float32)
    warm = rng.random() < 0.6
    base = np.array((0.55, 0.45, 0.3) if warm else (0.3, 0.36, 0.45), np.float32)
    airlight = np.clip(base * rng.uniform(0.6, 1.3) + rng.uniform(-0.03, 0.03, 3), 0.0, 1.0)
    out = scatter(image, transmission, airlight.astype(np.float32))
    lights = np.clip(image.max(axis=2) - rng.uniform(0.7, 0.85), 0.0, None)
    halo = cv2.GaussianBlur(lights, (0, 0), rng.uniform(6.0, 16.0) * s)
    halo = halo / max(float(halo.max()), 1e-6) * rng.uniform(0.2, 0.5) * (1.0 - transmission)
    out = out + halo[..., None] * np.clip(airlight * 1.6, 0.0, 1.0)
    return out, np.clip(1.0 - transmission + halo, 0.0, 1.0)
