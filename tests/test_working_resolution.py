"""Large frames restored at a working resolution keep their size, their detail and the
network's correction; small frames take the plain path untouched."""
import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, trained_like
from skimage.metrics import peak_signal_noise_ratio

from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import GENERIC_TEXT, Degradation
from allweather_ros.model import LDRNet
from allweather_ros.pipeline import Pipeline, PipelineConfig, load_model
from allweather_ros.prior.prior import prior_from_text
from allweather_ros.runtime.torch_backend import TorchBackend, TorchPriorEncoding
from allweather_ros.working_resolution import (
    downscale,
    guided_upsample,
    particles_taken_out,
    working_size,
)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth shading plus pixel-scale texture: detail a downscaled copy cannot hold."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 0.5 + 0.3 * np.sin(x / 17.0)[..., None] * np.cos(y / 11.0)[..., None]
    noise = np.random.default_rng(seed).normal(0.0, 0.08, (height, width, 3))
    return np.clip(shade + noise, 0.0, 1.0).astype(np.float32)


def tiny_pipeline(max_side: int) -> Pipeline:
    from test_pipeline import HashEncoder

    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY)).eval()
    encoder = HashEncoder()
    return Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                    initial=prior_from_text("heavy rain", "fixed", encoder),
                    config=PipelineConfig(processing_max_side=max_side))


def test_working_size_is_off_for_small_frames_and_keeps_the_aspect():
    assert working_size(1080, 1920, 0) is None
    assert working_size(720, 1280, 1280) is None
    assert working_size(1080, 1920, 1280) == (720, 1280)
    assert working_size(1920, 1080, 960) == (960, 540)


def test_a_large_frame_comes_back_at_its_size(one_thread):
    rgb = textured(50, 80)
    result = tiny_pipeline(max_side=40).process(rgb)
    assert result.restored.shape == (50, 80, 3) and result.restored.dtype == np.float32
    assert result.degradation_map.shape == (50, 80)
    assert 0.0 <= result.restored.min() and result.restored.max() <= 1.0


def test_a_frame_within_the_max_side_takes_the_plain_path_bit_for_bit(one_thread):
    rgb = textured(37, 51)
    plain = tiny_pipeline(max_side=0).process(rgb)
    capped = tiny_pipeline(max_side=51).process(rgb)
    assert np.array_equal(plain.restored, capped.restored)
    assert np.array_equal(plain.degradation_map, capped.degradation_map)


@pytest.mark.parametrize("gain, offset", [(1.2, -0.1), (1.0, 0.05), (0.9, 0.1)])
def test_a_global_gain_and_offset_transfer_exactly(gain, offset):
    """More contrast (dehazing), a new level, mildly less contrast: the correction is a gain
    and an offset, and carries to full resolution with the frame's own detail. (A strong cut
    of this texture's contrast, 0.8, reads as particles taken out: module docstring.)"""
    frame = textured(120, 160)
    low = downscale(frame, (60, 80))
    expected = np.clip(gain * frame + offset, 0.0, 1.0)
    error = np.abs(guided_upsample(frame, low, np.clip(gain * low + offset, 0.0, 1.0)) - expected)
    # exact but for the fit's regularisation, which shrinks the gain in the flattest windows
    assert error.mean() < 1e-3 and error.max() < 0.02
    naive = cv2.resize(gain * low + offset, (160, 120), interpolation=cv2.INTER_LINEAR)
    assert np.abs(naive - expected).mean() > 0.02  # the detail the test is about


