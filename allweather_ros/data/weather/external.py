"""albumentations' weather transforms as renderers: written by others, never used in training,
they are the left-out renderer of each type in the evaluation. albumentations is optional (the
`dev` extra); it draws from numpy's global state, so it is seeded from the sample's generator."""
from __future__ import annotations

import random

import numpy as np

# albumentations' own strength knobs per severity, within its documented ranges: (rain type,
# whole-frame blur, brightness), snow's bleached lightness range and brightening, fog's
# coefficient range, spatter's (cutout threshold, intensity).
_RAIN = {"slight": ("drizzle", 1, 0.97), "moderate": ("heavy", 3, 0.9),
         "heavy": ("torrential", 5, 0.8)}
_SNOW = {"slight": ((0.01, 0.04), 1.3), "moderate": ((0.04, 0.1), 1.6),
         "heavy": ((0.1, 0.25), 2.0)}
_FOG = {"slight": (0.03, 0.08), "moderate": (0.08, 0.25), "heavy": (0.25, 0.6)}
_SPATTER = {"slight": ((0.74, 0.78), (0.2, 0.3)), "moderate": ((0.68, 0.72), (0.35, 0.5)),
            "heavy": ((0.6, 0.66), (0.5, 0.7))}


def _apply(transform, image: np.ndarray, rng: np.random.Generator):
    seed = int(rng.integers(2**31))
    random.seed(seed)
    np.random.seed(seed)
    transform.set_random_seed(seed)
    before = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    after = transform(image=before)["image"].astype(np.float32) / 255.0
    change = np.abs(after - image).mean(axis=2)
    return after, np.clip(change / 0.25, 0.0, 1.0).astype(np.float32)


def _rain(image, severity, rng):
    import albumentations as A
    kind, blur, brightness = _RAIN[severity]
    return _apply(A.RandomRain(rain_type=kind, slant_range=(-15, 15), blur_value=blur,
                               brightness_coefficient=brightness, p=1.0), image, rng)


def _snow(image, severity, rng):
    import albumentations as A
    points, brightness = _SNOW[severity]
    return _apply(A.RandomSnow(snow_point_range=points, method="bleach",
                               brightness_coeff=brightness, p=1.0), image, rng)


def _fog(image, severity, rng):
    import albumentations as A
    return _apply(A.RandomFog(fog_coef_range=_FOG[severity], alpha_coef=0.1, p=1.0), image, rng)


def _spatter(image, severity, rng):
    import albumentations as A
    cutout, intensity = _SPATTER[severity]
    return _apply(A.Spatter(mode="rain", cutout_threshold=cutout, intensity=intensity, p=1.0),
                  image, rng)


EXTERNAL_RENDERERS = {"rain": _rain, "snow": _snow, "haze": _fog, "raindrop": _spatter}
