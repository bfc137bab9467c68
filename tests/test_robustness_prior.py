"""Prior providers that misbehave inside the real pipeline: garbage answers, exceptions raised
inside describe, answers the restorer cannot use, and calls that take minutes. The frame path
must keep restoring on the last good prior, the provider is retried with back-off, and the
node's diagnostics level says the provider is failing."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticStatus

from allweather_ros.description import TYPES
from allweather_ros.pipeline import build_pipeline
from allweather_ros.prior.prior import Prior, PriorProvider
from allweather_ros.prior.providers import FixedPrior
from allweather_ros.ros.diagnostics import restoration_level

FRAME = np.full((24, 32, 3), 0.5, np.float32)


class Scripted(PriorProvider):
    """A provider whose every answer is `answer()`: a Prior, garbage, or an exception."""

    def __init__(self, name, answer):
        self.name, self.answer, self.calls = name, answer, 0

    def describe(self, frame):
        self.calls += 1
        return self.answer()


def good_prior(provider="good"):
    return Prior("light rain", {t: 0.1 for t in TYPES} | {"rain": 0.9}, "slight", 0.95, provider)


def wait_for(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def feed_until(pipeline, condition, what, timeout=20.0):
    """Restore frames (which also offers them to the refresher) until `condition()`; every
    restored frame must be finite, the frame path never stalling on the provider."""
    deadline = time.monotonic() + timeout
    while not condition():
        out = pipeline.process(FRAME)
        assert np.isfinite(out.restored).all()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def diagnostics_level(health):
    """The restoration status an active node would publish for this refresher health."""
    return restoration_level(health, active=True, new_problems=0)


@pytest.fixture(scope="module")
def built(pipeline_config):
    """The real pipeline (tiny 384-d restorer, text encoder), refreshing fast."""
    made = build_pipeline(pipeline_config, asynchronous=True)
    made.refresher.check_interval, made.refresher.period = 0.01, 0.0
    yield made
    made.close()


@pytest.fixture
def pipeline(built):
    """`built`, back on a good prior from a well-behaved provider before each test swaps in a
    bad one."""
    refresher = built.refresher
    refresher.backoff, refresher.timeout, refresher.fallback = (0.5, 0.5), 30.0, None
    refresher.primary = Scripted("good", good_prior)
    built.set_prior(good_prior())  # a test before may have left a poisoned prior in force
    refreshed = refresher.health()["refresh_count"]
    feed_until(built, lambda: refresher.health()["refresh_count"] > refreshed
               and refresher.latest.provider == built.prior.provider == "good"
               and refresher.health()["consecutive_failures"] == 0, "a good prior")
    return built


@pytest.mark.parametrize("answer, error", [
    (lambda: None, "TypeError: bad returned NoneType, not a Prior"),
    (lambda: "heavy rain", "TypeError: bad returned str, not a Prior"),
    (lambda: Prior("rain", {"rain": 2.0}, "light", 0.9, "bad"), "ValueError: labels must give"),
    (lambda: Prior("rain", {t: 0.5 for t in TYPES}, "apocalyptic", 0.9, "bad"),
     "severity 'apocalyptic' is not one of"),
    (lambda: 1 / 0, "ZeroDivisionError"),
], ids=["none", "text", "bad-labels", "bad-severity", "crash"])
def test_garbage_or_crash_keeps_the_last_good_prior_and_backs_off(pipeline, answer, error):
    refresher = pipeline.refresher
    refresher.primary = bad = Scripted("bad", answer)
    feed_until(pipeline, lambda: refresher.health()["consecutive_failures"] >= 1,
               "the failure to be counted")
    health = refresher.health()
    assert error in health["last_error"] and health["last_error"].startswith("bad: ")
    assert pipeline.prior.provider == "good" and refresher.latest.provider == "good"
    assert 0 < health["retry_primary_in_s"] <= 0.5  # backing off, not hammering
    level, message = diagnostics_level(health)
    assert level == DiagnosticStatus.WARN and error in message
    calls = bad.calls
    feed_until(pipeline, lambda: bad.calls > calls, "a retry after the back-off")
    assert pipeline.prior.provider == "good"


def answer_twice(pipeline, provider):
    """Make `provider` the primary and restore frames until it has been called twice: the
    worker handles one answer completely (swap included) before it asks for the next."""
    pipeline.refresher.primary = provider
    wait_for(lambda: (pipeline.process(FRAME), provider.calls >= 2)[1],
             f"two answers from {provider.name}")


def wrong_width():
    return Prior("fog", {t: 0.0 for t in TYPES} | {"haze": 1.0}, "heavy", 1.0, "wrong",
                 tokens=torch.zeros(5, 24))


def test_tokens_the_restorer_cannot_take_leave_the_frame_path_on_the_last_good_prior(pipeline):
    answer_twice(pipeline, Scripted("wrong", wrong_width))
    assert "ValueError: prior tokens are 24-d but the restorer takes 384-d" in \
        pipeline.refresher.health()["last_error"]
    assert pipeline.prior.provider == "good"
    assert pipeline.process(FRAME).prior.provider == "good"


def test_a_refused_prior_counts_as_a_provider_failure(pipeline):
    answer_twice(pipeline, Scripted("wrong", wrong_width))
    health = pipeline.refresher.health()
    assert pipeline.refresher.latest.provider == "good" and health["provider"] == "good"
    assert health["consecutive_failures"] >= 1
    assert diagnostics_level(health)[0] == DiagnosticStatus.WARN


def test_non_finite_tokens_are_refused_and_frames_stay_finite(pipeline):
    answer_twice(pipeline, Scripted("nan", lambda: Prior(
        "rain", {t: 0.1 for t in TYPES} | {"rain": 0.9}, "slight", 1.0, "nan",
        tokens=torch.full((6, 384), float("nan")))))
    assert pipeline.prior.provider == "good"
    assert np.isfinite(pipeline.process(FRAME).restored).all()


def test_a_fixed_prior_is_encoded_once_and_stamped_at_each_refresh():
    """The fallback of a hung provider must answer within the watchdog on a loaded CPU: a fixed
    text is encoded when the provider is made, and each refresh only restamps it."""
    encoded = []

    class CountingEncoder:
        def encode(self, text):
            encoded.append(text)
            return torch.zeros(3, 384)

    provider = FixedPrior("dense fog", CountingEncoder())
    first = provider.describe(None)
    time.sleep(0.01)
    second = provider.describe(None)
    assert encoded == [first.text] and second.tokens is first.tokens
    assert second.age() < first.age() and second.created_wall > first.created_wall


def test_a_provider_that_takes_minutes_is_abandoned_and_frames_keep_flowing(pipeline):
    refresher = pipeline.refresher
    release = threading.Event()
    slow = Scripted("slow", lambda: (release.wait(300), good_prior("slow"))[1])
    refresher.fallback = FixedPrior("dense fog", pipeline.encoder)
    refresher.timeout = 0.3
    refresher.primary = slow
    failures = refresher.health()["failure_count"]
    try:
        started = time.monotonic()
        frames = 0

        def on_fallback():
            nonlocal frames
            frames += 1
            return (pipeline.prior.provider == "fixed"
                    and refresher.health()["failure_count"] > failures)

        feed_until(pipeline, on_fallback, "the fallback prior after the watchdog")
        health = refresher.health()
        assert "slow: TimeoutError: slow gave no prior within 0.3 s" == health["last_error"]
        assert pipeline.prior.source_text == "dense fog"
        assert frames >= 2, "frames must keep being restored while the provider hangs"
        level, message = diagnostics_level(health)
        assert level == DiagnosticStatus.WARN and "TimeoutError" in message
        feed_until(pipeline, lambda: refresher.health()["failure_count"] >= failures + 2,
                   "a retry of the hung provider")
        assert slow.calls == 1, "a hung provider is not called again while still hung"
        assert "still hung" in refresher.health()["last_error"]
        assert time.monotonic() - started < 60
        release.set()
        feed_until(pipeline, lambda: pipeline.prior.provider == "slow",
                   "the provider back once its call returns")
        feed_until(pipeline, lambda: refresher.health()["consecutive_failures"] == 0,
                   "the failure count reset")
    finally:
        release.set()
