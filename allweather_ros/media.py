"""Restoring files: one image, a folder of images (names kept) or a video."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .frames import quantize
from .pipeline import Pipeline

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def read_rgb(path: Path) -> np.ndarray:
    """An image file as float32 RGB in [0, 1]; 16-bit files keep their precision."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"{path} is not an image OpenCV can read")
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    elif raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB).astype(np.float32) / scale


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(quantize(rgb, np.dtype(np.uint8)), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr):
        raise ValueError(f"cannot write {path} (unknown image suffix?)")


def restore_image(pipeline: Pipeline, source: Path, target: Path) -> str:
    """One photo, described on its own (a folder's photos need not share their weather);
    returns what the restorer was told."""
    rgb = read_rgb(source)
    told = pipeline.refresh_now(rgb).text
    write_rgb(target, pipeline.process(rgb).restored)
    return told


def restore_folder(pipeline: Pipeline, source: Path, target: Path) -> int:
    """Every image of `source` into `target` under the same file name; returns the count."""
    images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for path in tqdm(images, desc="restore"):
        restore_image(pipeline, path, target / path.name)
    return len(images)


def restore_video(pipeline: Pipeline, source: Path, target: Path,
                  prior_period_s: float = 5.0) -> int:
    """Frame by frame, the prior refreshed every `prior_period_s` of video time (the
    readings pooled as the node pools them)."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ValueError(f"{source} is not a video OpenCV can read")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    every = max(1, round(fps * prior_period_s))
    writer, count = None, 0
    with tqdm(total=total, desc="restore") as bar:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            if count % every == 0:
                pipeline.refresh_now(rgb, remember=True)
            out = pipeline.process(rgb, stream=True).restored
            if writer is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (out.shape[1], out.shape[0]))
            writer.write(cv2.cvtColor(quantize(out, np.dtype(np.uint8)), cv2.COLOR_RGB2BGR))
            count += 1
            bar.update(1)
    capture.release()
    if writer is not None:
        writer.release()
    if count == 0:
        raise ValueError(f"{source} has no readable frames")
    return count


def restore_path(pipeline: Pipeline, source: str | Path, target: str | Path) -> str:
    """Dispatch on what `source` is; returns a one-line summary (for one image, with the
    description the restorer was told: the first thing to read when a frame comes out as it
    went in)."""
    source, target = Path(source), Path(target)
    if source.is_dir():
        return f"restored {restore_folder(pipeline, source, target)} images into {target}"
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    if source.suffix.lower() in VIDEO_SUFFIXES:
        return f"restored {restore_video(pipeline, source, target)} frames into {target}"
    told = restore_image(pipeline, source, target)
    return f"restored {source} into {target}, told: {told}"
