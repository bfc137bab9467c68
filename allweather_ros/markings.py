"""Road markings kept: the contrast the network took from lane markings is given back.

Told heavy rain or snow, the network dims thin bright lines, and a lane marking is one to it:
on a real dash cam under heavy rain told the truth, the markings kept 0.67 of their clean
contrast where the rainy input had 0.78 (tools/lane_check.py --clip). What a lane detector
downstream reads most must not come out less legible than it went in. A marking differs from
what falls:

- it lies on the ground: below the middle of a forward camera's frame;
- it is wider than a streak: it outlasts an opening that takes 1-pixel streaks out;
- it is long and, in perspective, slanted away from upright (a falling streak is nearer
  upright: streak_shape.py);
- it is alone in its direction, where rain and wind-blown snow come as a field of parallel
  streaks: a slanted bar with many thin things parallel to it is weather.

Where the input has such a blob, each channel's lift over its surround is given back to the
restored frame, up to what it came in with: a marking the network left as legible (haze taken
off lifts it) is left as restored, and the road around it keeps its restoration.
"""
from __future__ import annotations

import cv2
import numpy as np

from .streak_shape import blob_axes

SIDE = 9  # pixels: a marking is narrower than this (at the working resolution)
LIFT = 0.12  # above its surround by at least this (of 1.0), in the brightest channel
LEVEL = 0.45  # its brightest channel reaches this
STREAK_WIDTH = 2  # an opening this wide takes out the streaks (1 pixel wide) crossing a marking
MIN_LENGTH = 24.0  # pixels: a marking's long axis (four standard deviations) at least
MIN_ELONGATION = 4.0  # its long axis over its short one, at least
MIN_TILT = 25.0  # degrees from upright, at least (perspective slants a lane's lines)
GROUND = 0.5  # markings are looked for below this share of the frame's height
PARALLEL = 8.0  # degrees: thin things this near a bar's direction are parallel to it
FIELD = 6  # this many thin things parallel to a bar make it part of a field of weather


def _candidates(value: np.ndarray) -> np.ndarray:
    """uint8 mask of the thin bright things: bright, and lifted over a SIDE-wide opening."""
    surround = cv2.morphologyEx(value, cv2.MORPH_OPEN, np.ones((SIDE, SIDE), np.uint8))
    return ((value >= LEVEL) & (value - surround > LIFT)).astype(np.uint8)


def _shapes(mask: np.ndarray):
    """The blobs of `mask` as labels, with the long and short axis (four standard deviations,
    pixels) and the angle from upright of each (streak_shape.blob_axes)."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    long, short, tilt = blob_axes(labels, np.bincount(labels.ravel(), minlength=count))
    return labels, 4 * np.sqrt(long), 4 * np.sqrt(np.maximum(short, 0.0)), tilt


def marking_mask(frame: np.ndarray) -> np.ndarray:
    """bool (H, W): the input's pixels that belong to road markings (see the module
    docstring): bars on the ground, the frame's lower part, measured against the streaks of
    the whole frame."""
    candidates = _candidates(cv2.extractChannel(cv2.cvtColor(frame, cv2.COLOR_RGB2HSV), 2))
    _, long, short, tilt = _shapes(candidates)  # the weather's streaks, over the whole frame
    thin = (long >= MIN_LENGTH / 3) & (long >= 3 * short)
    thin[0] = False
    field = tilt[thin]
    top = round(GROUND * frame.shape[0])
    body = cv2.morphologyEx(candidates[top:], cv2.MORPH_OPEN,
                            np.ones((STREAK_WIDTH, STREAK_WIDTH), np.uint8))
    labels, long, short, tilt = _shapes(body)
    bar = (long >= MIN_LENGTH) & (long >= MIN_ELONGATION * short) & (np.abs(tilt) >= MIN_TILT)
    bar[0] = False
    for i in np.flatnonzero(bar):
        parallel = np.abs((field - tilt[i] + 90.0) % 180.0 - 90.0) < PARALLEL
        bar[i] = parallel.sum() - 1 < FIELD  # the bar itself, thin enough, counts once
    mask = np.zeros(frame.shape[:2], bool)
    mask[top:] = bar[labels]
    return mask


def keep_markings(frame: np.ndarray, restored: np.ndarray,
                  mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """`restored` with the contrast of `frame`'s road markings that it lost given back, and
    the share of the frame's pixels that were such markings (0: none). `mask`: the frame's
    `marking_mask`, where the caller has it already."""
    mask = marking_mask(frame) if mask is None else mask
    if not mask.any():
        return restored, 0.0
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rows, cols = np.nonzero(mask)
    # The surrounds are openings over SIDE-wide squares: a margin of SIDE around the markings
    # gives every marked pixel the surround it has in the whole frame.
    box = (slice(max(rows.min() - SIDE, 0), rows.max() + SIDE + 1),
           slice(max(cols.min() - SIDE, 0), cols.max() + SIDE + 1))
    square = np.ones((SIDE, SIDE), np.uint8)
    kept = restored.copy()
    for c in range(3):
        came, went = frame[box][..., c], restored[box][..., c]
        lost = np.maximum((came - cv2.morphologyEx(came, cv2.MORPH_OPEN, square))
                          - (went - cv2.morphologyEx(went, cv2.MORPH_OPEN, square)), 0.0)
        kept[box][..., c] = np.where(mask[box], np.minimum(went + lost, 1.0), went)
    return kept, float(mask.mean())
