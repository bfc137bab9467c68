"""Checks of the synthetic-weather options that both trainers share (the restorer's TrainConfig
and the estimator's EstimatorTrainConfig), run when a config is made, so that a bad share or
zoom is refused by name before any data, checkpoint or hour of training is spent on it."""
from __future__ import annotations


def check_weather_options(config, shares: tuple[str, ...]) -> None:
    """`clean_p` in [0, 1) (some frames must have weather), each field named in `shares` in
    [0, 1], `max_zoom` >= 1 and `type_weights` of known types; nan is refused too."""
    if not 0 <= config.clean_p < 1:
        raise ValueError(f"clean_p must lie in [0, 1), got {config.clean_p}")
    for name in shares:
        if not 0 <= getattr(config, name) <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {getattr(config, name)}")
    if not config.max_zoom >= 1:
        raise ValueError(f"max_zoom must be >= 1, got {config.max_zoom}")
    if config.type_weights:
        from ..data.synthesis import type_probabilities  # the renderers load only when needed

        type_probabilities(config.type_weights)
