"""The weather outlasts the scene: a camera on the move sees the same rain over many scenes, while
the built-in estimator's mistakes are mostly the scene's (a grey facade read as haze, foliage as
rain, a glass beaded with drops read as clear). So on a stream its last few readings are pooled
before they are put into words: their type log-odds averaged, their severity log-probabilities
averaged with each reading weighted by how sure it is of the type (as the tiles of one frame
are, prior/builtin.py). On the real photo set, readings pooled over four photos of one source
and weather name the weather far more often than one photo alone (model card, estimator).

The price is lag: after the weather changes, the words follow once most of the pooled readings
see the new weather, two or three readings with 4 pooled (10 to 15 seconds at the node's
5-second period; a scene change brings the next reading sooner). One reading (`readings=1`)
is no memory at all, as for a folder of unrelated photos.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

_EDGE = 1e-6  # probabilities are kept off 0 and 1 so that their log-odds stay finite


class WeatherMemory:
    """The last `readings` estimates of one camera (per-type probabilities (4,) and severity
    distributions (4, 3), as BuiltinEstimator.estimate gives them), pooled by `pool`."""

    def __init__(self, readings: int = 1):
        self.readings = readings
        self._kept: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._lock = threading.Lock()

    @property
    def readings(self) -> int:
        return self._readings

    @readings.setter
    def readings(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"a weather memory holds at least 1 reading, got {value!r}")
        self._readings = value

    def pool(self, probabilities: np.ndarray, severity: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """Remember this reading and return the pooled (probabilities, severity) of the last
        `readings` ones, this one included."""
        p = np.clip(np.asarray(probabilities, np.float64), _EDGE, 1.0 - _EDGE)
        s = np.clip(np.asarray(severity, np.float64), _EDGE, None)
        with self._lock:
            self._kept.append((p, s / s.sum(-1, keepdims=True)))
            while len(self._kept) > self.readings:
                self._kept.popleft()
            ps, ss = map(np.stack, zip(*self._kept, strict=True))
        pooled_p = 1.0 / (1.0 + np.exp(-np.log(ps / (1.0 - ps)).mean(0)))
        sure = ps[..., None]
        log_s = (sure * np.log(ss)).sum(0) / sure.sum(0)
        pooled_s = np.exp(log_s - np.logaddexp.reduce(log_s, axis=-1, keepdims=True))
        return pooled_p, pooled_s

    def clear(self) -> None:
        """Forget every reading (another provider, or a run over unrelated frames)."""
        with self._lock:
            self._kept.clear()
