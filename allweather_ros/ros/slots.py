"""Per-camera state of restore_node: its topics and publishers, its newest-frame slot and its
counters (Camera), the slots the worker serves round robin (NewestFrameSlots), and the frame
timings diagnostics report (FrameStats)."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from allweather_ros.topics import CameraTopics

WINDOW = 512
"""Frames kept for the latency percentiles in diagnostics."""


class FrameStats:
    """Per-frame timings of the last WINDOW frames, appended by the worker and read by the
    diagnostics timer (hence the lock)."""

    KEYS = ("latency", "decode", "inference", "encode_publish", "overhead")

    def __init__(self):
        self._lock = threading.Lock()
        self._samples = {key: deque(maxlen=WINDOW) for key in self.KEYS}
        self.processed = 0

    def add(self, **seconds: float) -> None:
        with self._lock:
            self.processed += 1
            for key, value in seconds.items():
                self._samples[key].append(value)

    def percentiles(self) -> dict[str, str]:
        """p50/p99 of each timing in milliseconds, as diagnostics values."""
        with self._lock:
            samples = {key: np.array(values) for key, values in self._samples.items()}
        out = {}
        for key, values in samples.items():
            for q in (50, 99):
                out[f"{key}_ms_p{q}"] = (f"{1000 * np.percentile(values, q):.2f}"
                                         if values.size else "n/a")
        return out


@dataclass(eq=False)
class Camera:
    """One camera: its topics, publishers and subscriptions, the newest camera_info, its
    newest-frame slot and its counters."""

    topics: CameraTopics
    image_pub: Any = None
    compressed_pub: Any = None
    map_pub: Any = None
    colour_pub: Any = None
    prior_pub: Any = None
    info_pub: Any = None
    subscription: Any = None
    info_subscription: Any = None
    info: Any = None  # the newest sensor_msgs/CameraInfo, relayed with each restored frame
    stamped: tuple[Any, float] = (None, 0.0)  # (prior, node-clock time first published)
    pending: tuple[Any, float] | None = None  # (message, perf_counter at receipt)
    received: int = 0
    processed: int = 0
    skipped: int = 0  # nobody subscribed to any output: not restored
    dropped: int = 0
    bad: int = 0
    failed: int = 0
    last_problem: str = ""
    reported_problems: int = 0  # bad + failed at the last diagnostics report
    transient_share: float = 0.0  # of the last frame's pixels, taken back as rain or snow
    transient_state: str = "off"  # what transient suppression did to the last frame
    lights_share: float = 0.0  # of the last frame's pixels, small lights put back (lights.py)
    markings_share: float = 0.0  # of the last frame's pixels, road markings kept (markings.py)
    working_side: int = 0  # the longer side the last frame was restored at (pipeline.py)

    @property
    def topic(self) -> str:
        return self.topics.input

    def publishers(self) -> list:
        return [p for p in (self.image_pub, self.compressed_pub, self.map_pub, self.colour_pub,
                            self.prior_pub, self.info_pub) if p is not None]

    def watched(self) -> bool:
        """Whether anyone subscribes to an output that restoring a frame feeds (camera_info
        alone is not one: it only accompanies restored frames)."""
        return any(p.get_subscription_count() for p in self.publishers() if p is not self.info_pub)


class NewestFrameSlots:
    """Frames never queue: each camera has a one-frame slot that a newer message overwrites (the
    older frame counted as dropped), and the worker takes filled slots round robin, so a fast
    camera cannot starve a slow one. Filled by the executor thread, emptied by the worker."""

    def __init__(self):
        self._ready = threading.Condition()
        self._open = False
        self._next = 0  # round-robin position

    def put(self, camera: Camera, msg) -> None:
        with self._ready:
            if camera.pending is not None:
                camera.dropped += 1
            camera.pending = (msg, time.perf_counter())
            camera.received += 1
            self._ready.notify()

    def take(self, cameras: list[Camera]) -> tuple[Camera, Any, float] | None:
        """The next filled slot after the last one served; blocks; None once closed."""
        with self._ready:
            while self._open:
                for offset in range(len(cameras)):
                    index = (self._next + offset) % len(cameras)
                    camera = cameras[index]
                    if camera.pending is not None:
                        self._next = index + 1
                        msg, received = camera.pending
                        camera.pending = None
                        return camera, msg, received
                self._ready.wait()
        return None

    def open(self) -> None:
        with self._ready:
            self._open = True

    def close(self, cameras: list[Camera]) -> None:
        """Wake the worker to stop; a frame from before is stale after a restart."""
        with self._ready:
            self._open = False
            for camera in cameras:
                camera.pending = None
            self._ready.notify_all()
