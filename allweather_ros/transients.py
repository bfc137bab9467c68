"""Transient suppression: rain streaks and snowflakes that a camera's last frames show were not
there, taken out of a stream after the network.

The network learnt weather from our renderers and leaves most real streaks in place (model
card). Falling rain and snow have one property no renderer has to get right: they are
transient. A streak or flake crosses a pixel within a frame or two, while the scene behind it
stays. So, per camera, each restored frame is aligned once to the one before it (phase
correlation, refined to an affine warp by ECC on a small grey copy), the last few are warped
onto the newest through those alignments, and their per-pixel median (a streak that one of
them had does not survive it) is what the scene looks like. A pixel is taken back to it when
it is

- brighter than the median's 3x3 neighbourhood, plus a share of its local range: more than a
  pixel of misalignment or the scene's own texture explains;
- brightened alike in every colour (water and ice scatter white light);
- part of a thin blob (no wider than `max_width` pixels, at least `min_pixels` of them) of
  what brightened, not of a headlight or an object coming into view;
- part of a streak: a blob at least `min_elongation` times as long as it is wide, its long
  axis nearer upright than level. A round point of light that comes on for a frame or two is a
  strobe, a beacon or a blinking lamp (what a driving or surveillance stack must see), and a
  level bar of light is a light bar, not rain; round flakes are left to the network;
- where every past frame saw the scene (not a border that just came into view), and not
  touching the frame's edge (what crosses it has its past outside the picture);
- not a thing that the past frames show moving. The warp follows the camera, not the road
  of a car driving forward (it flows towards the camera, near parts faster than far ones, and
  its lane markings slide along it) nor anything moving on its own (a cyclist's reflective
  strip): such a thing was in every past frame on a straight track behind it, with about its
  contrast, where a falling particle was not. A slowly drifting flake is spared too.

When the aligned frames disagree over much of the picture (a fast turn, a cut), nothing is
changed; nor while the picture zooms (the warps' scale changing by over `max_zoom`, 0.2%, a
frame on average): a camera moving along its axis, on a vehicle driving forward, sees the road
flow at speeds no warp or straight track follows (real dash cams zoom 0.3-1.7% a frame, a
static or panning camera under 0.05%), and lane dashes there were taken for streaks. So on a
moving vehicle the stage stands aside, and it works for static, panning and tilting cameras.
Haze and lens drops stay put from frame to frame, so they are left to the network.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .streak_shape import MIN_ELONGATION, streak_blobs

ALIGN_SIDE = 160  # pixels of the longer side of the grey copy the frames are aligned on
# Phase correlation's peak between consecutive frames: 0.89-0.99 for a slowly panning camera
# (real rain, clean and rainy synthetic shots), 0.12-0.5 in dense snow and from a moving bus,
# 0.02 across a cut, 0.04-0.1 between frames of noise. Below this, the frames share nothing.
MIN_RESPONSE = 0.2
_ECC_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4)
_WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
_NEAR = np.ones((3, 3), np.uint8)
_NEAREST = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP


@dataclass
class _Past:
    frame: np.ndarray  # restored (H, W, 3) float32
    small: np.ndarray  # grey (h, w) float32 at ALIGN_SIDE
    stamp: float  # time.monotonic() when it was seen
    to_previous: np.ndarray | None = None  # 3x3: its small copy's pixels -> its predecessor's


class TransientSuppressor:
    """One camera's transient suppression. Call with each restored frame of the stream in order;
    `frames` past frames are kept (0: off)."""

    def __init__(self, frames: int = 3, threshold: float = 0.03, contrast: float = 0.5,
                 max_width: int = 5, min_pixels: int = 4, max_misfit: float = 0.15,
                 misfit_level: float = 0.06, max_gap_s: float = 1.0, max_motion: int = 10,
                 max_zoom: float = 0.002, min_elongation: float = MIN_ELONGATION):
        self.frames = frames
        self.threshold = threshold  # brightening (of 1.0) a transient must exceed
        self.contrast = contrast  # share of the past frames' local range added to it
        self.max_width = max_width
        self.min_pixels = min_pixels
        self.max_misfit = max_misfit  # share of the small copy the aligned frames may differ on
        self.misfit_level = misfit_level  # by more than this
        self.max_gap_s = max_gap_s  # an older past (a paused stream) is forgotten
        self.max_motion = max_motion  # pixels a frame a thing is followed at (see _falling)
        self.max_zoom = max_zoom  # zoom a frame (log of the scale) beyond which it stands aside
        self.min_elongation = min_elongation  # length over width of a blob taken as a streak
        self._past: list[_Past] = []
        self._lock = threading.Lock()
        self.last_share = 0.0
        """Share of the last frame's pixels taken back (0 when it was left alone)."""
        self.last_state = "off"
        """What happened to the last frame: "off"; "filling" (fewer agreeing past frames than
        `frames`: after a start, a cut, a pause or a new size); "misaligned" (the past frames do
        not align with it); "zooming" (stood aside: the picture zooms); "applied"."""

    def reset(self) -> None:
        with self._lock:
            self._past.clear()
            self.last_share, self.last_state = 0.0, "off"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """`frame` (H, W, 3) float32 in [0, 1], with the transients the past frames show taken
        out; the frame itself when there is not enough agreeing past."""
        with self._lock:
            if self.frames <= 0:  # off: no alignment paid for, no past kept
                self._past.clear()
                self.last_share, self.last_state = 0.0, "off"
                return frame
            now = time.monotonic()
            current = _Past(frame, _small_grey(frame), now)
            if self._past and (self._past[-1].frame.shape != frame.shape
                               or now - self._past[-1].stamp > self.max_gap_s):
                self._past.clear()
            state = "filling"
            if self._past:  # each frame is aligned once, to the one before it
                current.to_previous = _alignment(current.small, self._past[-1].small)
                if current.to_previous is None:  # nothing in common: a cut, or no picture
                    self._past.clear()
                    state = "misaligned"
            out, self.last_share = frame, 0.0
            if len(self._past) >= self.frames:
                chain = self._chain(current)
                if self._misfit(current.small, self._past[-1].small, current.to_previous):
                    self._past.clear()  # a cut: what came before is another scene
                    state = "misaligned"
                elif self._zooms(chain):
                    state = "zooming"
                elif (aligned := self._aligned(current, chain)) is None:
                    state = "misaligned"
                else:
                    out, self.last_share = self._suppressed(frame, *aligned)
                    state = "applied"
            self.last_state = state
            self._past.append(current)
            del self._past[:-self.frames]
            return out

    def _misfit(self, small: np.ndarray, past_small: np.ndarray, warp: np.ndarray) -> bool:
        """Whether the past's small copy, warped by `warp`, differs from `small` over too much
        of the picture once particles are filtered out (the warp does not hold)."""
        moved = cv2.warpAffine(past_small, warp[:2], small.shape[::-1], flags=_WARP,
                               borderMode=cv2.BORDER_REFLECT)
        differs = np.abs(cv2.medianBlur(moved, 3) - cv2.medianBlur(small, 3)) > self.misfit_level
        return float(differs.mean()) > self.max_misfit

    def _chain(self, current: _Past) -> list[tuple[_Past, np.ndarray]]:
        """Each past frame, newest first, with the 3x3 warp taking the current small copy's
        pixels to its (the consecutive alignments composed)."""
        chain, warp, later = [], np.eye(3), current
        for past in reversed(self._past[-self.frames:]):
            warp = later.to_previous @ warp
            chain.append((past, warp))
            later = past
        return chain

    def _zooms(self, chain: list[tuple[_Past, np.ndarray]]) -> bool:
        """Whether the warp to the oldest past frame changes the picture's scale by more than
        `max_zoom` a frame on average (its determinant is the area scale): a camera moving
        along its axis (module docstring)."""
        area = abs(np.linalg.det(chain[-1][1][:2, :2]))
        return area <= 0 or abs(np.log(area)) > 2 * self.max_zoom * len(chain)

    def _aligned(self, current: _Past, chain: list[tuple[_Past, np.ndarray]]
                 ) -> tuple[list[np.ndarray], np.ndarray] | None:
        """The past frames warped onto the current one and where all of them saw the scene (not
        a border that came into view), or None where the warp to an older one does not hold
        (the newest one's the caller has checked)."""
        height, width = current.frame.shape[:2]
        scale = np.diag([current.small.shape[1] / width, current.small.shape[0] / height, 1.0])
        warped, inside = [], np.ones((height, width), np.uint8)
        for age, (past, warp) in enumerate(chain):
            if age and self._misfit(current.small, past.small, warp):
                return None
            full = (np.linalg.inv(scale) @ warp @ scale)[:2]
            warped.append(cv2.warpAffine(past.frame, full, (width, height), flags=_WARP,
                                         borderMode=cv2.BORDER_REFLECT))
            inside &= cv2.warpAffine(np.ones_like(inside), full, (width, height),
                                     flags=_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped, cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)

    def _suppressed(self, frame: np.ndarray, warped: list[np.ndarray], inside: np.ndarray
                    ) -> tuple[np.ndarray, float]:
        # what the past frames agree on: their median, free of a streak any one of them had
        background = _median(warped)
        grey = _channel_mean(background)
        brightest = cv2.dilate(grey, _NEAR)  # a pixel of misalignment, and texture, explained
        margin = brightest + self.contrast * (brightest - cv2.erode(grey, _NEAR))
        change = frame - background
        level = _channel_mean(change)
        spread = (np.maximum(np.maximum(change[..., 0], change[..., 1]), change[..., 2])
                  - np.minimum(np.minimum(change[..., 0], change[..., 1]), change[..., 2]))
        mask = ((_channel_mean(frame) - margin > self.threshold)  # brighter than explained
                & (spread < 0.75 * level + 3 / 255)  # alike in every colour
                & inside)
        brightened = (level > self.threshold).astype(np.uint8)
        edge = (~inside).astype(np.uint8)  # what the past did not see, and the frame's border
        edge[[0, -1], :] = 1
        edge[:, [0, -1]] = 1
        mask = _thin_streaks(mask.astype(np.uint8), brightened, self.max_width, self.min_pixels,
                             self.min_elongation, cv2.dilate(edge, _NEAR, iterations=2))
        mask = self._falling(mask, frame, warped)
        if not mask.any():
            return frame, 0.0
        share = float(mask.mean())
        soft = cv2.GaussianBlur(cv2.dilate(mask, _NEAR).astype(np.float32), (3, 3), 0)
        return frame + soft[..., None] * (np.minimum(background, frame) - frame), share

    def _falling(self, mask: np.ndarray, frame: np.ndarray, warped: list[np.ndarray]
                 ) -> np.ndarray:
        """The blobs of `mask` (uint8) that fell, not moving things. A blob moved when, for
        one velocity v of at most `max_motion` pixels a frame (a 2-pixel grid), over half of
        its pixels have, `age * v` back in every past frame (give or take `age` pixels), a thin
        brightening (top-hat) of between half and twice their own: the same thing, seen on a
        straight track."""
        ys, xs = np.nonzero(mask)
        if ys.size:
            count, labels = cv2.connectedComponents(mask, connectivity=8)
            blob, disc = labels[ys, xs], _disc(self.max_width)
            own = np.maximum(_top_hat(frame, disc)[ys, xs], self.threshold)
            pasts = [(age, cv2.dilate(_top_hat(past, disc), np.ones((2 * age + 1,) * 2, np.uint8)))
                     for age, past in enumerate(warped, start=1)]
            height, width = mask.shape
            velocity = _velocities(self.max_motion)  # (V, 2): vy, vx
            on_track = np.ones((len(velocity), ys.size), bool)
            for age, hat in pasts:
                y = ys[None, :] - age * velocity[:, :1]
                x = xs[None, :] - age * velocity[:, 1:]
                on_track &= (y >= 0) & (y < height) & (x >= 0) & (x < width)
                there = hat[y.clip(0, height - 1), x.clip(0, width - 1)]
                on_track &= (there > own / 2) & (there < own * 2)
            # pixels on track per (velocity, blob), over half of a blob for one velocity
            which, pixel = np.nonzero(on_track)
            counts = np.bincount(which * count + blob[pixel], minlength=len(velocity) * count)
            kept = (counts.reshape(-1, count) > np.bincount(blob, minlength=count) / 2).any(0)
            kept[0] = True
            mask = np.where(kept[labels], 0, mask).astype(np.uint8)
        return mask


