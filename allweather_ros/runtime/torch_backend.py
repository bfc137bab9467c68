"""PyTorch backend: CPU or CUDA, fp32/fp16/bf16, channels_last, torch.compile, CUDA graphs."""
from __future__ import annotations

import copy
import logging

import torch

from ..model import LDRNet, LDROutput, PriorCache
from ..network_io import gate_opening_feed
from .backend import Backend, BackendUnavailable

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
log = logging.getLogger(__name__)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 convolutions natively; without it they are emulated:
    on an AVX2-only CPU (an AMD EPYC) bf16 trained 4-7x slower than fp32, where an AVX-512 CPU
    ran it 12% faster (model card, "Training throughput")."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # oneDNN's own test (AVX-512 or AMX); private, so its absence reads as "no"
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class TorchBackend(Backend):
    """Runs the network eagerly or compiled.

    `cuda_graphs` compiles with mode="reduce-overhead", which records CUDA graphs per frame
    shape: the launch overhead of a small network's many kernels disappears.
    """

    name = "torch"

    def __init__(self, model: LDRNet, device: str = "cpu", precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False, cuda_graphs: bool = False):
        if precision not in DTYPES:
            raise ValueError(f"precision must be one of {sorted(DTYPES)}, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch has no CUDA device here")
        self.device = torch.device(device)
        if precision == "bf16" and not native_bf16(self.device):
            log.warning("bf16 on %s is emulated here (no native bf16 path: AVX-512, AMX or a "
                        "bf16 GPU); expect it several times slower than fp32", self.device)
        self.dtype = DTYPES[precision]
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = copy.deepcopy(model).eval()  # the caller's model keeps its device and dtype
        self.model = model.to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.forward = self.model
        if compile or cuda_graphs:
            mode = "reduce-overhead" if cuda_graphs else "default"
            self.forward = torch.compile(self.model, mode=mode, dynamic=False)
        self.options = {"channels_last": channels_last, "compile": compile,
                        "cuda_graphs": cuda_graphs}
        self._prior: tuple[torch.Tensor, ...] | None = None

    def set_prior(self, cache: PriorCache) -> None:
        """The forward's prior arguments (network_io.graph_inputs) on the device."""
        prior = (cache.kv, cache.bias)
        if self.model.frame_gate is not None:
            prior += (torch.from_numpy(gate_opening_feed(cache)),)
        self._prior = tuple(t.to(self.device, self.dtype) for t in prior)

    @torch.inference_mode()
    def infer(self, image) -> LDROutput:
        if self._prior is None:
            raise RuntimeError("set_prior must be called before infer")
        x = torch.as_tensor(image).to(self.device, self.dtype, non_blocking=True)
        out = self.forward(x.contiguous(memory_format=self.memory_format), *self._prior)
        return LDROutput(*(t.float().cpu() if t.is_floating_point() else t.cpu() for t in out))

    def describe(self) -> dict:
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                **self.options}


class TorchPriorEncoding:
    """LDRNet.encode_prior of one prior's tokens (L, C), a torch tensor or numpy array, run by
    torch: the pipeline's prior encoding with every backend but ONNX Runtime (whose pipeline
    runs the exported graph instead, onnx_prior.OnnxPriorEncoding)."""

    def __init__(self, model: LDRNet):
        self.model = model.eval()
        self.config = model.config

    @torch.no_grad()
    def __call__(self, tokens) -> PriorCache:
        tokens = torch.as_tensor(tokens, dtype=torch.float32)[None]
        return self.model.encode_prior(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool))
