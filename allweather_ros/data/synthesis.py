"""Synthetic adverse weather on clean frames, with the ground-truth description of what was added.

No paired weather data can be downloaded here, so training pairs are made: a clean photo plus
physically motivated layers (scattering for haze, moving particles for rain and snow, refracting
blobs for lens drops). Every parameter is drawn widely within its severity, because the model is
judged on real photos and on generators it never saw; only the severity bands are kept apart so
that "heavy" reliably degrades more than "slight".

All randomness comes from the numpy Generator passed in, so a seed reproduces a sample exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..description import SEVERITIES, TYPES, Degradation, describe

# Physical order of the layers: the atmosphere first, falling particles in front of it, and the
# drops on the lens last, in front of everything.
_APPLY_ORDER = ("haze", "rain", "snow", "raindrop")

# Mixtures seen in real driving scenes.
MIXTURES = (
    ("rain", "haze"),
    ("snow", "haze"),
    ("rain", "raindrop"),
    ("raindrop", "haze"),
    ("snow", "raindrop"),
    ("rain", "raindrop", "haze"),
)

WHOLE_FRAME = "across the whole frame"
LOCATIONS = (
    WHOLE_FRAME,
    "in the upper part of the frame",
    "in the lower part of the frame",
    "on the left side of the frame",
    "on the right side of the frame",
)
_CONCENTRATION = 1.6  # a half this many times stronger than its opposite holds the degradation


@dataclass
class Sample:
    """A degraded frame, its clean original, what degrades it, and where (per pixel)."""

    degraded: np.ndarray  # float32 (H, W, 3) in [0, 1]
    clean: np.ndarray  # float32 (H, W, 3) in [0, 1]
    degradations: list[Degradation]
    text: str  # describe(degradations): the training-time prior
    strength: np.ndarray  # float32 (H, W) in [0, 1]: opacity of all weather layers together


def synthesize(
    clean: np.ndarray, rng: np.random.Generator, degradations: list[Degradation] | None = None
) -> Sample:
    """Degrade `clean` by `degradations` (a random recipe when None); locations are filled in."""
    clean = _as_rgb_float(clean)
    if degradations is None:
        degradations = sample_recipe(rng)
    by_type = {d.type: d for d in degradations}
    if len(by_type) != len(degradations):
        raise ValueError(f"each degradation type may appear once: {degradations}")
    image = clean.copy()
    clear = np.ones(clean.shape[:2], np.float32)  # product of (1 - opacity) over the layers
    located = {}
    for name in _APPLY_ORDER:
        if name in by_type:
            image, alpha = _LAYERS[name](image, by_type[name].severity, rng)
            clear *= 1.0 - alpha
            located[name] = Degradation(name, by_type[name].severity, locate(alpha))
    listed = [located[t] for t in TYPES if t in located]
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return Sample(image, clean, listed, describe(listed), 1.0 - clear)


def type_probabilities(weights: dict[str, float]) -> np.ndarray:
    """Relative weights of the weather types (missing ones: 1) -> probabilities in TYPES order."""
    unknown = set(weights) - set(TYPES)
    if unknown:
        raise ValueError(f"unknown weather types {sorted(unknown)}; expected some of {TYPES}")
    p = np.array([float(weights.get(t, 1.0)) for t in TYPES])
    if (p < 0).any() or not p.sum() > 0:
        raise ValueError(f"type weights must be >= 0 and not all 0, got {weights}")
    return p / p.sum()


def sample_recipe(
    rng: np.random.Generator,
    severity: str | None = None,
    clean_probability: float = 0.05,
    mixture_probability: float = 0.35,
    type_p: np.ndarray | None = None,
) -> list[Degradation]:
    """A random recipe: nothing, one type, or a real-world mixture; all at `severity` if given.

    `type_p` (from `type_probabilities`) skews the single-type recipes towards the types a model
    finds hardest; mixtures stay uniform. None: every type equally often.
    """
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    if rng.random() < clean_probability:
        return []
    if rng.random() < mixture_probability:
        types = MIXTURES[rng.integers(len(MIXTURES))]
    elif type_p is None:
        types = (TYPES[rng.integers(len(TYPES))],)
    else:
        types = (TYPES[rng.choice(len(TYPES), p=type_p)],)
    return [Degradation(t, severity or SEVERITIES[rng.integers(3)]) for t in types]


def locate(strength: np.ndarray) -> str:
    """Where a degradation sits: the half of the frame holding most of it, or the whole frame."""
    h, w = strength.shape
    halves = {
        LOCATIONS[1]: (strength[: h // 2].mean(), strength[h - h // 2 :].mean()),
        LOCATIONS[2]: (strength[h - h // 2 :].mean(), strength[: h // 2].mean()),
        LOCATIONS[3]: (strength[:, : w // 2].mean(), strength[:, w - w // 2 :].mean()),
        LOCATIONS[4]: (strength[:, w - w // 2 :].mean(), strength[:, : w // 2].mean()),
    }
    best, (inside, outside) = max(halves.items(), key=lambda kv: kv[1][0] - kv[1][1])
    return best if inside > _CONCENTRATION * outside + 1e-3 else WHOLE_FRAME


# --------------------------------------------------------------------------- helpers


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got {image.dtype}")
    return np.ascontiguousarray(image, dtype=np.float32)


def _band(rng: np.random.Generator, severity: str, bands: dict[str, tuple[float, float]]):
    """A value drawn uniformly from the severity's band."""
    low, high = bands[severity]
    return float(rng.uniform(low, high))


