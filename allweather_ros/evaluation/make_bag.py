"""Demo bags: clean photos or a video with synthetic weather, as a degraded camera topic plus a
paired ground-truth topic, for users without a camera and for tests.

A still photo with fresh weather per frame would not look like a drive, so each photo becomes a
shot of a slowly panning and zooming camera. Weather that belongs to the scene or the lens
(haze, drops on the glass) is drawn once per shot and stays put, while falling rain and snow
are drawn anew for every frame, as a camera sees them. Everything follows from the seed.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..data.sources import Scene, folder_scenes, skimage_scenes
from ..data.synthesis import sample_recipe, synthesize
from ..description import Degradation, describe
from .bags import (
    BagWriter,
    compressed_message,
    image_message,
    make_header,
    string_message,
)

log = logging.getLogger(__name__)

TOPIC = "/camera/image_raw"
GT_TOPIC = "/camera/ground_truth/image_raw"
WEATHER_TOPIC = "/camera/ground_truth/weather"
FRAME_ID = "camera"
START_NS = 1_700_000_000 * 10**9
"""Stamps start at a fixed time, so that the same seed writes the same bag byte for byte."""
FALLING = ("rain", "snow")  # drawn anew per frame; the rest stays with the scene or the lens


@dataclass(frozen=True)
class Shot:
    """A slow camera move over one photo: the crop's centre and zoom go from start to end."""

    scene: Scene
    frames: int
    start: tuple[float, float, float]  # centre x, centre y (fractions of the photo), zoom
    end: tuple[float, float, float]
    weather: tuple[Degradation, ...]


def parse_weather(text: str) -> list[Degradation]:
    """'rain:moderate,haze:slight' as degradations; a bare type means moderate."""
    weather = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, severity = item.partition(":")
        weather.append(Degradation(kind.strip(), severity.strip() or "moderate"))
    return weather


