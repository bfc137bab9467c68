"""Prior providers by name, with the options each needs: the one list the node's parameter rule,
the pipeline and the CLI's --provider ask (no heavy import here, so asking is free)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .prior import Encoder, PriorProvider

PROVIDERS = {"builtin": (), "vlm": ("vlm_model", "vlm_rain_check"), "fixed": ("fixed_text",),
             "none": ()}
"""Provider name -> the PipelineConfig fields it needs (and is rebuilt for when they change)."""


def create_provider(name: str, encoder: Encoder | None, *, vlm_model: str | None = None,
                    fixed_text: str | None = None, device: str = "cpu",
                    allow_download: bool = False, load_estimator_net=None,
                    estimator_weights: str | None = None,
                    vlm_rain_check: bool = True, estimator=None) -> PriorProvider:
    """Build the named provider; a missing option gets an error naming it. `load_estimator_net`
    (weights path -> network) runs the built-in estimator elsewhere than torch on `device`;
    `estimator_weights` are its weights (None or empty: the shipped ones). `vlm_rain_check`: the
    VLM's rain severity is checked by the built-in estimator (prior/severity_check.py):
    `estimator`, one already built (the VLM's fallback), else one built here."""
    if name == "builtin":
        from .builtin import BuiltinEstimator

        return BuiltinEstimator(estimator_weights, encoder=encoder, device=device,
                                load_net=load_estimator_net)
    if name == "vlm":
        if not vlm_model:
            raise ValueError("the vlm provider needs a model: a local folder or a cached hub id")
        from .vlm import VLMPrior

        vlm = VLMPrior(vlm_model, encoder=encoder, device=device, allow_download=allow_download)
        if not vlm_rain_check:
            return vlm
        from .severity_check import SeverityChecked

        estimator = estimator or create_provider("builtin", None, device=device,
                                                 load_estimator_net=load_estimator_net,
                                                 estimator_weights=estimator_weights)
        return SeverityChecked(vlm, estimator, encoder)
    if name == "fixed":
        if not fixed_text:
            raise ValueError("the fixed provider needs its description text")
        from .providers import FixedPrior

        return FixedPrior(fixed_text, encoder)
    if name == "none":
        from .providers import NoPrior

        return NoPrior(encoder)
    raise ValueError(f"unknown prior provider {name!r}; expected one of {tuple(PROVIDERS)}")