def _scale(shape: tuple[int, ...]) -> float:
    """Pixel sizes below are for a 256-pixel frame; larger frames get proportionally larger."""
    return float(np.clip(min(shape[:2]) / 256.0, 0.5, 4.0))


def _scatter(image: np.ndarray, transmission, airlight: np.ndarray) -> np.ndarray:
    """Koschmieder's model I = J t + A (1 - t), for a scalar or per-pixel transmission t."""
    t = np.asarray(transmission, np.float32)
    if t.ndim == 2:
        t = t[..., None]
    return image * t + airlight * (1.0 - t)


def _tinted(rng: np.random.Generator, level: float, spread: float) -> np.ndarray:
    """A near-grey colour of brightness `level` with per-channel jitter up to `spread`."""
    return np.clip(level + rng.uniform(-spread, spread, 3), 0.0, 1.0).astype(np.float32)


def _line_kernel(length: float, angle: float) -> np.ndarray:
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


def _render_particles(seeds, radius: float, length: float, angle: float, defocus: float):
    """Grow seed points into discs, smear them along their motion, then defocus them."""
    out = seeds
    r = round(radius)
    if r > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    if length > 1.5:
        out = cv2.filter2D(out, -1, _line_kernel(length, angle), borderType=cv2.BORDER_CONSTANT)
    if defocus > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), defocus)
    return out


def _particle_layer(shape, rng, count: float, radius, length, angle, defocus) -> np.ndarray:
    """Opacity (H, W) of `count` particles; one lone particle peaks at its own opacity."""
    h, w = shape[:2]
    seeds = np.zeros((h, w), np.float32)
    n = rng.poisson(count)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.5, 1.0, n)
    reach = int(2 * (radius + length + 3 * defocus)) + 3
    probe = np.zeros((2 * reach + 1,) * 2, np.float32)
    probe[reach, reach] = 1.0
    peak = _render_particles(probe, radius, length, angle, defocus).max()
    layer = _render_particles(seeds, radius, length, angle, defocus) / peak
    return np.clip(layer, 0.0, 1.0)


def _smooth_noise(shape, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a few random cells, smoothly interpolated."""
    h, w = shape[:2]
    grid = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


# --------------------------------------------------------------------------- layers
# Each layer takes an image and a severity and returns (new image, opacity map in [0, 1]).

_HAZE_BETA = {"slight": (0.1, 0.35), "moderate": (0.35, 0.9), "heavy": (0.9, 2.2)}


def _depth_proxy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relative scene depth in [0, 1] (1 = far) from cues that hold in most outdoor frames:
    rows above a horizon are far and the ground nears the camera towards the bottom; bright,
    colourless regions (high dark channel: sky, distant walls) are far; fog is patchy."""
    h, w = image.shape[:2]
    horizon = rng.uniform(0.2, 0.6)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    ground = np.clip((y - horizon) / (1.0 - horizon), 0.0, 1.0) ** rng.uniform(0.5, 2.0)
    rows = np.broadcast_to(1.0 - ground, (h, w))
    patch = max(3, round(7 * _scale(image.shape))) | 1
    dark = cv2.erode(image.min(axis=2), np.ones((patch, patch), np.uint8))
    dark = cv2.GaussianBlur(dark, (0, 0), patch)
    weight = rng.uniform(0.5, 0.9)
    depth = weight * rows + (1.0 - weight) * dark
    depth = depth + rng.uniform(0.0, 0.3) * (_smooth_noise(image.shape, rng, 4) - 0.5)
    depth = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), 2.0 * patch)
    depth = (depth - depth.min()) / max(float(np.ptp(depth)), 1e-6)
    near = rng.uniform(0.05, 0.3)  # even the nearest point is seen through some air
    return near + (1.0 - near) * depth


