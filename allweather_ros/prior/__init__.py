"""Degradation priors (LDR section 3.1): who describes the weather in a frame (registry,
providers, builtin, vlm), how the description becomes prior tokens for the restorer
(text_encoder), and how it is kept fresh off the frame path (refresher).

Nothing is imported here, so that asking the registry for provider names stays cheap.
"""
