"""A forward drive through a scene with depth, rendered: a road and its lane markings.

Make-bag's shots pan over a photo, so every pixel moves as one warp says. A camera on a car
driving forward sees the road flow towards it, near parts faster than far ones, and its lane
markings, thin and bright, slide along the road from frame to frame. Stages that compare a
frame with the frames before it (transients.py) must leave such a stream alone; this draws one,
with the lane markings' pixels as the truth of what must not change. Our licensed scenes hold
almost no roads, and markings are thin and white like rain streaks, so training can also draw
some of its clean views as such a drive past a training photo (datasets.py `road_p`).
"""
from __future__ import annotations

import numpy as np

CAMERA_HEIGHT_M = 1.4
WALL_M = 7.0  # the walls on either side, from the camera
WALL_HEIGHT_M = 12.0
LANE_M = 1.75  # dashed markings either side of the camera's lane
EDGE_M = 5.0  # solid edge lines
DASH_M, GAP_M = 3.0, 6.0


def road_view(travel_m: float, photo: np.ndarray, size: tuple[int, int] = (240, 320),
              focal: float = 260.0) -> tuple[np.ndarray, np.ndarray]:
    """The (H, W, 3) float32 view of a pinhole camera `travel_m` metres down a straight, flat
    road (asphalt grain, dashed and solid markings, sky), between two walls with `photo`
    (float32 RGB in [0, 1]) on them, and the (H, W) bool mask of the lane markings."""
    height, width = size
    x, y = np.meshgrid(np.arange(width) + 0.5 - width / 2,
                       np.arange(height) + 0.5 - 0.42 * height)
    frame = np.empty((height, width, 3), np.float32)
    frame[:] = (0.55, 0.65, 0.8)
    ground = y > 0.5
    depth = np.where(ground, focal * CAMERA_HEIGHT_M / np.maximum(y, 0.5), np.inf)
    across = np.where(ground, x * depth / focal, 0.0)
    along = np.where(ground, depth + travel_m, 0.0)
    dashes = (np.abs(np.abs(across) - LANE_M) < 0.075) & (along % (DASH_M + GAP_M) < DASH_M)
    markings = ground & (dashes | (np.abs(np.abs(across) - EDGE_M) < 0.1))
    grain = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    asphalt = 0.28 + 0.1 * grain[(along * 20).astype(int) % 64, (across * 20).astype(int) % 64]
    frame[ground] = np.where(markings, 0.85, asphalt)[ground][:, None]
    wall = np.where(np.abs(x) > 0.5, focal * WALL_M / np.maximum(np.abs(x), 0.5), np.inf)
    rise = CAMERA_HEIGHT_M - y * wall / focal
    hit = (wall < depth) & (rise > 0) & (rise < WALL_HEIGHT_M)
    scale = (photo.shape[0] - 1) / WALL_HEIGHT_M
    frame[hit] = photo[((WALL_HEIGHT_M - rise[hit]) * scale).astype(int),
                       ((wall[hit] + travel_m) * scale).astype(int) % photo.shape[1]]
    return frame, markings
