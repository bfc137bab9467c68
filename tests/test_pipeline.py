"""The pipeline restores frames with the cached prior and swaps priors without stopping."""
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import TINY, HashEncoder, trained_like

from allweather_ros.description import GENERIC_TEXT
from allweather_ros.model import LDRNet
from allweather_ros.pipeline import Pipeline, PipelineConfig
from allweather_ros.prior.prior import PriorProvider, prior_from_text
from allweather_ros.runtime.torch_backend import TorchBackend, TorchPriorEncoding


@pytest.fixture
def pipeline() -> Pipeline:
    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY))
    encoder = HashEncoder()
    return Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                    initial=prior_from_text("heavy rain", "fixed", encoder))


def test_a_frame_comes_back_restored_at_its_size(pipeline):
    rgb = np.random.default_rng(0).random((37, 51, 3), dtype=np.float32)
    result = pipeline.process(rgb)
    assert result.restored.shape == (37, 51, 3) and result.restored.dtype == np.float32
    assert result.restored.min() >= 0 and result.restored.max() <= 1
    assert result.degradation_map.shape == (37, 51)
    assert result.prior.source_text == "heavy rain"
    assert result.latency_s > 0


def test_a_new_prior_changes_the_output(pipeline):
    rgb = np.random.default_rng(1).random((32, 32, 3), dtype=np.float32)
    before = pipeline.process(rgb).restored
    pipeline.set_prior(prior_from_text("dense fog", "fixed", pipeline.encoder))
    after = pipeline.process(rgb)
    assert after.prior.source_text == "dense fog"
    assert after.prior.text == "The image is degraded by heavy haze across the whole frame."
    assert not np.allclose(before, after.restored)


def test_prior_swaps_while_frames_run_never_mix_halves(pipeline):
    rgb = np.random.default_rng(2).random((24, 24, 3), dtype=np.float32)
    texts = ["heavy rain", "dense fog"]
    expected = {}
    for text in texts:
        pipeline.set_prior(prior_from_text(text, "fixed", pipeline.encoder))
        expected[text] = pipeline.process(rgb).restored
    stop = threading.Event()

    def swapper():
        i = 0
        while not stop.is_set():
            pipeline.set_prior(prior_from_text(texts[i % 2], "fixed", pipeline.encoder))
            i += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(30):
            out = pipeline.process(rgb).restored
            assert any(np.allclose(out, e, atol=1e-6) for e in expected.values())
    finally:
        stop.set()
        thread.join()


def test_tokens_of_the_wrong_width_are_refused(pipeline):
    prior = prior_from_text("rain", "vlm", None)
    wide = type(prior)(**{**prior.__dict__, "tokens": torch.zeros(4, TINY["prior_dim"] + 1)})
    with pytest.raises(ValueError, match="prior tokens are"):
        pipeline.set_prior(wide)


def test_refresh_now_needs_a_provider(pipeline):
    with pytest.raises(RuntimeError, match="provider"):
        pipeline.refresh_now(np.zeros((8, 8, 3), np.float32))


def test_reconfigure_rebuilds_the_provider_only_when_the_active_one_is_affected(
        pipeline_config):
    from dataclasses import replace

    from allweather_ros.pipeline import build_pipeline

    built = build_pipeline(replace(pipeline_config, provider="none"))
    try:
        before = built.refresher.primary
        built.reconfigure(fixed_text="dense fog", vlm_model="/not/loaded/while/unused")
        assert built.refresher.primary is before and built.config.fixed_text == "dense fog"
        built.reconfigure(provider="fixed")
        fixed = built.refresher.primary
        assert fixed.name == "fixed" and fixed.text == "dense fog"
        built.reconfigure(prior_period_s=0.5, vlm_model="/still/unused")
        assert built.refresher.primary is fixed and built.refresher.period == 0.5
        built.reconfigure(fixed_text="light rain")
        assert built.refresher.primary is not fixed and built.refresher.primary.text == \
            "light rain"
    finally:
        built.close()


def test_each_camera_has_its_own_prior_from_the_shared_provider(pipeline_config, tmp_path):
    """A lens drop seen by the rear camera must not change the front camera's restoration:
    each camera's refresher describes its own frames with the one shared provider."""
    from dataclasses import replace

    from allweather_ros.model.weights import save_weights
    from allweather_ros.pipeline import build_pipeline
    from allweather_ros.prior.prior import PriorProvider, prior_from_text

    torch.manual_seed(0)
    weights = save_weights(trained_like(LDRNet(**{**TINY, "prior_dim": 384})),
                           tmp_path / "trained_like.safetensors")

    class ByBrightness(PriorProvider):
        """Rain for bright frames, lens drops for dark ones, as a user's note would put it."""

        name = "fixed"

        def __init__(self, encoder):
            self.encoder = encoder

        def describe(self, frame=None):
            text = "heavy rain" if frame.mean() > 0.5 else "dense water drops on the lens"
            return prior_from_text(text, self.name, self.encoder, confidence=1.0)

    built = build_pipeline(replace(pipeline_config, weights=str(weights), provider="none"))
    try:
        shared = ByBrightness(built.encoder)
        built.refresher.use(shared, None)
        built.refresher.check_interval = built.refresher.period = 0.01
        bright, dark = np.full((24, 32, 3), 0.8, np.float32), np.full((24, 32, 3), 0.2, np.float32)
        deadline = time.monotonic() + 30
        while {built.prior_of("front").source_text, built.prior_of("rear").source_text} != {
                "heavy rain", "dense water drops on the lens"}:
            assert time.monotonic() < deadline, "no per-camera priors within 30 s"
            built.process(bright, "front")
            built.process(dark, "rear")
            time.sleep(0.02)
        built.reconfigure(prior_period_s=1000.0)  # every camera's refresher: no more changes
        time.sleep(0.1)
        front, rear = built.process(bright, "front"), built.process(bright, "rear")
        assert front.prior.source_text == "heavy rain"
        assert rear.prior.source_text == "dense water drops on the lens"
        assert not np.array_equal(front.restored, rear.restored)  # each with its own prior
        assert built.describe("front")["refresher"]["primary"] == "fixed"
    finally:
        built.close()


