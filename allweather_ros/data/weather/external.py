"""albumentations' weather transforms as renderers: written by others, never used in training,
they are the left-out renderer of each type in the evaluation. albumentations is optional (the
`dev` extra); it draws from numpy's global state, so it is seeded from the sample's generator."""
from __future__ import annotations

import random

import numpy as np

# albumentations' own strength knobs per severity (its documented ranges).
_RAIN = {"slight": "drizzle", "moderate": "heavy", "heavy": "torrential"}
_SNOW = {"slight": (0.05, 0.12), "moderate": (0.12, 0.25), "heavy": (0.25, 0.4)}
_FOG = {"slight": (0.1, 0.25), "moderate": (0.25, 0.5), "heavy": (0.5, 0.85)}
_SPATTER = {"slight": (0.68, 0.72), "moderate": (0.64, 0.68), "heavy": (0.58, 0.63)}


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
    return _apply(A.RandomRain(rain_type=_RAIN[severity], slant_range=(-15, 15),
                                brightness_coefficient=0.85, p=1.0),
                  image, rng)


def _snow(image, severity, rng):
    import albumentations as A
    return _apply(A.RandomSnow(snow_point_range=_SNOW[severity], method="bleach",
                               brightness_coeff=2.0, p=1.0), image, rng)


def _fog(image, severity, rng):
    import albumentations as A
    return _apply(A.RandomFog(fog_coef_range=_FOG[severity], alpha_coef=0.1, p=1.0), image, rng)


def _spatter(image, severity, rng):
    import albumentations as A
    return _apply(A.Spatter(mode="rain", cutout_threshold=_SPATTER[severity], p=1.0), image, rng)


EXTERNAL_RENDERERS = {"rain": _rain, "snow": _snow, "haze": _fog, "raindrop": _spatter}
