"""What a falling streak looks like, blob by blob: long, thin and nearer upright than level.

Rain falls, so its streaks run down the frame (slanted by wind, never level), each far longer
than it is wide. Stages that take back or put back small bright things ask this of each blob:
transient suppression takes back only streak-shaped ones (a flashing light is round or level),
and the light keeper puts back only those that are not (a lamp-lit streak is bright and coloured
like a light).
"""
from __future__ import annotations

import cv2
import numpy as np

MIN_ELONGATION = 2.0  # a streak's long axis over its short one, at least


def blob_axes(labels: np.ndarray, sizes: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per blob of `labels` (int, 0 background, as cv2.connectedComponents gives them; `sizes`
    their pixel counts): the variances of its pixels (each a unit square) along its long and
    its short axis (pixels squared), and the long axis's angle from upright in degrees (0:
    straight down the frame, +-90: level)."""
    count = sizes.size
    ys, xs = np.nonzero(labels)
    blob = labels[ys, xs]
    pixels = np.maximum(sizes, 1).astype(np.float64)

    def mean(values):
        return np.bincount(blob, values.astype(np.float64), minlength=count) / pixels

    my, mx = mean(ys), mean(xs)
    down = mean(ys * ys) - my * my + 1 / 12
    across = mean(xs * xs) - mx * mx + 1 / 12
    covariance = mean(ys * xs) - my * mx
    half_gap = np.sqrt(((down - across) / 2) ** 2 + covariance ** 2)
    tilt = np.degrees(0.5 * np.arctan2(2 * covariance, down - across))
    return (down + across) / 2 + half_gap, (down + across) / 2 - half_gap, tilt


def _streak_shaped(labels: np.ndarray, sizes: np.ndarray, min_elongation: float) -> np.ndarray:
    """(count,) bool: which blobs are shaped like falling streaks: their long axis at least
    `min_elongation` times their short one, and nearer upright than level."""
    long, short, tilt = blob_axes(labels, sizes)
    return (long >= min_elongation ** 2 * short) & (np.abs(tilt) < 45.0)


def streak_blobs(mask: np.ndarray, min_pixels: int, min_elongation: float = MIN_ELONGATION
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The blobs of `mask` (uint8, 8-connected) as labels, and (count,) bool: which of them
    are at least `min_pixels` pixels and `_streak_shaped` (the background, label 0, never)."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    sizes = np.bincount(labels.ravel(), minlength=count)
    streak = _streak_shaped(labels, sizes, min_elongation) & (sizes >= min_pixels)
    streak[0] = False
    return labels, streak
