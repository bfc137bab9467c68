"""Degradation priors (LDR section 3.1): who describes the weather in a frame, how the
description becomes prior tokens for the restorer, and how it is kept fresh off the frame path."""
from allweather_ros.description import GENERIC_TEXT
from allweather_ros.prior.parse import ParsedDescription, parse
from allweather_ros.prior.prior import Prior, PriorProvider, prior_from_text
from allweather_ros.prior.providers import FixedPrior, NoPrior
from allweather_ros.prior.refresher import PriorRefresher
from allweather_ros.prior.text_encoder import MAX_TOKENS, TextEncoder, pad_tokens
from allweather_ros.prior.uncertainty import coarsen
from allweather_ros.prior.vlm import VLMPrior

__all__ = [
    "GENERIC_TEXT",
    "MAX_TOKENS",
    "FixedPrior",
    "NoPrior",
    "ParsedDescription",
    "Prior",
    "PriorProvider",
    "PriorRefresher",
    "TextEncoder",
    "VLMPrior",
    "coarsen",
    "pad_tokens",
    "parse",
    "prior_from_text",
]
