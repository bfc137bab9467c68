"""How a frame of any size becomes the built-in estimator's input: shrunk to a short side of
`input_side` (aspect kept, long side capped), in numpy with torch's arithmetic, so the provider
runs the network (in torch or as its ONNX graph) on exactly what training's `forward` sees, and
how a large frame is read in tiles at the scale of the training crops.
"""
from __future__ import annotations

import numpy as np


def input_size(height: int, width: int, input_side: int, max_aspect: float) -> tuple[int, int]:
    """(h, w) a frame is resized to: short side `input_side`, aspect kept up to a cap."""
    scale = input_side / min(height, width)
    cap = round(max_aspect * input_side)
    return min(cap, max(1, round(height * scale))), min(cap, max(1, round(width * scale)))


def _resize_axis(x: np.ndarray, axis: int, out: int, area: bool) -> np.ndarray:
    """x resized along `axis` to `out` samples as torch resizes: "area" (adaptive average
    pooling: output i averages inputs floor(i * n / out) .. ceil((i + 1) * n / out) - 1, here
    by a running sum) or bilinear with align_corners=False."""
    n = x.shape[axis]
    i = np.arange(out)
    if area:
        start, end = (i * n) // out, -((-(i + 1) * n) // out)
        total = np.cumsum(x, axis=axis, dtype=np.float64)
        total = np.concatenate([np.zeros_like(total.take([0], axis)), total], axis)
        shape = [1] * x.ndim
        shape[axis] = out
        return (total.take(end, axis) - total.take(start, axis)) / (end - start).reshape(shape)
    source = np.maximum((i + 0.5) * n / out - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), n - 1)
    shape = [1] * x.ndim
    shape[axis] = out
    frac = (source - low).reshape(shape)
    return x.take(low, axis) * (1.0 - frac) + x.take(np.minimum(low + 1, n - 1), axis) * frac


def estimator_input(frame: np.ndarray, input_side: int, max_aspect: float) -> np.ndarray:
    """An (H, W, 3) frame as the network's input (1, 3, h, w) float32: shrunk by area averaging
    (thin streaks stay faint lines instead of falling between samples), or bilinearly resized
    when a side grows, exactly as DegradationEstimator.forward resizes in torch."""
    height, width = frame.shape[:2]
    size = input_size(height, width, input_side, max_aspect)
    x = frame
    if size != (height, width):
        area = size[0] <= height and size[1] <= width
        x = _resize_axis(_resize_axis(x, 0, size[0], area), 1, size[1], area)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def tiles(frame: np.ndarray, side: int, max_tiles: int) -> list[np.ndarray]:
    """Square views of `side` pixels (of the frame's short side, where that is smaller) that
    cover an (H, W, 3) frame, evenly spaced (overlapping where the side does not divide it), at
    most `max_tiles` of them chosen evenly along the scan; a square frame no larger than `side`
    is its own one view.

    The estimator learnt streaks, flakes and drops on crops of a few hundred pixels: a camera
    frame shrunk whole to its input turns a one-pixel streak into a faint fraction of a pixel,
    while a tile of about the training crop's size shows weather at the scale it was taught.
    A small frame is tiled too: read whole, a 320x240 or a wide 640x235 frame (squeezed to the
    network's aspect cap) showed its clean scenes to the estimator as weather (clean real photos
    shrunk to a short side of 240 called clean 39% against 48% in tiles, a 640x235 band 25%
    against 61%; model card)."""
    height, width = frame.shape[:2]
    side = min(side, height, width)
    rows = np.linspace(0, height - side, -(-height // side)).round().astype(int)
    cols = np.linspace(0, width - side, -(-width // side)).round().astype(int)
    views = [frame[y:y + side, x:x + side] for y in rows for x in cols]
    if len(views) > max_tiles:
        views = [views[i] for i in np.linspace(0, len(views) - 1, max_tiles).round().astype(int)]
    return views
