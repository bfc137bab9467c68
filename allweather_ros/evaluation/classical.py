"""Classical single-image baselines, one per degradation type, to measure the network against.

Haze: He et al.'s dark channel prior with a guided-filter-refined transmission. Rain streaks,
snowflakes and lens drops: a median filter, whose kernel is chosen on the validation split.
Mixtures chain them in the physical order (dehaze the atmosphere, then filter the particles).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..description import Degradation


def dark_channel(image: np.ndarray, patch: int = 15) -> np.ndarray:
    """Per-pixel minimum over colour and a patch: near zero in haze-free outdoor regions."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2), kernel)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 30,
                  eps: float = 1e-3) -> np.ndarray:
    """He et al.'s guided filter (grey guide): edge-aware smoothing of `src` along `guide`."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, -1, size)

    mean_i, mean_p = box(guide), box(src)
    a = (box(guide * src) - mean_i * mean_p) / (box(guide * guide) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def dehaze_dark_channel(image: np.ndarray, omega: float = 0.95, t_min: float = 0.1) -> np.ndarray:
    """Invert I = J t + A (1 - t) with A and t estimated from the dark channel."""
    image = image.astype(np.float32)
    dark = dark_channel(image)
    brightest = np.argsort(dark.ravel())[-max(1, dark.size // 1000):]
    airlight = image.reshape(-1, 3)[brightest].max(axis=0).clip(1e-3, 1.0)
    transmission = 1.0 - omega * dark_channel(image / airlight)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    transmission = guided_filter(grey, transmission).clip(t_min, 1.0)
    return ((image - airlight) / transmission[..., None] + airlight).clip(0.0, 1.0)


def median(image: np.ndarray, kernel: int) -> np.ndarray:
    """Median filter; 8-bit, since OpenCV's float median takes only 3x3 and 5x5 kernels."""
    quantised = (image.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.medianBlur(quantised, kernel).astype(np.float32) / 255.0


def restore(image: np.ndarray, degradations: list[Degradation], median_kernel: int = 5):
    """The classical restoration for the known (true) degradations of a frame."""
    types = {d.type for d in degradations}
    out = image.astype(np.float32)
    if "haze" in types:
        out = dehaze_dark_channel(out)
    if types & {"rain", "snow", "raindrop"}:
        out = median(out, median_kernel)
    return out
