"""Restore large frames at a working resolution; carry the correction back by guided upsampling.

The network's cost grows with the pixel count, and a 1080p frame restored at 1280 px costs
about half as much. Upscaling the small restored frame would blur away the camera's detail,
so instead the correction is moved: at the working resolution, in small windows, fit
restored ~ A * frame + B per channel (the guided filter's coefficients, He et al., with the
frame as the guide), upsample A and B bilinearly and apply them to the full-resolution frame.
Gain and offset changes (haze, exposure) and smooth residuals transfer exactly, and the
full-resolution frame keeps its own edges and texture.

What such a model cannot carry is a particle taken out: a rain streak or snowflake a pixel or
two wide at the working resolution is thinner and brighter still at full resolution, and the
smoothly upsampled coefficients leave most of it there (real rain photographs at 1024 pixels
restored at 640 kept 0.38 of their rain, read by the built-in estimator, against 0.25 with
the step below; docs/experiments.md). So where the restorer darkened a pixel more than its
neighbourhood, and the pixel was not the darker part of that neighbourhood (particles are
bright: `particles_taken_out`), the full-resolution frame is held no brighter than the
restored frame upsampled: the particle stays out, and darker detail (the scene behind it) is
kept. A strong cut of a textured frame's contrast reads the same way, and keeps the working
resolution's bright detail there.
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
# A particle taken out, at the working resolution: the restorer darkened the pixel by
# PARTICLE_DROP[0] (none of it carried) to PARTICLE_DROP[1] (all of it) more than the mean of
# its neighbourhood (PARTICLE_RADIUS), and in the frame the pixel was not darker than that mean
# by more than PARTICLE_FLOOR (particles are bright; a dehazed texture's dark pixels darken too).
# Chosen on validation frames at 1280x720 restored at 640 (tools/working_resolution_check.py's
# frames, 60 with weather a renderer set; training renderers / left-out, dB against the truth):
# the linear model alone 22.74 / 21.97, with particles held out 22.71 / 22.39 (rain +0.13 /
# +1.39, mixtures -0.07 / +0.45); a drop of 0.02-0.06 gave less on the left-out renderer and more
# on neither, a bicubic ceiling 22.73 / 22.33. Asking the darkening to take a third of the
# pixel's brightness above its neighbourhood (so that no contrast cut reads as particles) lost
# most of the left-out gain (22.16): the network takes a particle partly out as often as wholly.
PARTICLE_RADIUS = 2
PARTICLE_DROP = (0.01, 0.03)
PARTICLE_FLOOR = -0.01


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
    (both h, w, 3), fitted as a per-channel local linear model, applied at full resolution;
    float32, as the network's output is (a float64 frame too)."""
    frame, frame_low, restored_low = (np.asarray(x, np.float32)
                                      for x in (frame, frame_low, restored_low))
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
    particles = particles_taken_out(frame_low, restored_low)
    if particles.any():  # no cost, and no change, where nothing was taken out (clean frames)
        share = upsample_map(particles, *frame.shape[:2])
        ceiling = cv2.resize(restored_low, size, interpolation=cv2.INTER_LINEAR)
        # no brighter than the restored frame where a particle was taken out; darker detail kept
        out = cv2.blendLinear(out, cv2.min(out, ceiling), 1.0 - share, share)
    return np.clip(out, 0.0, 1.0, out=out)


def particles_taken_out(frame_low: np.ndarray, restored_low: np.ndarray) -> np.ndarray:
    """(h, w) float32 in [0, 1]: how surely the restorer took a particle out of each pixel of
    the working resolution (module docstring), widened by a pixel to cover its full-resolution
    footprint."""
    grey = np.full((1, 3), 1.0 / 3.0, np.float32)  # the channels' mean, as one cheap pass
    frame = cv2.transform(frame_low, grey)
    correction = cv2.transform(restored_low, grey) - frame
    drop = _box(correction, PARTICLE_RADIUS) - correction
    excess = frame - _box(frame, PARTICLE_RADIUS)
    low, high = PARTICLE_DROP
    share = np.clip((drop - low) / (high - low), 0.0, 1.0) * (excess > PARTICLE_FLOOR)
    return cv2.dilate(share.astype(np.float32), np.ones((3, 3), np.uint8))


def upsample_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A per-pixel map (h, w) of the working resolution, bilinearly at (height, width)."""
    return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
