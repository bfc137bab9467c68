"""Keeps the degradation prior fresh without ever making the frame path wait.

A VLM needs about a second per answer on a CPU, while frames come every few tens of
milliseconds, so the frame path only drops its newest frame into a one-frame slot, and a worker
thread describes the newest frame at a set rate, or sooner when the scene changes. A provider
that raises, runs out of memory or hangs never costs the pipeline its prior: the last good one
stays, a fallback provider takes over, and the primary is retried with exponential back-off.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from allweather_ros.prior.prior import Encoder, Prior, PriorProvider
from allweather_ros.prior.providers import NoPrior
from allweather_ros.prior.uncertainty import DEFAULT_MIN_CONFIDENCE, coarsen
from allweather_ros.prior.weather_memory import WeatherMemory

log = logging.getLogger(__name__)


def tiny_grey(frame: np.ndarray, size: int = 32) -> np.ndarray:
    """About size x size block means of the grey level: cheap, and blind to rain streaks and
    snowflakes (which average out), so only a real scene change moves it."""
    h, w = frame.shape[:2]
    by, bx = max(1, h // size), max(1, w // size)
    crop = frame[: h // by * by, : w // bx * bx]
    return crop.reshape(h // by, by, w // bx, bx, -1).mean(axis=(1, 3, 4), dtype=np.float32)


def _yield_to_frames() -> None:
    """Lower this thread's scheduling priority (Linux: each thread has its own nice value), so
    a description running beside the frame path takes only the CPU time frames leave."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def change_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference of two tiny frames (infinite if their shapes differ)."""
    return float(np.abs(a - b).mean()) if a.shape == b.shape else float("inf")