def plan_shots(scenes: list[Scene], frames: int, shot_frames: int, rng: np.random.Generator,
               weather: list[Degradation] | None) -> list[Shot]:
    """Cut `frames` into shots over the scenes in turn, each with its own move and weather."""
    shots, left = [], frames
    for number in range(-(-frames // shot_frames)):
        zoom = rng.uniform(1.0, 1.35)
        start = (*rng.uniform(0.4, 0.6, 2), zoom)
        end = (*np.clip(np.array(start[:2]) + rng.uniform(-0.12, 0.12, 2), 0.3, 0.7),
               max(1.0, zoom * rng.uniform(0.85, 1.2)))
        recipe = weather if weather is not None else sample_recipe(rng, clean_probability=0.0)
        shots.append(Shot(scenes[number % len(scenes)], min(shot_frames, left),
                          tuple(map(float, start)), tuple(map(float, end)), tuple(recipe)))
        left -= shot_frames
    return shots


def _view(photo: np.ndarray, centre_x: float, centre_y: float, zoom: float,
          size: tuple[int, int]) -> np.ndarray:
    """The camera's (W, H) view of the photo: the largest crop of the frame's aspect, zoomed."""
    height, width = photo.shape[:2]
    scale = min(width / size[0], height / size[1]) / zoom  # photo pixels per frame pixel
    half_w, half_h = size[0] * scale / 2, size[1] * scale / 2
    x = np.clip(centre_x * width, half_w, width - half_w)
    y = np.clip(centre_y * height, half_h, height - half_h)
    warp = np.array([[1 / scale, 0, size[0] / 2 - x / scale],
                     [0, 1 / scale, size[1] / 2 - y / scale]], np.float32)
    return cv2.warpAffine(photo, warp, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def _fit(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo shrunk so that the widest view is a little over the frame size: the warp then
    never shrinks much (no aliasing) and zooming in never blows pixels up much."""
    factor = 1.25 / min(photo.shape[1] / size[0], photo.shape[0] / size[1])
    if factor >= 1.0:
        return photo
    shrunk = (max(size[0], round(photo.shape[1] * factor)),
              max(size[1], round(photo.shape[0] * factor)))
    return cv2.resize(photo, shrunk, interpolation=cv2.INTER_AREA)


def weathered(clean: np.ndarray, weather: tuple[Degradation, ...], seed: int, shot: int,
              frame: int) -> np.ndarray:
    """`clean` under the shot's weather, layered in physical order (haze, falling particles,
    lens drops). Haze and drops reuse the shot's random draws on every frame, so they stay
    put; rain and snow get the frame's own draws, so they fall."""
    degraded = clean
    layers = ([d for d in weather if d.type == "haze"],
              [d for d in weather if d.type in FALLING],
              [d for d in weather if d.type == "raindrop"])
    for key, layer in zip((0, frame + 1, 0), layers, strict=True):
        if layer:
            rng = np.random.default_rng([seed, shot, key, len(layer)])
            degraded = synthesize(degraded, rng, layer).degraded
    return degraded


Sequence = Iterator[tuple[np.ndarray, np.ndarray, str]]
"""(degraded, clean, description) float32 frames in time order."""


def scene_sequence(scenes: list[Scene], frames: int, size: tuple[int, int], seed: int,
                   weather: list[Degradation] | None, frames_per_shot: int = 30) -> Sequence:
    """Panning, zooming shots over the photos in turn."""
    rng = np.random.default_rng(seed)
    for number, shot in enumerate(plan_shots(scenes, frames, frames_per_shot, rng, weather)):
        text = describe(shot.weather)
        for i, clean in enumerate(clean_views(shot, size)):
            yield weathered(clean, shot.weather, seed, number, i), clean, text


def clean_views(shot: Shot, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The shot's clean (W, H) frames, float32: the camera's move over its photo."""
    photo = _fit(shot.scene.load().astype(np.float32) / 255.0, size)
    for i in range(shot.frames):
        t = i / max(shot.frames - 1, 1)
        move = (a + (b - a) * t for a, b in zip(shot.start, shot.end, strict=True))
        yield _view(photo, *move, size)


def video_sequence(path: str | Path, frames: int, size: tuple[int, int], seed: int,
                   weather: list[Degradation] | None) -> Sequence:
    """Consecutive frames of a video (its own motion) as one shot under one weather."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    rng = np.random.default_rng(seed)
    recipe = tuple(weather if weather is not None else sample_recipe(rng, clean_probability=0.0))
    try:
        for i in range(frames):
            ok, bgr = capture.read()
            if not ok:
                log.warning("%s ended after %d frames", path, i)
                return
            clean = cv2.resize(np.ascontiguousarray(bgr[..., ::-1]), size,
                               interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            yield weathered(clean, recipe, seed, 0, i), clean, describe(recipe)
    finally:
        capture.release()


def make_bag(out: str | Path, *, images: str | Path | None = None,
             video: str | Path | None = None, scenes: list[Scene] | None = None,
             frames: int = 60, fps: float = 10.0, size: tuple[int, int] = (320, 240),
             weather: list[Degradation] | None = None, seed: int = 0, storage: str = "sqlite3",
             compressed: bool = False, progress: bool = True) -> dict:
    """Write a bag of `frames` weathered frames (a JPEG CompressedImage topic if `compressed`)
    with the clean frames on GT_TOPIC (always lossless rgb8) and the weather's description.

    Clean frames come from `video`, the photos in `images`, `scenes`, or by default
    scikit-image's photos (present on every machine, so a seed gives the same bag anywhere).
    Returns what was written.
    """
    if frames < 1 or fps <= 0:
        raise ValueError(f"need at least one frame at a positive rate, got {frames} at {fps}")
    if video is not None:
        sequence = video_sequence(video, frames, size, seed, weather)
    else:
        if scenes is None:
            scenes = folder_scenes(images) if images is not None else skimage_scenes()
            if not scenes:
                raise ValueError(f"no images found under {images}")
        order = np.random.default_rng(seed).permutation(len(scenes))
        sequence = scene_sequence([scenes[i] for i in order], frames, size, seed, weather)
    topic = TOPIC + "/compressed" if compressed else TOPIC
    encode = compressed_message if compressed else image_message
    last_text = None
    with BagWriter(out, storage) as writer:
        for i, (degraded, clean, text) in enumerate(
                tqdm(sequence, total=frames, desc="make-bag", unit="frame", disable=not progress)):
            ns = START_NS + round(i * 1e9 / fps)
            header = make_header(ns, FRAME_ID)
            writer.write(topic, encode(degraded, header), ns)
            writer.write(GT_TOPIC, image_message(clean, header), ns)
            if text != last_text:
                writer.write(WEATHER_TOPIC, string_message(text), ns)
                last_text = text
        counts = dict(writer.counts)
    return {"bag": str(out), "storage": storage, "topic": topic, "gt_topic": GT_TOPIC,
            "frames": counts.get(topic, 0), "fps": fps, "size": list(size), "seed": seed,
            "topics": counts}