def _haze(image, severity, rng):
    """Atmospheric scattering with t = exp(-beta d) and a varied airlight (white, blue, smog)."""
    beta = _band(rng, severity, _HAZE_BETA)
    transmission = np.exp(-beta * _depth_proxy(image, rng)).astype(np.float32)
    airlight = _tinted(rng, rng.uniform(0.65, 1.0), 0.08)
    return _scatter(image, transmission, airlight), 1.0 - transmission


_RAIN_STREAKS = {"slight": (40, 120), "moderate": (120, 350), "heavy": (350, 900)}
_RAIN_LENGTH = {"slight": (6, 20), "moderate": (14, 36), "heavy": (24, 64)}
_RAIN_BRIGHTNESS = {"slight": (0.15, 0.4), "moderate": (0.25, 0.55), "heavy": (0.3, 0.65)}
_RAIN_VEIL = {"slight": (0.0, 0.04), "moderate": (0.03, 0.1), "heavy": (0.08, 0.22)}


def _rain(image, severity, rng):
    """Streaks of falling drops in 1-3 depth layers (near: longer, wider, blurrier), blended as
    light added to the scene, plus the faint veil a downpour lays over distant parts."""
    s = _scale(image.shape)
    # Streaks grow in length with the frame (s) but stay about a pixel wide, so their number
    # goes with the pixel area over s: they then cover the same share of a training crop and
    # of a camera frame (counted per area alone, a 480x640 frame showed 4x a 128 crop's rain).
    count_scale = image.shape[0] * image.shape[1] / 256.0**2 / s
    fall = np.deg2rad(rng.normal(0.0, 15.0))  # wind tilts the whole downpour
    layers = int(rng.integers(1, 4))
    streaks = _band(rng, severity, _RAIN_STREAKS) * count_scale
    alpha = np.zeros(image.shape[:2], np.float32)
    for depth in range(layers):
        near = depth / max(layers - 1, 1)
        layer = _particle_layer(
            image.shape,
            rng,
            count=streaks * (1.0 - 0.5 * near) / layers,
            radius=int(rng.random() < 0.3) if near > 0.5 else 0,
            length=_band(rng, severity, _RAIN_LENGTH) * s * (0.6 + 0.6 * near),
            angle=fall + np.deg2rad(rng.normal(0.0, 3.0)),
            defocus=rng.uniform(0.0, 0.3 + 0.7 * near) * s,
        )
        faint = 1.0 - 0.4 * near  # near streaks are defocused and let more scene through
        alpha = np.maximum(alpha, layer * faint * _band(rng, severity, _RAIN_BRIGHTNESS))
    colour = _tinted(rng, rng.uniform(0.75, 1.0), 0.05)
    mode = rng.integers(3)
    a = alpha[..., None]
    if mode == 0:  # screen: streaks show most on dark regions, as in photos
        out = 1.0 - (1.0 - image) * (1.0 - a * colour)
    elif mode == 1:  # additive light
        out = image + a * colour
    else:  # opaque water over the scene
        out = image * (1.0 - a) + a * colour
    veil = _band(rng, severity, _RAIN_VEIL)
    out = _scatter(out, 1.0 - veil, _tinted(rng, rng.uniform(0.6, 0.9), 0.05))
    return out, np.maximum(alpha, veil)


_SNOW_FLAKES = {"slight": (50, 180), "moderate": (180, 550), "heavy": (550, 1600)}
_SNOW_SIZE = {"slight": (1.0, 2.2), "moderate": (1.5, 3.5), "heavy": (2.5, 5.5)}
_SNOW_VEIL = {"slight": (0.0, 0.06), "moderate": (0.04, 0.15), "heavy": (0.12, 0.3)}


