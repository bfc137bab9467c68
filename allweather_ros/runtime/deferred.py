"""A backend that serves a fallback while the primary one is made in a background thread.

A first TensorRT build takes minutes on a Jetson; a camera node cannot stop publishing for
that long. DeferredBackend answers every frame at once with the fallback (say onnxruntime or
torch), builds the primary in a thread, hands it the newest prior and then switches to it in
one attribute assignment. If the build fails it logs why and stays on the fallback.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import torch

from ..model import LDROutput, PriorCache
from .backend import Backend

log = logging.getLogger(__name__)


class DeferredBackend(Backend):
    """Backend interface over `fallback` until `primary_factory()` returns, then over that.

    `infer` never waits for the build: it reads the active backend without a lock. The prior
    is versioned so the primary always starts with the newest one, even if it changes while
    the primary is being made or primed.
    """

    def __init__(self, primary_factory: Callable[[], Backend], fallback: Backend,
                 label: str = "primary"):
        self._factory = primary_factory
        self._fallback = fallback
        self._active: Backend = fallback
        self.label = label
        self.error: BaseException | None = None
        self.build_seconds: float | None = None
        self._lock = threading.Lock()
        self._prior: PriorCache | None = None
        self._prior_version = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._build, name=f"build-{label}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self._active.name

    @property
    def state(self) -> str:
        """'building', 'ready' (on the primary) or 'failed' (on the fallback for good)."""
        if not self._done.is_set():
            return "building"
        return "failed" if self.error is not None else "ready"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the build has finished either way; True if it has."""
        return self._done.wait(timeout)

    def _build(self) -> None:
        start = time.monotonic()
        log.info("building the %s backend in the background; serving %s meanwhile",
                 self.label, self._fallback.name)
        try:
            primary = self._factory()
            while True:
                with self._lock:
                    prior, version = self._prior, self._prior_version
                if prior is not None:
                    primary.set_prior(prior)  # outside the lock: an upload may take a while
                with self._lock:
                    if version == self._prior_version:
                        self._active = primary
                        break
        except Exception as exc:  # any failure leaves the fallback serving
            self.error = exc
            log.error("the %s backend could not be made (%s: %s); staying on %s", self.label,
                      type(exc).__name__, exc, self._fallback.name)
        else:
            self.build_seconds = time.monotonic() - start
            log.info("switched to the %s backend (%s) after %.1f s", self.label, primary.name,
                     self.build_seconds)
        finally:
            self._done.set()

    def set_prior(self, cache: PriorCache) -> None:
        with self._lock:
            self._prior = cache
            self._prior_version += 1
            target = self._active
        target.set_prior(cache)

    def infer(self, image: torch.Tensor) -> LDROutput:
        return self._active.infer(image)

    def describe(self) -> dict:
        info = self._active.describe()
        info["deferred"] = {"state": self.state, "primary": self.label,
                            "build_seconds": self.build_seconds,
                            "error": None if self.error is None else str(self.error)}
        return info
