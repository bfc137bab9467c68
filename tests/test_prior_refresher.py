"""PriorRefresher with fake providers: never blocking, newest frame, triggers, failures, close."""
import threading
import time

import numpy as np
import pytest

from allweather_ros.description import TYPES
from allweather_ros.prior.prior import Prior, PriorProvider
from allweather_ros.prior.refresher import PriorRefresher, change_score, tiny_grey

FAST = dict(check_interval=0.01, period=0.0)


class Fake(PriorProvider):
    """Records the frames it describes; `behave` decides what each call does."""

    def __init__(self, name, confidence=0.9, behave=None):
        self.name = name
        self.confidence = confidence
        self.behave = behave
        self.seen = []
        self.calls = []  # monotonic start time of each call

    def describe(self, frame):
        self.calls.append(time.monotonic())
        self.seen.append(frame)
        if self.behave is not None:
            self.behave()
        labels = {t: 0.1 for t in TYPES} | {"rain": 0.9}
        return Prior("heavy rain", labels, "heavy", self.confidence, self.name)


def frame(level=0.5, size=64):
    return np.full((size, size, 3), level, np.float32)


def wait_for(condition, timeout=10.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


@pytest.fixture
def refreshers():
    made = []
    yield made
    for r in made:
        assert r.close()


def test_submit_never_waits_for_a_busy_provider(refreshers):
    entered, release = threading.Event(), threading.Event()

    def block():
        entered.set()
        release.wait(30)

    primary = Fake("slow", behave=block)
    refreshers.append(r := PriorRefresher(primary, timeout=60, **FAST))
    r.submit(frame())
    assert entered.wait(5)
    for _ in range(1000):
        r.submit(frame())
    assert not release.is_set() and len(primary.calls) == 1  # all submits done mid-describe
    release.set()


def test_the_newest_frame_is_described_not_a_queue(refreshers):
    entered, release = threading.Event(), threading.Event()
    primary = Fake("p", behave=lambda: (entered.set(), release.wait(30)))
    refreshers.append(r := PriorRefresher(primary, timeout=60, **FAST))
    frames = [frame() for _ in range(50)]
    r.submit(frames[0])
    assert entered.wait(5)
    for f in frames[1:]:
        r.submit(f)
    release.set()
    wait_for(lambda: len(primary.seen) >= 2)
    time.sleep(0.1)
    assert len(primary.seen) == 2
    assert primary.seen[0] is frames[0] and primary.seen[1] is frames[-1]


def test_refresh_at_the_period_and_early_on_a_scene_change(refreshers):
    primary = Fake("p")
    refreshers.append(r := PriorRefresher(primary, period=1000.0, check_interval=0.01,
                                          change_threshold=0.1))
    r.submit(frame(0.2))
    wait_for(lambda: r.health()["refresh_count"] == 1)
    rng = np.random.default_rng(0)
    for _ in range(20):  # the same scene with new snowflakes every frame: no refresh
        f = frame(0.2)
        f[rng.random((64, 64)) < 0.02] = 1.0
        r.submit(f)
        time.sleep(0.01)
    assert len(primary.seen) == 1
    r.submit(new_scene := frame(0.8))
    wait_for(lambda: len(primary.seen) == 2)
    assert primary.seen[1] is new_scene


def test_tiny_grey_ignores_weather_and_sees_the_scene():
    rng = np.random.default_rng(1)
    scene = np.broadcast_to(np.linspace(0, 0.6, 480, dtype=np.float32)[:, None, None],
                            (480, 640, 3))
    rainy = scene.copy()
    rainy[:, rng.integers(0, 640, 40)] += 0.4  # thin bright streaks
    assert tiny_grey(scene).shape == (32, 32)
    assert change_score(tiny_grey(scene), tiny_grey(rainy)) < 0.05
    assert change_score(tiny_grey(scene), tiny_grey(scene[::-1])) > 0.05
    assert change_score(tiny_grey(scene), tiny_grey(scene[:240])) == float("inf")


@pytest.mark.parametrize("error", [RuntimeError("driver lost"), MemoryError("out of memory")])
def test_failure_falls_back_backs_off_and_recovers(refreshers, error):
    broken = threading.Event()
    broken.set()

    def maybe_fail():
        if broken.is_set():
            raise error

    primary, fallback = Fake("primary", behave=maybe_fail), Fake("fallback")
    published = []
    refreshers.append(r := PriorRefresher(primary, fallback=fallback, on_prior=published.append,
                                          backoff=(0.1, 10.0), **FAST))
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            r.submit(frame())
            time.sleep(0.002)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        wait_for(lambda: r.health()["consecutive_failures"] >= 3)
        health = r.health()
        assert r.latest.provider == "fallback" and published[-1].provider == "fallback"
        assert health["consecutive_failures"] >= 3
        assert type(error).__name__ in health["last_error"] and "primary" in health["last_error"]
        gaps = np.diff(primary.calls[:3])
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential back-off between primary tries
        assert len(fallback.calls) > len(primary.calls)  # fallback serves while primary rests
        broken.clear()
        wait_for(lambda: r.latest.provider == "primary", timeout=15)
        assert r.health()["consecutive_failures"] == 0
        assert r.health()["retry_primary_in_s"] == 0.0
    finally:
        stop.set()
        feeder.join()


def test_a_failure_without_fallback_keeps_the_last_good_prior(refreshers):
    fail = threading.Event()

    def maybe_fail():
        if fail.is_set():
            raise ValueError("bad answer")

    primary = Fake("p", behave=maybe_fail)
    refreshers.append(r := PriorRefresher(primary, backoff=(0.01, 0.01), **FAST))
    r.submit(frame())
    wait_for(lambda: r.latest.provider == "p")
    good = r.latest
    fail.set()
    r.submit(frame())
    wait_for(lambda: r.health()["failure_count"] >= 1)
    assert r.latest is good and "bad answer" in r.health()["last_error"]


def test_a_hung_provider_is_abandoned_by_the_watchdog(refreshers):
    release = threading.Event()
    primary = Fake("hangs", behave=lambda: release.wait(30))
    fallback = Fake("fallback")
    refreshers.append(r := PriorRefresher(primary, fallback=fallback, timeout=0.2,
                                          backoff=(0.05, 0.05), **FAST))
    for _ in range(2000):
        r.submit(frame())
        time.sleep(0.01)
        if r.latest.provider == "fallback" and len(fallback.calls) >= 5:
            break
    assert r.latest.provider == "fallback", "no fallback prior"
    assert "TimeoutError" in r.health()["last_error"]
    assert len(primary.calls) == 1  # never called again while its first call is still hung
    release.set()
    wait_for(lambda: (r.submit(frame()), r.latest.provider == "hangs")[1])


def test_an_uncertain_estimate_is_coarsened_before_publishing(refreshers):
    published = []
    refreshers.append(r := PriorRefresher(Fake("unsure", confidence=0.1), min_confidence=0.5,
                                          on_prior=published.append, **FAST))
    assert r.latest.granularity == "all" and r.health()["refresh_count"] == 0
    r.submit(frame())
    wait_for(lambda: published)
    assert published[0].granularity == "all" and published[0].text == r.generic.text
    assert published[0].provider == "unsure" and r.latest is published[0]


def test_a_prior_the_consumer_refuses_is_a_failure_not_the_prior_in_force(refreshers):
    def explode(prior):
        raise KeyError("pipeline bug")

    primary = Fake("p")
    refreshers.append(r := PriorRefresher(primary, on_prior=explode, **FAST))
    r.submit(frame())
    wait_for(lambda: r.health()["failure_count"] == 1)
    assert "pipeline bug" in r.health()["last_error"] and r.health()["alive"]
    assert r.health()["refresh_count"] == 0 and r.latest is r.generic


def test_a_malformed_frame_is_reported_and_skipped(refreshers):
    primary = Fake("p")
    refreshers.append(r := PriorRefresher(primary, **FAST))
    r.submit(np.zeros((0, 5, 3), np.float32))
    wait_for(lambda: r.health()["last_error"] is not None)
    assert r.health()["last_error"].startswith("frame: ") and r.health()["alive"]
    r.submit(good := frame())
    wait_for(lambda: len(primary.seen) == 1)
    assert primary.seen[0] is good


def test_close_is_bounded_even_with_a_call_in_flight():
    entered = threading.Event()
    r = PriorRefresher(Fake("hangs", behave=lambda: (entered.set(), time.sleep(30))),
                       timeout=60, **FAST)
    r.submit(frame())
    assert entered.wait(5)
    start = time.monotonic()
    assert r.close(timeout=5)
    assert time.monotonic() - start < 5 and not r.health()["alive"]
    assert r.close()  # idempotent


class Remembering(Fake):
    """A Fake that pools: it records the memory it gets and adds a sure rain reading to it."""

    remembers = True

    def __init__(self, name):
        super().__init__(name)
        self.memories, self.held = [], []

    def describe(self, frame, memory=None):
        self.memories.append(memory)
        self.held.append(len(memory))  # readings remembered before this one
        memory.pool(np.array([0.99, 0.01, 0.01, 0.01]))
        return super().describe(frame)


def test_a_remembering_provider_pools_in_the_refreshers_memory(refreshers):
    provider, other = Remembering("first"), Remembering("second")
    r = PriorRefresher(provider, memory=3, **FAST)
    refreshers.append(r)
    r.submit(frame(0.2))
    wait_for(lambda: provider.memories)
    assert provider.memories[0] is r.weather_memory and r.memory == 3
    r.memory = 2
    assert r.weather_memory.readings == 2
    r.use(other, None)  # another provider: what the first one read is forgotten
    assert r.weather_memory.pool(np.full(4, 0.01)) == pytest.approx(np.full(4, 0.01))
    with pytest.raises(ValueError, match="at least 1 reading"):
        r.memory = 0


def test_stale_readings_are_forgotten(refreshers):
    """Readings from before the stream stopped, or from before another provider described,
    are not pooled with new ones."""
    provider = Remembering("builtin")
    r = PriorRefresher(provider, memory=3, check_interval=0.01, period=0.2)
    refreshers.append(r)
    r.submit(frame(0.2))
    wait_for(lambda: len(provider.held) == 1)
    r.submit(frame(0.8))  # a scene change at once: described again, the first reading kept
    wait_for(lambda: len(provider.held) == 2)
    time.sleep(1.0)  # no frames for longer than 3 readings at 0.2 s span
    r.submit(frame(0.2))
    wait_for(lambda: len(provider.held) == 3)
    assert provider.held == [0, 1, 0] and r.health()["pooled_readings"] == 1

    fails = [True]

    def flaky():
        if fails[0]:
            raise RuntimeError("out of memory")

    vlm, fallback = Fake("vlm", behave=flaky), Remembering("builtin")
    r2 = PriorRefresher(vlm, fallback=fallback, memory=3, check_interval=0.01, period=0.2,
                        backoff=(0.0, 0.0))
    refreshers.append(r2)
    for i, fail in enumerate((True, False, True)):  # the VLM fails, recovers, fails again
        fails[0] = fail
        r2.submit(frame(0.2 + 0.6 * (i % 2)))
        wait_for(lambda n=i: len(vlm.calls) == n + 1 and r2.health()["refresh_count"] == n + 1)
    assert fallback.held == [0, 0]  # the VLM described between: the old reading is not pooled