def _snow(image, severity, rng):
    """Flakes at 2-5 depths: far ones small, sharp and many; near ones big, defocused and
    streaked by their fall; over a bright veil of snow-laden air."""
    s = _scale(image.shape)
    area = image.shape[0] * image.shape[1] / 256.0**2
    layers = int(rng.integers(2, 6))
    flakes = _band(rng, severity, _SNOW_FLAKES) * area
    biggest = _band(rng, severity, _SNOW_SIZE) * s
    wind = np.deg2rad(rng.uniform(-40.0, 40.0))
    streak = rng.uniform(0.0, 1.0) ** 2 * 16.0 * s  # often still, sometimes long streaks
    out = image
    alpha = np.zeros(image.shape[:2], np.float32)
    for depth in range(layers):
        near = depth / (layers - 1)
        layer = _particle_layer(
            image.shape,
            rng,
            count=flakes * (1.0 - 0.8 * near) / layers * 2.0,
            radius=0.5 + (biggest - 0.5) * near**1.5,
            length=streak * (0.2 + near),
            angle=wind + np.deg2rad(rng.normal(0.0, 8.0)),
            defocus=rng.uniform(0.3, 0.8) + 2.5 * near**2 * s * rng.uniform(0.3, 1.0),
        )
        layer *= rng.uniform(0.55, 1.0)
        out = out * (1.0 - layer[..., None]) + layer[..., None] * _tinted(rng, 0.95, 0.04)
        alpha = np.maximum(alpha, layer)
    veil = _band(rng, severity, _SNOW_VEIL)
    out = _scatter(out, 1.0 - veil, _tinted(rng, rng.uniform(0.75, 0.95), 0.04))
    return out, np.maximum(alpha, veil)


# Per frame (radius in pixels of a 256-pixel frame). Bands set by the share of the frame the
# drops cover (about 2%, 13% and 40%), as in lens-drop datasets: fewer, smaller drops change
# too few pixels to be told apart from a dry lens, so they taught the estimator nothing.
_DROP_COUNT = {"slight": (8, 20), "moderate": (20, 45), "heavy": (40, 80)}
_DROP_RADIUS = {"slight": (4, 10), "moderate": (6, 16), "heavy": (8, 24)}


def _raindrop(image, severity, rng):
    """Water drops on the lens: each is a tiny out-of-focus lens showing a flipped, shrunken
    view of the scene around it (or, for flat smears, a blurred local view), with soft edges
    and a dark rim; sometimes they gather on one side of the glass."""
    h, w = image.shape[:2]
    s = _scale(image.shape)
    # Drops are sized in frame units (s), so their number is per frame too (aspect ratio only):
    # the share of the frame they cover is then the same for a training crop and a camera frame.
    n = max(1, rng.poisson(_band(rng, severity, _DROP_COUNT) * h * w / (256.0 * s) ** 2))
    y0, y1, x0, x1 = 0.0, 1.0, 0.0, 1.0
    if rng.random() < 0.35:  # drops gathered in one half of the glass
        side = rng.integers(4)
        y0, y1, x0, x1 = [(0, 0.5, 0, 1), (0.5, 1, 0, 1), (0, 1, 0, 0.5), (0, 1, 0.5, 1)][side]
    cy = rng.uniform(y0, y1, n) * h
    cx = rng.uniform(x0, x1, n) * w
    low, high = _DROP_RADIUS[severity]
    radius = np.exp(rng.uniform(np.log(low), np.log(high), n)) * s
    inverted = rng.random(n) < 0.6
    zoom = np.where(inverted, -rng.uniform(1.5, 5.0, n), rng.uniform(0.2, 0.9, n))
    shift_y = -rng.uniform(0.0, 1.5, n) * radius * np.abs(zoom) * inverted

    label = np.zeros((h, w), np.int32)
    for i in range(n):
        axes = (max(1, int(radius[i])), max(1, int(radius[i] * rng.uniform(0.6, 1.0))))
        centre = (int(cx[i]), int(cy[i]))
        cv2.ellipse(label, centre, axes, rng.uniform(0, 180), 0, 360, i + 1, -1)
        if rng.random() < 0.4:  # a smaller drop merged into this one
            offset = rng.normal(0, radius[i] * 0.6, 2).astype(int)
            cv2.circle(label, (centre[0] + offset[0], centre[1] + offset[1]),
                       max(1, int(radius[i] * rng.uniform(0.3, 0.7))), i + 1, -1)
    inside = label > 0
    idx = label[inside] - 1
    yy, xx = np.nonzero(inside)
    map_x = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    map_x[inside] = cx[idx] + zoom[idx] * (xx - cx[idx])
    map_y[inside] = cy[idx] + zoom[idx] * (yy - cy[idx]) + shift_y[idx]
    blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 4.0) * s)
    view = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    view = view * rng.uniform(0.9, 1.2) + rng.uniform(0.0, 0.08)  # water gathers light

    alpha = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), rng.uniform(0.7, 2.5) * s)
    rim = 4.0 * alpha * (1.0 - alpha) * rng.uniform(0.0, 0.15)
    out = image * (1.0 - alpha[..., None]) + view * alpha[..., None]
    return out * (1.0 - rim[..., None]), np.clip(alpha + rim, 0.0, 1.0)


_LAYERS = {"haze": _haze, "rain": _rain, "snow": _snow, "raindrop": _raindrop}