class PriorRefresher:
    """Runs `primary` off the frame path in a worker thread; see the module docstring.

    Every new prior goes through `coarsen` (an estimate below `min_confidence` becomes a
    coarser claim), becomes `latest`, and is handed to `on_prior` in the worker thread, where
    the pipeline precomputes its keys/values and swaps them in. Until the first refresh,
    `latest` is the generic prior. A provider that `remembers` pools its last `memory`
    readings of this camera (prior/weather_memory.py), forgotten when they are stale: when
    frames stopped for longer than the memory spans, or another provider described between.
    """

    def __init__(
        self,
        primary: PriorProvider,
        *,
        fallback: PriorProvider | None = None,
        on_prior: Callable[[Prior], None] | None = None,
        encoder: Encoder | None = None,
        period: float = 5.0,
        change_threshold: float = 0.08,
        check_interval: float = 0.1,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        timeout: float = 30.0,
        backoff: tuple[float, float] = (2.0, 60.0),
        memory: int = 1,
    ):
        self.primary = primary
        self.fallback = fallback
        self.on_prior = on_prior
        self.encoder = encoder
        self.period = period
        self.change_threshold = change_threshold
        self.check_interval = check_interval
        self.min_confidence = min_confidence
        self.timeout = timeout
        self.backoff = backoff
        self.weather_memory = WeatherMemory(memory)
        self.generic = NoPrior(encoder).describe(None)
        self._latest = self.generic
        self._newest: tuple[np.ndarray, int] | None = None
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running: dict[int, threading.Thread] = {}  # provider id -> its call, if it hung
        self._last_error: str | None = None
        self._consecutive_failures = 0
        self._failure_count = 0
        self._refresh_count = 0
        self._retry_primary_at = 0.0
        self._describer: PriorProvider | None = None  # who gave the last prior
        self._thread = threading.Thread(target=self._run, name="prior-refresher", daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray) -> None:
        """Offer the newest frame; it replaces any frame not yet described. Never blocks: it is
        one attribute assignment. The frame is kept by reference, so do not modify it later."""
        self._newest = (frame, next(self._counter))

    def use(self, primary: PriorProvider, fallback: PriorProvider | None) -> None:
        """Describe with a new primary (and fallback) from the next refresh on; its back-off
        starts afresh, the prior in force stays until the new provider gives one."""
        with self._lock:
            self.primary, self.fallback = primary, fallback
            self._consecutive_failures, self._retry_primary_at = 0, 0.0
        self.weather_memory.clear()

    @property
    def memory(self) -> int:
        """How many of its readings a remembering provider pools."""
        return self.weather_memory.readings

    @memory.setter
    def memory(self, readings: int) -> None:
        self.weather_memory.readings = readings

    @property
    def latest(self) -> Prior:
        """The prior in force: the last good one, never one from a failed refresh."""
        return self._latest

    def health(self) -> dict:
        """State for the diagnostics topic."""
        now = time.monotonic()
        with self._lock:
            return {
                "provider": self._latest.provider,
                "primary": self.primary.name,
                "fallback": None if self.fallback is None else self.fallback.name,
                "granularity": self._latest.granularity,
                "prior_age_s": self._latest.age(now),
                "refresh_count": self._refresh_count,
                "last_error": self._last_error,
                "consecutive_failures": self._consecutive_failures,
                "failure_count": self._failure_count,
                "retry_primary_in_s": max(0.0, self._retry_primary_at - now),
                "pooled_readings": len(self.weather_memory),
                "alive": self._thread.is_alive(),
            }

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the worker (a provider call in flight is abandoned); True if it ended in time."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> PriorRefresher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        described_seq, described_grey, described_at = None, None, -float("inf")
        while not self._stop.wait(self.check_interval):
            newest = self._newest
            if newest is None or newest[1] == described_seq:
                continue
            frame, seq = newest
            try:
                grey = tiny_grey(frame)
            except Exception as e:  # a malformed frame must not end the worker
                self._record_failure(None, e)
                described_seq = seq
                continue
            due = time.monotonic() - described_at >= self.period
            if not due and change_score(grey, described_grey) < self.change_threshold:
                continue
            now = time.monotonic()
            if now - described_at > self.period * (self.memory + 1):  # the stream had stopped
                self.weather_memory.clear()
            described_seq, described_grey, described_at = seq, grey, now
            self._refresh(frame)

    def _refresh(self, frame: np.ndarray) -> None:
        """Describe `frame` with the primary (unless it is backing off), else the fallback."""
        providers = [self.fallback] if self.fallback is not None else []
        if time.monotonic() >= self._retry_primary_at:
            providers.insert(0, self.primary)
        for provider in providers:
            if provider is not self._describer:  # its readings are not the last ones
                self.weather_memory.clear()
            try:
                prior = self._call(provider, frame)
                if self.on_prior is not None:
                    self.on_prior(prior)  # the consumer may refuse it (wrong width, NaN...)
            except Exception as e:  # any failure, MemoryError included, is survivable
                if self._stop.is_set():
                    return
                self._record_failure(provider, e)
                continue
            if provider is self.primary:
                with self._lock:
                    self._consecutive_failures, self._retry_primary_at = 0, 0.0
            self._describer = provider
            self._publish(prior)
            return

    def _call(self, provider: PriorProvider, frame: np.ndarray) -> Prior:
        """provider.describe(frame), coarsened if uncertain, in its own thread, abandoned after
        `timeout` s (a watchdog: a Python thread cannot be killed, so a hung provider is not
        called again until its call returns)."""
        previous = self._running.get(id(provider))
        if previous is not None and previous.is_alive():
            raise TimeoutError(f"{provider.name} is still hung in an earlier call")
        result: dict = {}
        done = threading.Event()

        def target():
            _yield_to_frames()
            try:
                prior = (provider.describe(frame, memory=self.weather_memory)
                         if provider.remembers else provider.describe(frame))
                if not isinstance(prior, Prior):
                    raise TypeError(f"{provider.name} returned {type(prior).__name__}, not a Prior")
                result["prior"] = coarsen(prior, self.generic, self.min_confidence, self.encoder)
            except Exception as e:  # handed to the worker
                result["error"] = e
            finally:
                done.set()

        call = threading.Thread(target=target, name=f"prior-{provider.name}", daemon=True)
        self._running[id(provider)] = call
        call.start()
        deadline = time.monotonic() + self.timeout
        while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self._stop.is_set() or time.monotonic() >= deadline:
                raise TimeoutError(f"{provider.name} gave no prior within {self.timeout} s")
        if "error" in result:
            raise result["error"]
        return result["prior"]

    def _record_failure(self, provider: PriorProvider | None, error: Exception) -> None:
        """Count a failure of `provider` (None: of the frame itself) and schedule the retry."""
        source = "frame" if provider is None else provider.name
        log.warning("prior refresh failed (%s): %r", source, error)
        with self._lock:
            self._last_error = f"{source}: {type(error).__name__}: {error}"
            self._failure_count += 1
            if provider is self.primary:
                self._consecutive_failures += 1
                first, longest = self.backoff
                delay = min(longest, first * 2 ** (self._consecutive_failures - 1))
                self._retry_primary_at = time.monotonic() + delay

    def _publish(self, prior: Prior) -> None:
        """Make an accepted prior the one in force."""
        with self._lock:
            self._latest = prior
            self._refresh_count += 1
