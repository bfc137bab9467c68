"""The one interface every inference backend implements.

A backend runs the per-frame graph. The prior changes rarely, so it is handed over once per
refresh (`set_prior`: upload, bind, convert) and every `infer` reuses it. Nothing here imports
torch: the ONNX Runtime backend runs in a process that never loads it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..network_io import LDROutput, PriorCache


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (library, device or engine missing); the reason says why."""


class Backend(ABC):
    """Runs LDRNet.forward on frames: image (1, 3, H, W) float32 in [0, 1], a numpy array or a
    CPU torch tensor. Outputs are CPU arrays `np.asarray` reads: torch tensors from the torch
    and TensorRT backends, numpy arrays from ONNX Runtime."""

    name: str = "?"
    profile = None  # a compiled engine's ShapeProfile (engine_cache.py): the frames it takes

    @abstractmethod
    def set_prior(self, cache: PriorCache) -> None:
        """Take a new prior cache (CPU tensors or numpy arrays); later frames use it."""

    @abstractmethod
    def infer(self, image) -> LDROutput:
        """One frame in, LDROutput out on the CPU (restored not clamped)."""

    def working_side_problem(self, max_side: int) -> str:
        """Why this backend cannot restore frames at a new working resolution (`max_side`,
        processing_max_side; 0: whole frames), or "": a compiled engine is fixed to the frame
        sizes of its `profile`."""
        return "" if self.profile is None else self.profile.working_side_problem(max_side)

    def describe(self) -> dict:
        """What runs where, for logs, diagnostics and the benchmark."""
        return {"backend": self.name}
