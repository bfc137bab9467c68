"""Rain renderers: falling drops seen as streaks, drawn six different ways (particles in
depth layers, individually drawn drizzle lines, a downpour of motion-blurred noise with its
veil and splashes, streaks that carry a refracted picture of the scene, short dashes frozen by
a fast shutter over drops bursting on the ground, and long faint streaks driven by the wind)."""
from __future__ import annotations

import cv2
import numpy as np

from .common import band, particle_layer, render_particles, scale, scatter, tinted

_STREAKS = {"slight": (40, 120), "moderate": (120, 350), "heavy": (350, 900)}
_LENGTH = {"slight": (6, 20), "moderate": (14, 36), "heavy": (24, 64)}
_BRIGHTNESS = {"slight": (0.15, 0.4), "moderate": (0.25, 0.55), "heavy": (0.3, 0.65)}
_VEIL = {"slight": (0.0, 0.04), "moderate": (0.03, 0.1), "heavy": (0.08, 0.22)}


def _count_scale(shape) -> float:
    """Streaks grow in length with the frame (scale) but stay about a pixel wide, so their
    number goes with the pixel area over the scale: they then cover the same share of a
    training crop and of a camera frame."""
    return shape[0] * shape[1] / 256.0**2 / scale(shape)


def _blend_light(image, alpha, colour, mode: int):
    """Water in front of the scene: screen (shows most on dark regions, as in photos),
    additive light, or opaque water."""
    a = alpha[..., None]
    if mode == 0:
        return 1.0 - (1.0 - image) * (1.0 - a * colour)
    if mode == 1:
        return image + a * colour
    return image * (1.0 - a) + a * colour


def layered_streaks(image, severity, rng):
    """Streaks of falling drops in 1-3 depth layers (near: longer, wider, blurrier), blended as
    light added to the scene, plus the faint veil a downpour lays over distant parts."""
    s = scale(image.shape)
    fall = np.deg2rad(rng.normal(0.0, 15.0))  # wind tilts the whole downpour
    layers = int(rng.integers(1, 4))
    streaks = band(rng, severity, _STREAKS) * _count_scale(image.shape)
    alpha = np.zeros(image.shape[:2], np.float32)
    for depth in range(layers):
        near = depth / max(layers - 1, 1)
        layer = particle_layer(
            image.shape,
            rng,
            count=streaks * (1.0 - 0.5 * near) / layers,
            radius=int(rng.random() < 0.3) if near > 0.5 else 0,
            length=band(rng, severity, _LENGTH) * s * (0.6 + 0.6 * near),
            angle=fall + np.deg2rad(rng.normal(0.0, 3.0)),
            defocus=rng.uniform(0.0, 0.3 + 0.7 * near) * s,
        )
        faint = 1.0 - 0.4 * near  # near streaks are defocused and let more scene through
        alpha = np.maximum(alpha, layer * faint * band(rng, severity, _BRIGHTNESS))
    out = _blend_light(image, alpha, tinted(rng, rng.uniform(0.75, 1.0), 0.05), rng.integers(3))
    veil = band(rng, severity, _VEIL)
    out = scatter(out, 1.0 - veil, tinted(rng, rng.uniform(0.6, 0.9), 0.05))
    return out, np.maximum(alpha, veil)


_DRIZZLE_COUNT = {"slight": (60, 160), "moderate": (160, 420), "heavy": (420, 1000)}
_DRIZZLE_LENGTH = {"slight": (3, 10), "moderate": (6, 16), "heavy": (10, 26)}


