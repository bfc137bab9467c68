"""Night views of day scenes: what a vehicle or street camera films after dark.

The clean scenes are nearly all daylight photographs, so lights in the dark were never seen
as scene: on real night photographs the estimator read street lamps and their bloom as lens
drops or snow, and missed night mist. A night view relights a day scene (the daylight gone, a
blue or sodium cast, the sky darkest) and adds lamps, small bright sources with the soft bloom
of a clear night. It is the clean target; any weather is then rendered over it.
"""
from __future__ import annotations

import cv2
import numpy as np

from .weather.common import scale

# Lamp colours: sodium, warm white, cold LED white, a red tail light.
_LAMPS = np.array([(1.0, 0.62, 0.25), (1.0, 0.85, 0.62), (0.85, 0.93, 1.0), (1.0, 0.18, 0.1)],
                  np.float32)
_CASTS = np.array([(0.8, 0.9, 1.15), (1.15, 0.95, 0.65), (1.0, 1.0, 1.0)], np.float32)


def night_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The float RGB day view (H, W, 3) in [0, 1] relit as a night street with a few lamps."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    cast = _CASTS[rng.integers(len(_CASTS))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    dark = np.clip(image, 0.0, 1.0) ** np.float32(rng.uniform(1.4, 2.2))
    dark = dark * np.float32(rng.uniform(0.08, 0.35)) * cast
    # the sky is darkest: daylight falls from above, lamps light the ground
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    dark = dark * (1.0 - rng.uniform(0.3, 0.7) * (1.0 - rows))

    glow = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(1, 9))):
        x, y = rng.uniform(0, w), rng.uniform(0, h) * rng.uniform(0.3, 1.0)
        radius = rng.uniform(0.8, 4.0) * s
        colour = _LAMPS[rng.integers(len(_LAMPS))]
        core = np.zeros((h, w), np.float32)
        cv2.circle(core, (round(x * 16), round(y * 16)), max(1, round(radius * 16)), 1.0, -1,
                   cv2.LINE_AA, shift=4)
        bloom = cv2.GaussianBlur(core, (0, 0), radius * rng.uniform(2.0, 5.0))
        bloom = bloom / max(float(bloom.max()), 1e-6) * rng.uniform(0.1, 0.4)
        glow += (core * rng.uniform(1.5, 3.0) + bloom)[..., None] * colour
    return np.clip(dark + glow, 0.0, 1.0).astype(np.float32)
