"""The scene's lights, kept: small lights that the network dimmed are put back as they came in.

Told heavy rain or snow, the network takes out small bright things, and a traffic light, a
brake light or a lamp a few pixels across is one to it: on clean night scenes told "heavy rain"
a light 3 pixels across kept under half of its contrast, the smallest none (model card).
Weather neither glows nor has a colour of its own, so two kinds of small bright blob are
lights, whatever the description says:

- coloured: near the top of the range in one channel, far brighter than the scene around it
  and strongly coloured (rain, snow and fog scatter white light: a red, amber or green point is
  a signal, a brake light, a lamp);
- a white source at night: clipped to white in a dark frame (a headlight, a street lamp, a
  strobe).

Rain lit by a street lamp or a headlight at night is as bright and as coloured (sodium orange)
or clipped white as a light, but each of its streaks is long, thin and nearer upright than level
(streak_shape.py): such blobs are left to the network. Where the network dimmed a light, the
restored frame is given back the input's pixels there (and a pixel around them); a light it kept
as bright (a red lamp through haze taken off) is left as restored. Bright white things in
daylight are left to the network: they look like snowflakes and streaks.
"""
from __future__ import annotations

import cv2
import numpy as np

from .streak_shape import streak_blobs

SIDE = 7  # pixels: a light is narrower than this (at the working resolution)
LIFT = 0.3  # brighter than its surround by at least this (of 1.0)
BRIGHT = 0.85  # a light's brightest channel reaches this
CHROMA = 0.4  # its brightest channel above its darkest by at least this: coloured
CLIPPED = 0.97  # every channel at least this: a white source
NIGHT = 0.3  # a frame whose brightest channel averages under this is a night scene
DIMMED = 0.1  # a light the network made darker than this (brightest channel) is put back


def _brightest(frame: np.ndarray) -> np.ndarray:
    """Per pixel, its brightest channel (HSV's value: far faster than a reduction over them)."""
    return cv2.extractChannel(cv2.cvtColor(frame, cv2.COLOR_RGB2HSV), 2)


def _candidates(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels bright enough for a light and far brighter than their
    surround (few in most frames: the colour tests then look at those alone)."""
    surround = cv2.morphologyEx(value, cv2.MORPH_OPEN, np.ones((SIDE, SIDE), np.uint8))
    return np.nonzero((value >= BRIGHT) & (value - surround > LIFT))


def keep_lights(frame: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, float]:
    """`restored` with `frame`'s lights that it dimmed put back, and the share of the frame's
    pixels that were such lights (0: none)."""
    value = _brightest(frame)
    rows, cols = _candidates(value)
    if not rows.size:
        return restored, 0.0
    lit, darkest = value[rows, cols], frame[rows, cols].min(axis=1)
    night = float(value.mean()) < NIGHT
    light = (lit - darkest > CHROMA) | ((darkest >= CLIPPED) & night)  # coloured, or a source
    rows, cols, lit = rows[light], cols[light], lit[light]
    dimmed = lit - restored[rows, cols].max(axis=1) > DIMMED
    if dimmed.any():  # the blobs' shapes are judged on all their pixels, dimmed or not
        dimmed &= ~_in_streaks(rows, cols)
    if not dimmed.any():
        return restored, 0.0
    rows, cols = rows[dimmed], cols[dimmed]
    # the lights' box and a margin: the softened mask and the blend are made there alone
    top, left = max(rows.min() - 3, 0), max(cols.min() - 3, 0)
    box = np.s_[top:rows.max() + 4, left:cols.max() + 4]
    where = np.zeros(frame[box].shape[:2], np.float32)
    where[rows - top, cols - left] = 1.0
    where = np.maximum(cv2.GaussianBlur(cv2.dilate(where, np.ones((3, 3), np.uint8)), (3, 3), 0),
                       where)
    kept = restored.copy()
    kept[box] += where[..., None] * (frame[box] - restored[box])
    return kept, rows.size / value.size


def _in_streaks(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which of these pixels lie in a blob of them at least SIDE pixels large and shaped like a
    falling streak: lamp-lit rain, not a light."""
    top, left = rows.min(), cols.min()
    mask = np.zeros((rows.max() - top + 1, cols.max() - left + 1), np.uint8)
    mask[rows - top, cols - left] = 1
    labels, streak = streak_blobs(mask, SIDE)
    return streak[labels[rows - top, cols - left]]