@pytest.mark.parametrize("frame, message", [
    (np.full((8, 8, 3), 200, np.uint8), "got uint8: divide by 255"),
    (np.zeros((8, 8, 3), np.uint16), "got uint16: divide by 65535"),
    (np.zeros((8, 8), np.float32), r"shape \(H, W, 3\), got shape \(8, 8\)"),
    (np.zeros((8, 8, 4), np.float32), "got shape"),
])
def test_a_frame_that_is_not_float_rgb_is_refused_with_what_to_do(pipeline, frame, message):
    with pytest.raises(ValueError, match=message):
        pipeline.process(frame)
    assert np.isfinite(pipeline.process(np.zeros((8, 8, 3), np.float32)).restored).all()


class _Says(PriorProvider):
    """Says `text` at `confidence`, whatever the frame."""

    name = "says"

    def __init__(self, text, confidence):
        self.said = replace(prior_from_text(text, self.name, None), confidence=confidence)

    def describe(self, frame):
        return self.said


@pytest.mark.parametrize("provider, min_confidence, told", [
    (_Says("heavy rain", 0.4), 0.0, "heavy rain streaks"),
    (_Says("heavy rain", 0.1), 0.5, GENERIC_TEXT),  # unsure: coarsened, as a refresher does
])
def test_refresh_now_publishes_what_a_refresher_would(provider, min_confidence, told):
    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY))
    encoder = HashEncoder()
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=prior_from_text("rain", "fixed", encoder), provider=provider,
                        config=PipelineConfig(min_confidence=min_confidence))
    assert told in pipeline.refresh_now(np.zeros((8, 8, 3), np.float32)).text


class _Remembers(PriorProvider):
    """A remembering provider that records the weather memory it is handed."""

    name = "remembers"
    remembers = True

    def __init__(self):
        self.memories = []

    def describe(self, frame, memory=None):
        self.memories.append(memory)
        return prior_from_text("heavy rain", self.name, None)


def test_refresh_now_pools_each_cameras_readings_apart():
    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY))
    encoder, provider = HashEncoder(), _Remembers()
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=prior_from_text("rain", "fixed", encoder), provider=provider,
                        config=PipelineConfig(prior_memory=3))
    frame = np.zeros((8, 8, 3), np.float32)
    for camera in ("front", "front", "rear"):
        pipeline.refresh_now(frame, camera, remember=True)
    pipeline.refresh_now(frame, "front")  # by default a frame stands alone (unrelated photos)
    front, again, rear, alone = provider.memories
    assert front is again and rear is not front and alone is None
    assert front.readings == 3
    pipeline.reconfigure(prior_memory=2)
    pipeline.refresh_now(frame, "front", remember=True)
    assert provider.memories[-1] is front and front.readings == 2


def test_a_stream_loses_its_transients_a_lone_frame_does_not(pipeline, monkeypatch):
    """Streaks that the camera's last frames did not have are taken out of a stream's frame
    (transients.py), only there; a frame alone, or with transient_frames 0, is the network's."""
    import itertools
    from types import SimpleNamespace

    import cv2
    from test_transients import rained, scene

    # frames 1/30 s apart however loaded the machine is: a past older than max_gap_s (1 s) is
    # forgotten, and a busy test host once made this stream start over
    clock = itertools.count(0.0, 1 / 30)
    monkeypatch.setattr("allweather_ros.transients.time",
                        SimpleNamespace(monotonic=lambda: next(clock)))

    frames = [rained(scene(), seed=t)[0] for t in range(4)]
    pipeline.reconfigure(transient_frames=3)  # off by default (options.py)
    alone = pipeline.process(frames[3])
    assert alone.transient_share == 0.0 and alone.transient_state == "off"
    for frame in frames[:3]:
        pipeline.process(frame, stream=True)
    streamed = pipeline.process(frames[3], stream=True)
    assert streamed.transient_share > 0 and streamed.transient_state == "applied"
    changed = np.abs(streamed.restored - alone.restored).max(axis=2) > 1e-6
    near_streaks = cv2.dilate(rained(scene(), seed=3)[1].astype(np.uint8), np.ones((5, 5)))
    assert changed.any() and not (changed & ~near_streaks.astype(bool)).any()

    pipeline.reconfigure(transient_frames=0)
    for frame in frames[:3]:
        pipeline.process(frame, stream=True)
    off = pipeline.process(frames[3], stream=True)
    assert off.transient_share == 0.0 and np.array_equal(off.restored, alone.restored)
