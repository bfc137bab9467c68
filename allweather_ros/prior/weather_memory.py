"""The weather outlasts the scene: a camera on the move sees the same rain over many scenes, while
the built-in estimator's mistakes are mostly the scene's (a grey facade read as haze, foliage as
rain, a glass beaded with drops read as clear). So on a stream the type log-odds of its last
few readings are averaged before they are put into words. On the real photo set, readings
pooled over four photos of one source and weather name the weather far more often than one
photo alone (model card, estimator).

The price is lag: after the weather changes, the types follow once most of the pooled readings
see the new weather, two or three readings with 4 pooled (10 to 15 seconds at the node's
5-second period; a scene change brings the next reading sooner). Severity is not pooled: it is
the newest reading's, so rain easing from heavy to slight is told "slight" at once ("heavy" said
of slight weather is what costs the restorer most; pooled over drives whose rain eased, "heavy"
was said of 6 of 14 slight real rain photos instead of 1). One reading (`readings=1`) is no
memory at all, as for a folder of unrelated photos.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

_EDGE = 1e-6  # probabilities are kept off 0 and 1 so that their log-odds stay finite


class WeatherMemory:
    """The type probabilities of the last `readings` estimates of one camera, pooled by
    `pool`."""

    def __init__(self, readings: int = 1):
        self.readings = readings
        self._kept: deque[np.ndarray] = deque()
        self._lock = threading.Lock()

    @property
    def readings(self) -> int:
        return self._readings

    @readings.setter
    def readings(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"a weather memory holds at least 1 reading, got {value!r}")
        self._readings = value

    def pool(self, probabilities: np.ndarray) -> np.ndarray:
        """Remember this reading's per-type probabilities and return those pooled over the
        last `readings`, this one included (their mean log-odds)."""
        p = np.clip(np.asarray(probabilities, np.float64), _EDGE, 1.0 - _EDGE)
        with self._lock:
            self._kept.append(p)
            while len(self._kept) > self.readings:
                self._kept.popleft()
            kept = np.stack(self._kept)
        return 1.0 / (1.0 + np.exp(-np.log(kept / (1.0 - kept)).mean(0)))

    def __len__(self) -> int:
        """How many readings it holds now."""
        return len(self._kept)

    def clear(self) -> None:
        """Forget every reading (another provider, or a run over unrelated frames)."""
        with self._lock:
            self._kept.clear()
