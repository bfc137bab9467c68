"""The one interface every inference backend implements.

A backend runs the per-frame graph. The prior changes rarely, so it is handed over once per
refresh (`set_prior`: upload, bind, convert) and every `infer` reuses it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..model import LDROutput, PriorCache


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (library, device or engine missing); the reason says why."""


class Backend(ABC):
    """Runs LDRNet.forward on frames: image (1, 3, H, W) float32 CPU tensor in [0, 1]."""

    name: str = "?"

    @abstractmethod
    def set_prior(self, cache: PriorCache) -> None:
        """Take a new prior cache (CPU tensors); later frames use it."""

    @abstractmethod
    def infer(self, image: torch.Tensor) -> LDROutput:
        """One frame in, LDROutput out as CPU tensors (restored not clamped)."""

    def describe(self) -> dict:
        """What runs where, for logs, diagnostics and the benchmark."""
        return {"backend": self.name}