def drizzle(image, severity, rng):
    """Thin bright lines of light rain, each drawn on its own: its own length, slant and
    brightness, sharp (a fast shutter), brightest where the scene behind is dark."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = rng.poisson(band(rng, severity, _DRIZZLE_COUNT) * _count_scale(image.shape))
    slant = np.deg2rad(rng.normal(0.0, 12.0))
    alpha = np.zeros((h * 4, w * 4), np.float32)  # drawn at 4x and shrunk: antialiased lines
    length = band(rng, severity, _DRIZZLE_LENGTH) * s * rng.uniform(0.5, 1.5, n) * 4
    angle = slant + np.deg2rad(rng.normal(0.0, 4.0, n))
    y0, x0 = rng.uniform(-0.1, 1.0, n) * h * 4, rng.uniform(-0.1, 1.1, n) * w * 4
    level = rng.uniform(0.2, 1.0, n)
    thick = max(1, round(rng.uniform(2, 5) * min(s, 1.5)))
    for i in range(n):
        y1, x1 = y0[i] + length[i] * np.cos(angle[i]), x0[i] + length[i] * np.sin(angle[i])
        cv2.line(alpha, (int(x0[i]), int(y0[i])), (int(x1), int(y1)), float(level[i]), thick,
                 cv2.LINE_AA)
    alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    alpha = np.clip(alpha * rng.uniform(0.5, 0.9), 0.0, 1.0)
    colour = tinted(rng, rng.uniform(0.8, 1.0), 0.04)
    darkness = 1.0 - image.mean(axis=2)
    alpha = alpha * (0.5 + 0.5 * darkness)  # drops light up against dark backgrounds
    return _blend_light(image, alpha, colour, 0), alpha


_DOWNPOUR_DENSITY = {"slight": (3e-4, 1.2e-3), "moderate": (1.2e-3, 5e-3), "heavy": (5e-3, 0.03)}
_DOWNPOUR_VEIL = {"slight": (0.0, 0.04), "moderate": (0.04, 0.15), "heavy": (0.15, 0.35)}


def downpour(image, severity, rng):
    """A downpour the way photographers paint one: sparse noise smeared by a long motion blur
    into dense, soft, overlapping sheets of rain, a grey veil of spray thickest far away, and
    splashes where drops hit the ground in the lower part of the frame."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    density = band(rng, severity, _DOWNPOUR_DENSITY)
    noise = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (h, w))
    noise = cv2.GaussianBlur(noise, (0, 0), 0.7 * min(s, 2.0))
    length = rng.uniform(20, 60) * s
    angle = np.deg2rad(rng.normal(0.0, 10.0))
    size = int(length) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = np.sin(angle) * c, np.cos(angle) * c
    cv2.line(kernel, (int(c - dx), int(c - dy)), (int(c + dx), int(c + dy)), 1.0, 1)
    kernel /= max(kernel.sum(), 1.0)
    sheets = cv2.filter2D(noise, -1, kernel)
    probe = np.zeros((size + 8, size + 8), np.float32)  # one drop's streak peaks at 1
    probe[c + 4, c + 4] = 1.0
    probe = cv2.GaussianBlur(probe, (0, 0), 0.7 * min(s, 2.0))
    sheets = np.clip(sheets / max(float(cv2.filter2D(probe, -1, kernel).max()), 1e-6), 0, 1)
    alpha = sheets * rng.uniform(0.25, 0.6)
    out = _blend_light(image, alpha, tinted(rng, rng.uniform(0.7, 0.9), 0.04), rng.integers(3))
    veil = band(rng, severity, _DOWNPOUR_VEIL)
    rows = np.linspace(1.0, 0.4, h, dtype=np.float32)[:, None]  # spray thickest far away
    veil_map = np.broadcast_to(veil * rows, (h, w)).astype(np.float32)
    out = scatter(out, 1.0 - veil_map, tinted(rng, rng.uniform(0.55, 0.8), 0.03))
    splashes = np.zeros((h, w), np.float32)
    n = rng.poisson(density * 4000 * w / 256.0)
    ys = h - (rng.random(n) ** 2 * 0.35 * h)  # most near the bottom edge
    xs = rng.uniform(0, w, n)
    for y, x in zip(ys.astype(int), xs.astype(int), strict=True):
        cv2.ellipse(splashes, (x, min(y, h - 1)), (max(1, int(2 * s)), max(1, int(0.8 * s))),
                    0, 180, 360, float(rng.uniform(0.3, 0.7)), 1, cv2.LINE_AA)
    splashes = cv2.GaussianBlur(splashes, (0, 0), 0.6 * s)
    out = _blend_light(out, splashes, tinted(rng, 0.9, 0.03), 0)
    return out, np.clip(np.maximum(np.maximum(alpha, veil_map), splashes), 0.0, 1.0)


_REFRACTED = {"slight": (30, 100), "moderate": (100, 300), "heavy": (300, 800)}


def refracted_streaks(image, severity, rng):
    """Streaks as a camera sees each drop: a tiny wide-angle lens that shows a blurred,
    upside-down and brighter picture of its surroundings (mostly sky), smeared along its fall.
    The streak takes that picture's colour rather than adding light, so it can be darker than a
    bright background; far streaks are thin and sharp, a few near ones wide and out of focus."""
    s = scale(image.shape)
    count = band(rng, severity, _REFRACTED) * _count_scale(image.shape)
    fall = np.deg2rad(rng.normal(0.0, 20.0))
    far = particle_layer(image.shape, rng, count=count, radius=0,
                         length=band(rng, severity, _LENGTH) * s * rng.uniform(0.8, 1.6),
                         angle=fall, defocus=rng.uniform(0.2, 0.8) * s)
    near = particle_layer(image.shape, rng, count=count * 0.05, radius=1,
                          length=band(rng, severity, _LENGTH) * s * 2.0,
                          angle=fall + np.deg2rad(rng.normal(0.0, 3.0)), defocus=1.5 * s)
    alpha = np.maximum(far * rng.uniform(0.45, 0.85), near * rng.uniform(0.2, 0.5))
    surroundings = cv2.GaussianBlur(np.ascontiguousarray(image[::-1]), (0, 0), 6.0 * s)
    surroundings = np.clip(surroundings * rng.uniform(1.1, 1.5) + rng.uniform(0.05, 0.2), 0, 1)
    a = alpha[..., None]
    return image * (1.0 - a) + a * surroundings, alpha


