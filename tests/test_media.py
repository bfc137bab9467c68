"""`allweather restore` on files: an image, a folder (names kept) or a video, as restored."""
import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, HashEncoder, trained_like

from allweather_ros.media import read_rgb, restore_path, write_rgb
from allweather_ros.model import LDRNet
from allweather_ros.options import BY_NAME
from allweather_ros.pipeline import Pipeline
from allweather_ros.prior.providers import FixedPrior
from allweather_ros.runtime.torch_backend import TorchBackend, TorchPriorEncoding


@pytest.fixture
def pipeline() -> Pipeline:
    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY))
    encoder = HashEncoder()
    provider = FixedPrior("heavy rain", encoder)
    return Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                    initial=provider.describe(None), provider=provider)


def photo(seed: int, size=(40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).random((*size, 3), dtype=np.float32)


def test_non_finite_and_out_of_range_values_are_written_clipped(tmp_path):
    write_rgb(tmp_path / "x.png", np.float32([[[np.nan, 1.7, -0.2], [np.inf, -np.inf, 0.5]]]))
    written = read_rgb(tmp_path / "x.png") * 255
    np.testing.assert_array_equal(written, [[[0, 255, 0], [255, 0, 128]]])


def test_an_image_is_written_as_the_pipeline_restores_it(pipeline, tmp_path):
    write_rgb(tmp_path / "rainy.png", photo(0))
    rainy = read_rgb(tmp_path / "rainy.png")
    assert restore_path(pipeline, tmp_path / "rainy.png", tmp_path / "out" / "clean.png") == (
        f"restored {tmp_path / 'rainy.png'} into {tmp_path / 'out' / 'clean.png'}, "
        f"told: {pipeline.prior.text}")
    assert "heavy rain" in pipeline.prior.text
    written = read_rgb(tmp_path / "out" / "clean.png")
    restored = pipeline.process(rainy).restored
    assert written.shape == rainy.shape
    assert np.abs(written - restored).max() <= 0.5 / 255 + 1e-6
    assert not np.allclose(written, rainy, atol=2 / 255)  # the network did act on it


def test_a_folder_keeps_its_names_and_skips_what_is_not_an_image(pipeline, tmp_path):
    (tmp_path / "in").mkdir()
    for i, name in enumerate(("a.png", "b.jpg")):
        write_rgb(tmp_path / "in" / name, photo(i))
    (tmp_path / "in" / "notes.txt").write_text("not a frame")
    summary = restore_path(pipeline, tmp_path / "in", tmp_path / "out")
    assert summary.startswith("restored 2 images")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        restore_path(pipeline, tmp_path / "empty", tmp_path / "out2")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        restore_path(pipeline, tmp_path / "missing.png", tmp_path / "out3.png")


def test_a_video_is_restored_frame_by_frame_at_its_size(pipeline, tmp_path):
    source = tmp_path / "rainy.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (56, 40))
    for i in range(5):
        writer.write((photo(i) * 255).astype(np.uint8))
    writer.release()
    assert restore_path(pipeline, source, tmp_path / "clean.mp4") == (
        f"restored 5 frames into {tmp_path / 'clean.mp4'}")
    capture = cv2.VideoCapture(str(tmp_path / "clean.mp4"))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (40, 56, 3)


class _Remembers(FixedPrior):
    """Says heavy rain, and records the weather memory each description is handed."""

    remembers = True

    def __init__(self, encoder):
        super().__init__("heavy rain", encoder)
        self.memories = []

    def describe(self, frame=None, memory=None):
        self.memories.append(memory)
        return super().describe(frame)


def test_a_videos_readings_are_pooled_and_a_folders_photos_stand_alone(tmp_path):
    torch.manual_seed(0)
    model = trained_like(LDRNet(**TINY))
    encoder = HashEncoder()
    provider = _Remembers(encoder)
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=provider.describe(None), provider=provider)
    provider.memories.clear()
    (tmp_path / "in").mkdir()
    for i in range(2):
        write_rgb(tmp_path / "in" / f"{i}.png", photo(i))
    restore_path(pipeline, tmp_path / "in", tmp_path / "out")
    assert provider.memories == [None, None]
    source = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, (56, 40))
    for i in range(25):  # 12.5 s: described at 0, 5 and 10 s
        writer.write((photo(i) * 255).astype(np.uint8))
    writer.release()
    provider.memories.clear()
    restore_path(pipeline, source, tmp_path / "clean.mp4")
    first, *rest = provider.memories
    assert len(rest) == 2 and first is not None and all(m is first for m in rest)
    assert first.readings == pipeline.config.prior_memory


def test_the_pipeline_commands_read_memory_and_working_size_as_the_node_reads_them(capsys):
    from allweather_ros.cli import _pipeline_config, build_parser

    parser = build_parser()
    for command in (["restore", "in.mp4", "out.mp4"],
                    ["eval-bag", "b", "--topic", "/c", "--out", "o"], ["demo"]):
        assert _pipeline_config(parser.parse_args(command)).prior_memory == \
            BY_NAME["prior.memory"].default
        assert _pipeline_config(parser.parse_args([*command, "--memory", "2"])).prior_memory == 2
        for bad in ("0", "two"):
            with pytest.raises(SystemExit):
                parser.parse_args([*command, "--memory", bad])
            assert "prior.memory takes an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["restore", "a", "b", "--processing-max-side", "-3"])
    assert "processing_max_side takes an integer >= 0" in capsys.readouterr().err