def streaked(clean: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`clean` under thin bright rain (slanted streaks one pixel wide, as a camera's own
    resolution shows them) and where the streaks are."""
    rng = np.random.default_rng(seed)
    streaks = np.zeros(clean.shape[:2], np.float32)
    for _ in range(40):
        x, y = rng.integers(0, clean.shape[1]), rng.integers(0, clean.shape[0] - 24)
        cv2.line(streaks, (int(x), int(y)), (int(x) + 4, int(y) + 24), 1.0, 1)
    return np.clip(clean + 0.45 * streaks[..., None], 0.0, 1.0), streaks > 0


def test_a_streak_taken_out_at_the_working_resolution_stays_out(monkeypatch, one_thread):
    """Rain one pixel wide at the camera's resolution is a faint half-pixel streak at the
    working resolution: the local linear model alone carries little of its removal back, the
    particle step holds the rest down, and the scene between the streaks is kept."""
    from allweather_ros import working_resolution
    from allweather_ros.prior.text_encoder import TextEncoder

    model, encoder = load_model(), TextEncoder()
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=prior_from_text("The image is degraded by heavy rain streaks "
                                                "across the whole frame.", "fixed", encoder),
                        config=PipelineConfig(processing_max_side=320))
    clean = skimage_scenes()[0].load(640).astype(np.float32)[:480] / 255.0  # the astronaut
    rainy, streak = streaked(clean)
    carried = pipeline.process(rainy).restored
    monkeypatch.setattr(working_resolution, "PARTICLE_DROP", (1.0, 2.0))  # the step off
    linear = pipeline.process(rainy).restored
    left = lambda out: float((out - clean)[streak].mean())  # noqa: E731
    assert left(rainy) > 0.3
    assert left(linear) > 0.15, "the linear model alone carried the streaks: the test is moot"
    assert left(carried) < 0.7 * left(linear), (left(carried), left(linear))
    behind = ~cv2.dilate(streak.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert np.abs(carried - clean)[behind].mean() < np.abs(linear - clean)[behind].mean() + 0.003


def test_a_float64_frame_comes_back_float32_like_a_small_one(one_thread):
    """A float64 frame (the Python API takes any float frame) is carried back as a float32
    one is, and comes back float32 as a frame within the max side does."""
    clean = textured(240, 320, seed=3) * 0.6 + 0.1
    rainy, _ = streaked(clean.astype(np.float64))
    low = downscale(rainy, (120, 160))
    restored_low = cv2.GaussianBlur(downscale(clean, (120, 160)), (0, 0), 0.8)
    wide = guided_upsample(rainy, low, restored_low)
    assert wide.dtype == np.float32
    assert np.allclose(wide, guided_upsample(*(x.astype(np.float32) for x in
                                               (rainy, low, restored_low))), atol=1e-5)
    pipeline = tiny_pipeline(max_side=40)
    assert pipeline.process(textured(50, 80).astype(np.float64)).restored.dtype == np.float32
    assert pipeline.process(textured(30, 40).astype(np.float64)).restored.dtype == np.float32


def test_a_frame_nothing_was_taken_out_of_keeps_the_linear_path():
    frame = textured(120, 160)
    low = downscale(frame, (60, 80))
    assert not particles_taken_out(low, low).any()
    assert np.abs(guided_upsample(frame, low, low) - frame).max() < 0.02


@pytest.fixture(scope="module")
def rainy_scene():
    """A real photo under synthetic rain, its description, and the shipped restorer."""
    clean = skimage_scenes()[0].load(384).astype(np.float32) / 255.0
    sample = synthesize(clean[:288, :384], np.random.default_rng(0),
                        [Degradation("rain", "moderate"), Degradation("haze", "slight")])
    return sample, load_model()


def test_guided_upsampling_keeps_detail_that_a_plain_upscale_loses(rainy_scene, one_thread):
    from allweather_ros.prior.text_encoder import TextEncoder

    sample, model = rainy_scene
    encoder = TextEncoder()
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=prior_from_text(sample.text, "fixed", encoder))
    full = pipeline.process(sample.degraded).restored
    pipeline.reconfigure(processing_max_side=192)
    guided = pipeline.process(sample.degraded).restored
    pipeline.reconfigure(processing_max_side=0)
    low = pipeline.process(downscale(sample.degraded, (144, 192))).restored
    naive = cv2.resize(low, (384, 288), interpolation=cv2.INTER_LINEAR)
    psnr_guided = peak_signal_noise_ratio(full, guided, data_range=1.0)
    psnr_naive = peak_signal_noise_ratio(full, naive, data_range=1.0)
    assert psnr_guided > psnr_naive + 1.0, (psnr_guided, psnr_naive)


def test_processing_max_side_is_a_run_time_option_of_the_pipeline(one_thread):
    """One option (options.py): default 640, integers >= 0, changeable while the node runs;
    it is PipelineConfig's default and the next frame after `reconfigure` follows it."""
    from allweather_ros.options import BY_NAME, DEFAULTS, problems

    option = BY_NAME["processing_max_side"]
    assert (option.default, option.runtime, option.pipeline_field) == (
        640, True, "processing_max_side")
    assert PipelineConfig().processing_max_side == 640
    assert problems({**DEFAULTS, "processing_max_side": -1}, ["processing_max_side"])
    assert not problems({**DEFAULTS, "processing_max_side": 0}, ["processing_max_side"])
    rgb = textured(50, 80)
    pipeline = tiny_pipeline(max_side=0)
    plain = pipeline.process(rgb).restored
    pipeline.reconfigure(processing_max_side=40)
    assert pipeline.config.processing_max_side == 40
    capped = pipeline.process(rgb).restored
    assert capped.shape == plain.shape and not np.array_equal(capped, plain)
    assert np.array_equal(tiny_pipeline(max_side=40).process(rgb).restored, capped)


def sizes_seen(pipeline: Pipeline) -> list[tuple[int, int]]:
    """The (height, width) of every frame the network is handed from now on, in order."""
    seen = []
    infer = pipeline.backend.infer
    pipeline.backend.infer = lambda image: seen.append(image.shape[2:]) or infer(image)
    return seen


@pytest.mark.parametrize("text, restored_at", [
    ("heavy falling snow", (27, 48)),  # snow alone: the snow side
    ("moderate haze and slight snow", (27, 48)),
    ("heavy rain", (54, 96)),  # rain: the full working side
    ("slight rain streaks and heavy falling snow", (54, 96)),
    ("The image is clear, with no visible weather degradation.", (54, 96)),
    (GENERIC_TEXT, (54, 96)),  # no claim: it may be rain
    ("qwerty", (54, 96)),  # words the parser does not know: no claim either
])
def test_a_frame_said_to_hold_snow_and_no_rain_is_restored_at_the_snow_side(
        text, restored_at, one_thread):
    """Real flakes come out better at a smaller side and fine streaks need the larger one
    (options.py): the prior's words pick the side, and the frame comes back at its size."""
    pipeline = tiny_pipeline(max_side=96)
    pipeline.reconfigure(processing_max_side_snow=48)
    pipeline.set_prior(prior_from_text(text, "fixed", pipeline.encoder))
    seen = sizes_seen(pipeline)
    result = pipeline.process(textured(72, 128))
    assert seen == [restored_at] and result.working_side == max(restored_at)
    assert result.restored.shape == (72, 128, 3) and result.degradation_map.shape == (72, 128)


def road_with_marking(marked: bool) -> np.ndarray:
    """72x128 dark asphalt, with a lane marking (a bright bar slanted by perspective) below
    the middle where `marked`."""
    grain = np.random.default_rng(0).random((72, 128, 1)).astype(np.float32)
    frame = np.repeat(0.25 + 0.05 * grain, 3, axis=2)
    if marked:
        cv2.line(frame, (24, 70), (64, 40), (0.9, 0.9, 0.9), 4)
    return frame


def test_a_road_keeps_the_working_side_for_snow_and_a_stream_remembers_it(monkeypatch,
                                                                            one_thread):
    """Lane markings lose more to the network at the snow side, so a frame that shows them
    (or, on a stream, whose camera showed them in its last ROAD_MEMORY frames) is restored at
    the working side; once the markings are that long gone, the snow side again."""
    from allweather_ros import pipeline as pipeline_module
    from allweather_ros.markings import marking_mask

    monkeypatch.setattr(pipeline_module, "ROAD_MEMORY", 3)
    marked, plain = road_with_marking(True), road_with_marking(False)
    assert marking_mask(downscale(marked, (54, 96))).any()
    assert not marking_mask(downscale(plain, (54, 96))).any()
    pipeline = tiny_pipeline(max_side=96)
    pipeline.reconfigure(processing_max_side_snow=48)
    pipeline.set_prior(prior_from_text("heavy falling snow", "fixed", pipeline.encoder))
    seen = sizes_seen(pipeline)
    for frame in (marked, plain, plain, plain):
        pipeline.process(frame, stream=True)
    assert seen == [(54, 96)] * 3 + [(27, 48)]
    seen.clear()
    pipeline.process(marked, stream=True)
    pipeline.process(plain)  # a photo stands alone: no memory of the stream
    pipeline.process(marked)
    assert seen == [(54, 96), (27, 48), (54, 96)]


def test_the_snow_side_never_raises_the_working_side_and_zero_turns_it_off(one_thread):
    pipeline = tiny_pipeline(max_side=0)  # whole frames asked for: snow too
    pipeline.set_prior(prior_from_text("heavy falling snow", "fixed", pipeline.encoder))
    seen = sizes_seen(pipeline)
    rgb = textured(72, 128)
    for side, snow in ((0, 48), (64, 96), (96, 0)):
        pipeline.reconfigure(processing_max_side=side, processing_max_side_snow=snow)
        pipeline.process(rgb)
    assert seen == [(72, 128), (36, 64), (54, 96)]


def test_the_snow_side_is_a_run_time_option_no_smaller_than_an_engine_takes():
    from allweather_ros.options import BY_NAME, DEFAULTS, problems
    from allweather_ros.runtime.engine_cache import MIN_FRAME_SIDE

    option = BY_NAME["processing_max_side_snow"]
    assert (option.default, option.runtime) == (320, True)  # a road keeps 640 (options.py)
    assert PipelineConfig().processing_max_side_snow == 320
    for value, refused in ((0, False), (MIN_FRAME_SIDE, False), (MIN_FRAME_SIDE - 1, True),
                           (-1, True)):
        found = problems({**DEFAULTS, "processing_max_side_snow": value},
                         ["processing_max_side_snow"])
        assert bool(found) == refused, (value, found)