def _velocities(limit: int) -> np.ndarray:
    """(V, 2) int: (vy, vx) on a 2-pixel grid, at most `limit` pixels long."""
    steps = range(-limit, limit + 1, 2)
    return np.array([(vy, vx) for vy in steps for vx in steps
                     if vy * vy + vx * vx <= limit * limit])


def _disc(width: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))


def _top_hat(image: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """How much brighter than its surroundings each pixel is, where a `disc` does not fit:
    a thin structure's contrast."""
    grey = _channel_mean(image)
    return grey - cv2.morphologyEx(grey, cv2.MORPH_OPEN, disc)


def _alignment(small: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
    """3x3 affine taking `small`'s pixels to where they were in `previous`: phase correlation's
    shift, refined by ECC (the shift alone where ECC does not converge); None where phase
    correlation finds no shift the two share (its peak under MIN_RESPONSE), without paying for
    ECC."""
    window = cv2.createHanningWindow(small.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(previous * window, small * window)
    if response < MIN_RESPONSE:
        return None
    warp = np.float32([[1, 0, -dx], [0, 1, -dy]])
    try:
        _, warp = cv2.findTransformECC(small, previous, warp, cv2.MOTION_AFFINE, _ECC_STOP,
                                       None, 3)
    except cv2.error:
        pass
    return np.vstack([warp, [0.0, 0.0, 1.0]])


def _median(frames: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the frames (the lower of the two middle ones for an even count: a
    transient is brighter); three by min and max, far cheaper than np.median."""
    if len(frames) == 1:
        return frames[0]
    if len(frames) == 2:
        return np.minimum(frames[0], frames[1])
    if len(frames) == 3:
        a, b, c = frames
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    stack = np.sort(np.stack(frames), axis=0)
    return stack[(len(frames) - 1) // 2]


def _channel_mean(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] + image[..., 1] + image[..., 2]) * np.float32(1 / 3)


def _small_grey(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = ALIGN_SIDE / max(height, width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def _thin_streaks(mask: np.ndarray, brightened: np.ndarray, max_width: int, min_pixels: int,
                  min_elongation: float, edge: np.ndarray) -> np.ndarray:
    """The connected blobs of `mask` (uint8) of at least `min_pixels` pixels, shaped like
    streaks (`streak_shape.streak_blobs`), that touch no part of `brightened` (everything that got
    brighter, which `mask` is part of) wider than `max_width` (a thin piece of a van coming
    into view is still the van), nor `edge` (uint8: a blob crossing the border of what the past
    saw has its past outside the picture)."""
    wide = cv2.dilate(cv2.morphologyEx(brightened, cv2.MORPH_OPEN, _disc(max_width)), _NEAR)
    labels, keep = streak_blobs(mask, min_pixels, min_elongation)
    keep[np.unique(labels[(wide > 0) | (edge > 0)])] = False
    return keep[labels].astype(np.uint8)
