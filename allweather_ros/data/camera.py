"""Camera realism: what a real camera does to every frame, weather or not, drawn at random.

Before the weather (the scene as this camera would see it on a dry day, the clean target):
exposure and white balance, slight motion blur, a lower-resolution sensor or lens softness.
After it (applied alike to the degraded frame and its target, so the network learns to remove
weather, not to denoise): the same sensor noise added to both, and JPEG at the same quality.
"""
from __future__ import annotations

import cv2
import numpy as np


def camera_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clean float RGB view through a random camera: each effect drawn independently."""
    out = image
    if rng.random() < 0.5:  # exposure and gamma, a little white balance
        gain = np.exp(rng.normal(0.0, 0.25)) * rng.uniform(0.94, 1.06, 3)
        out = np.clip(out * gain.astype(np.float32), 0.0, 1.0) ** np.float32(rng.uniform(0.8, 1.25))
    if rng.random() < 0.25:  # slight camera or vehicle motion during the exposure
        length = rng.uniform(1.5, 5.0)
        angle = rng.uniform(0, np.pi)
        size = int(np.ceil(length)) | 1
        kernel = np.zeros((size, size), np.float32)
        c = size // 2
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        cv2.line(kernel, (round((c - dx) * 16), round((c - dy) * 16)),
                 (round((c + dx) * 16), round((c + dy) * 16)), 1.0, 1, cv2.LINE_AA, shift=4)
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.3:  # a smaller sensor, upscaled; or a soft lens
        h, w = out.shape[:2]
        f = rng.uniform(0.4, 0.85)
        small = cv2.resize(out, (max(8, round(w * f)), max(8, round(h * f))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out, dtype=np.float32)


def camera_sensor(degraded: np.ndarray, clean: np.ndarray, rng: np.random.Generator):
    """Sensor noise and JPEG on the degraded frame and, identically, on its clean target."""
    if rng.random() < 0.5:  # shot noise grows with the signal, read noise does not
        shot, read = rng.uniform(0.0, 0.02), rng.uniform(0.0, 0.01)
        field = rng.standard_normal(degraded.shape).astype(np.float32)
        sigma = np.sqrt(shot**2 * clean + read**2).astype(np.float32)
        degraded = np.clip(degraded + sigma * field, 0.0, 1.0)
        clean = np.clip(clean + sigma * field, 0.0, 1.0)
    if rng.random() < 0.4:
        quality = int(rng.integers(40, 95))
        degraded, clean = _jpeg(degraded, quality), _jpeg(clean, quality)
    return degraded.astype(np.float32), clean.astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    encoded = cv2.imencode(".jpg", (image * 255.0 + 0.5).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
