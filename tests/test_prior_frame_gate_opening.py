"""The frame gate held open where the built-in estimator reads heavy rain, and only there: a word
alone (a VLM's, a user's) leaves it to the frame, on every backend."""
import numpy as np
import pytest

from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.pipeline import PipelineConfig, build_pipeline
from allweather_ros.prior.builtin import BuiltinEstimator
from allweather_ros.prior.frame_gate_opening import frame_gate_opening
from allweather_ros.prior.prior import Prior

pytestmark = pytest.mark.usefixtures("one_thread")

HEAVY_RAIN = "The image is degraded by heavy rain streaks across the whole frame."


def _prior(text: str, provider: str) -> Prior:
    return Prior(text=text, labels=dict.fromkeys(TYPES, 0.5), severity="heavy",
                 confidence=0.9, provider=provider)


def _read(**types: str) -> Prior:
    """The built-in estimator's prior of a reading that is sure of `types` at those severities."""
    probabilities = np.array([0.99 if t in types else 0.01 for t in TYPES])
    severity = np.full((len(TYPES), len(SEVERITIES)), 1e-3)
    for t, tier in types.items():
        severity[TYPES.index(t), SEVERITIES.index(tier)] = 1.0
    return BuiltinEstimator().prior_from(probabilities, severity / severity.sum(1, keepdims=True))


def test_the_estimators_heavy_rain_opens_the_gate_and_a_word_alone_does_not():
    assert frame_gate_opening(_read(rain="heavy")) == 1.0
    assert frame_gate_opening(_read(rain="heavy", haze="moderate")) == 1.0
    for reading in (_read(rain="moderate"), _read(raindrop="heavy"), _read(snow="heavy"),
                    _read()):
        assert frame_gate_opening(reading) == 0.0, reading.text
    for provider in ("fixed", "vlm:some-model", "none"):
        assert frame_gate_opening(_prior(HEAVY_RAIN, provider)) == 0.0


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_pipeline_restores_the_estimators_heavy_rain_with_the_whole_correction(
        backend, tmp_path):
    frame = np.random.default_rng(0).random((40, 56, 3), dtype=np.float32)
    pipelines = {gate: build_pipeline(PipelineConfig(backend=backend, provider="fixed",
                                                     fixed_text=HEAVY_RAIN, frame_gate=gate,
                                                     cache_dir=str(tmp_path)),
                                      asynchronous=False) for gate in (True, False)}

    def restored(gate: bool, prior: Prior) -> np.ndarray:
        pipelines[gate].set_prior(prior)
        return pipelines[gate].process(frame).restored

    whole = restored(False, _prior(HEAVY_RAIN, "fixed"))
    read = restored(True, _prior(HEAVY_RAIN, BuiltinEstimator.name))
    said = restored(True, _prior(HEAVY_RAIN, "fixed"))
    np.testing.assert_allclose(read, whole, atol=1e-5)
    assert np.abs(said - whole).max() > 1e-3  # the same words from a user: gate left closed
