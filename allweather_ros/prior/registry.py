"""Providers by name, as the node's `prior.provider` parameter and the CLI's --provider say."""
from __future__ import annotations

from .prior import Encoder, PriorProvider
from .providers import FixedPrior, NoPrior

PROVIDERS = ("builtin", "vlm", "fixed", "none")


def create_provider(name: str, encoder: Encoder | None, *, vlm_model: str | None = None,
                    fixed_text: str | None = None, device: str = "cpu",
                    allow_download: bool = False) -> PriorProvider:
    """Build the named provider; a missing option gets an error naming it."""
    if name == "builtin":
        from .builtin import BuiltinEstimator

        return BuiltinEstimator(encoder=encoder, device=device)
    if name == "vlm":
        if not vlm_model:
            raise ValueError("the vlm provider needs a model: a local folder or a cached hub id")
        from .vlm import VLMPrior

        return VLMPrior(vlm_model, encoder=encoder, device=device, allow_download=allow_download)
    if name == "fixed":
        if not fixed_text:
            raise ValueError("the fixed provider needs its description text")
        return FixedPrior(fixed_text, encoder)
    if name == "none":
        return NoPrior(encoder)
    raise ValueError(f"unknown prior provider {name!r}; expected one of {PROVIDERS}")
