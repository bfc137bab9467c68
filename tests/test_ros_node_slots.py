"""restore_node's newest-frame slots, without DDS: what the node serves when frames come faster
than it restores them (over real DDS a best-effort burst may lose any frame, so the exact
"the last frame is the one served" is checked here)."""
from __future__ import annotations

import threading
import time

import pytest

from allweather_ros.ros.slots import Camera, NewestFrameSlots
from allweather_ros.topics import camera_topics


def camera(name: str) -> Camera:
    return Camera(camera_topics(f"/{name}/image_raw"))


@pytest.fixture
def slots():
    made = NewestFrameSlots()
    made.open()
    return made


def test_a_newer_frame_overwrites_the_slot_and_the_older_is_counted_dropped(slots):
    a = camera("a")
    for frame in ("a1", "a2", "a3"):
        slots.put(a, frame)
    taken, msg, _ = slots.take([a])
    assert (taken, msg) == (a, "a3")
    assert (a.received, a.dropped, a.pending) == (3, 2, None)


def test_cameras_are_served_round_robin_so_a_fast_one_cannot_starve_a_slow_one(slots):
    fast, slow = camera("fast"), camera("slow")
    cameras = [fast, slow]
    slots.put(fast, "f1")
    slots.put(slow, "s1")
    assert slots.take(cameras)[1] == "f1"
    slots.put(fast, "f2")  # the fast camera is full again before the slow one was served
    assert slots.take(cameras)[1] == "s1"
    assert slots.take(cameras)[1] == "f2"


def test_close_wakes_a_waiting_worker_and_forgets_stale_frames(slots):
    a, b = camera("a"), camera("b")
    taken = []
    worker = threading.Thread(target=lambda: taken.append(slots.take([a])))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive()  # nothing to take: it waits, not spins out
    slots.put(b, "b1")  # a camera the worker does not serve
    slots.close([a, b])
    worker.join(5)
    assert not worker.is_alive() and taken == [None]
    assert b.pending is None
    slots.open()
    slots.put(a, "a1")
    assert slots.take([a])[1] == "a1"


def test_a_burst_faster_than_the_worker_serves_the_last_frame_and_never_an_older_one(slots):
    a = camera("a")
    served: list[int] = []

    def worker():
        while (taken := slots.take([a])) is not None:
            served.append(taken[1])
            time.sleep(0.002)  # restoring is slower than the camera

    thread = threading.Thread(target=worker)
    thread.start()
    burst = 2000
    for i in range(burst):
        slots.put(a, i)
    deadline = time.monotonic() + 10
    while (not served or served[-1] != burst - 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    slots.close([a])
    thread.join(5)
    assert served[-1] == burst - 1  # the newest frame is restored, not lost
    assert served == sorted(served) and len(set(served)) == len(served)
    assert len(served) < burst  # most were overwritten, not queued
    assert a.received == burst and a.dropped == burst - len(served)
