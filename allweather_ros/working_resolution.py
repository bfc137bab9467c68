"""Restore large frames at a working resolution; carry the correction back by guided upsampling.

The network's cost grows with the pixel count, and a 1080p frame restored at 1280 px costs
about half as much. Upscaling the small restored frame would blur away the camera's detail,
so instead the correction is moved: at the working resolution, in small windows, fit
restored ~ A * frame + B per channel (the guided filter's coefficients, He et al., with the
frame as the guide), upsample A and B bilinearly and apply them to the full-resolution frame.
Gain and offset changes (haze, exposure) and smooth residuals transfer exactly, and the
full-resolution frame keeps its own edges and texture.
"""
from __future__ import annotations

import cv2
import numpy as np

# Chosen on 1920x1080 validation-split frames at max side 1280 (tools/working_resolution_check.py
# --split val --sweep): PSNR against full-resolution inference falls as either grows (radius 8
# or eps 1e-3: 1.7 to 6.7 dB lower); eps 1e-5 scores within 0.2 dB of 1e-6 and is less
# sensitive to sensor noise in flat regions.
RADIUS = 1  # window radius of the fit, in working-resolution pixels
EPS = 1e-5  # regularises the fit where the frame is flat (variance below EPS: offset only)


def working_size(height: int, width: int, max_side: int) -> tuple[int, int] | None:
    """(height, width) to restore a frame at, or None when it is already small enough
    (or max_side is 0: off)."""
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return None
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame at (height, width), area-averaged (no aliasing of rain streaks or texture)."""
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.blur(image, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_upsample(frame: np.ndarray, frame_low: np.ndarray, restored_low: np.ndarray,
                    radius: int = RADIUS, eps: float = EPS) -> np.ndarray:
    """`frame` (H, W, 3) with the correction that turned `frame_low` into `restored_low`
    (both h, w, 3), fitted as a per-channel local linear model, applied at full resolution."""
    mean_i = _box(frame_low, radius)
    mean_p = _box(restored_low, radius)
    var_i = _box(frame_low * frame_low, radius) - mean_i * mean_i
    cov_ip = _box(frame_low * restored_low, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    size = (frame.shape[1], frame.shape[0])
    out = cv2.resize(_box(a, radius), size, interpolation=cv2.INTER_LINEAR)  # the gain
    out *= frame  # in place: each full-resolution temporary costs a pass over memory
    out += cv2.resize(_box(b, radius), size, interpolation=cv2.INTER_LINEAR)  # the offset
    return np.clip(out, 0.0, 1.0, out=out)


def upsample_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A per-pixel map (h, w) of the working resolution, bilinearly at (height, width)."""
    return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