_DASHES = {"slight": (150, 500), "moderate": (500, 1500), "heavy": (1500, 4000)}
_SPLASHES = {"slight": (0.002, 0.006), "moderate": (0.006, 0.02), "heavy": (0.02, 0.06)}
_MIST = {"slight": (0.0, 0.05), "moderate": (0.04, 0.14), "heavy": (0.12, 0.3)}


def splashing(image, severity, rng):
    """Rain as a fast shutter freezes it: dense, short, thin dashes, nearly parallel and a few
    degrees off vertical (snow blown into dashes slants more and its dashes are wider), drops
    bursting on the wet ground in bright flecks that thin out towards the horizon, and a mist
    of spray thickest there. Heavy rain in press photographs looks like this."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    fall = np.deg2rad(rng.normal(0.0, 8.0))
    dashes = band(rng, severity, _DASHES) * _count_scale(image.shape)
    alpha = np.zeros((h, w), np.float32)
    for near in (0.0, 0.5, 1.0):
        layer = particle_layer(image.shape, rng, count=dashes * (1.0 - 0.6 * near) / 3,
                               radius=0, length=rng.uniform(3.0, 7.0) * s * (1.0 + near),
                               angle=fall + np.deg2rad(rng.normal(0.0, 2.0)),
                               defocus=(0.3 + 0.6 * near * rng.random()) * s)
        alpha = np.maximum(alpha, layer * rng.uniform(0.35, 0.8) * (1.0 - 0.3 * near))
    horizon = rng.uniform(0.35, 0.7)
    rows = np.clip((np.arange(h, dtype=np.float32) / h - horizon) / (1.0 - horizon), 0.0, 1.0)
    ground = (rng.random((h, w)) < band(rng, severity, _SPLASHES) * rows[:, None])
    bursts = render_particles(ground.astype(np.float32) * rng.uniform(0.5, 1.0, (h, w)),
                              radius=0, length=1.5 * s, angle=0.0, defocus=0.5 * s)
    bursts = np.clip(bursts / max(float(bursts.max()), 1e-6), 0.0, 1.0) * rng.uniform(0.4, 0.9)
    alpha = np.maximum(alpha, bursts.astype(np.float32))
    colour = tinted(rng, rng.uniform(0.8, 1.0), 0.04)
    out = _blend_light(image, alpha, colour, int(rng.integers(2)))
    mist = band(rng, severity, _MIST)
    far = 1.0 - np.abs(np.arange(h, dtype=np.float32) / h - horizon) / max(horizon, 1 - horizon)
    mist_map = np.broadcast_to((mist * (0.4 + 0.6 * far))[:, None], (h, w)).astype(np.float32)
    out = scatter(out, 1.0 - mist_map, tinted(rng, rng.uniform(0.6, 0.85), 0.03))
    return out, np.clip(np.maximum(alpha, mist_map), 0.0, 1.0)


_GUSTS = {"slight": (30, 90), "moderate": (90, 250), "heavy": (250, 600)}
_GUST_LEVEL = {"slight": (0.04, 0.1), "moderate": (0.07, 0.16), "heavy": (0.1, 0.24)}


def gusts(image, severity, rng):
    """Wind-driven rain under a slow shutter: long, faint, thin streaks up to a third of the
    frame long, strongly slanted, barely brighter than the scene behind (a dark roof, a car
    park at dusk), under the grey of blown spray. Easy to miss, and a frame full of them is
    heavy rain."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    slant = np.deg2rad(rng.uniform(15.0, 40.0) * rng.choice((-1, 1)))
    count = band(rng, severity, _GUSTS) * _count_scale(image.shape)
    layer = particle_layer(image.shape, rng, count=count, radius=0,
                           length=rng.uniform(0.12, 0.35) * min(h, w),
                           angle=slant + np.deg2rad(rng.normal(0.0, 2.0)),
                           defocus=rng.uniform(0.3, 0.9) * s)
    alpha = np.clip(layer * band(rng, severity, _GUST_LEVEL), 0.0, 1.0)
    out = _blend_light(image, alpha, tinted(rng, rng.uniform(0.75, 0.95), 0.04),
                       int(rng.integers(2)))
    spray = band(rng, severity, _MIST)
    out = scatter(out, 1.0 - spray, tinted(rng, rng.uniform(0.6, 0.85), 0.03))
    return out, np.maximum(alpha, spray)
