"""make-bag and eval-bag's direct mode on small bags, and what a damaged bag gives."""
import json
import shutil

import numpy as np
import pytest
from conftest import TINY

from allweather_ros.description import Degradation
from allweather_ros.evaluation.bags import (
    BagError,
    BagReader,
    BagWriter,
    image_message,
    make_header,
    to_uint8,
)
from allweather_ros.evaluation.eval_bag import eval_bag, output_names
from allweather_ros.evaluation.make_bag import GT_TOPIC, TOPIC, make_bag
from allweather_ros.topics import camera_topics

SIZE = (64, 48)
RAIN = [Degradation("rain", "heavy"), Degradation("raindrop", "slight")]


def small_bag(path, storage="sqlite3", compressed=False, frames=6, seed=0):
    return make_bag(path, frames=frames, fps=10.0, size=SIZE, weather=RAIN, seed=seed,
                    storage=storage, compressed=compressed, progress=False)


def test_frames_written_to_a_bag_are_clipped_and_non_finite_values_become_black():
    rgb = np.float32([[[np.nan, 1.7, -0.2], [np.inf, -np.inf, 0.5]]])
    np.testing.assert_array_equal(to_uint8(rgb), [[[0, 255, 0], [255, 0, 128]]])


def frames_of(path, topic):
    with BagReader(path) as reader:
        return list(reader.frames(topic))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("compressed", [False, True])
def test_make_bag_writes_paired_weathered_frames(tmp_path, storage, compressed):
    made = small_bag(tmp_path / "bag", storage, compressed)
    topic = TOPIC + "/compressed" if compressed else TOPIC
    assert made["topic"] == topic and made["frames"] == 6
    with BagReader(tmp_path / "bag") as reader:
        assert reader.topics[topic].count == 6 and reader.topics[GT_TOPIC].count == 6
        inputs, truths = list(reader.frames(topic)), list(reader.frames(GT_TOPIC))
    assert all(f.error is None and f.rgb.shape == (48, 64, 3) for f in inputs + truths)
    assert [f.stamp_ns for f in inputs] == [f.stamp_ns for f in truths]
    assert np.diff([f.stamp_ns for f in inputs]).tolist() == [100_000_000] * 5
    # weather was added, and the camera moves: consecutive clean frames differ
    assert np.abs(inputs[0].rgb - truths[0].rgb).mean() > 0.01
    assert np.abs(truths[1].rgb - truths[0].rgb).mean() > 0.001


def test_make_bag_is_deterministic_by_seed(tmp_path):
    first = frames_of(small_bag(tmp_path / "a", frames=3)["bag"], TOPIC)
    again = frames_of(small_bag(tmp_path / "b", frames=3)["bag"], TOPIC)
    other = frames_of(small_bag(tmp_path / "c", frames=3, seed=1)["bag"], TOPIC)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0].rgb, other[0].rgb)


def check_output_bag(report, frames):
    topics = output_names(camera_topics(report["topic"]))
    with BagReader(report["output_bag"]) as reader:
        counts = {name: info.count for name, info in reader.topics.items()}
        maps = list(reader.frames(topics["map"]))
    assert counts[topics["restored"]] == frames and counts[topics["map"]] == frames
    assert counts[topics["prior"]] >= 1 and counts[report["topic"]] == frames
    assert maps[0].error is None


@pytest.mark.parametrize("storage,compressed", [("sqlite3", False), ("mcap", True)])
def test_eval_bag_direct_reports_and_writes_the_output_bag(tmp_path, pipeline_config, storage,
                                                           compressed):
    made = small_bag(tmp_path / "bag", storage, compressed)
    report = eval_bag(made["bag"], made["topic"], tmp_path / "out", gt_topic=GT_TOPIC,
                      config=pipeline_config, progress=False)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("frames", "restored_frames", "dropped", "latency_ms_p50", "latency_ms_p99",
                "psnr", "ssim", "input_psnr", "input_ssim", "per_frame"):
        assert saved[key] is not None, key
    assert report["frames"] == report["restored_frames"] == 6 and report["dropped"] == 0
    assert report["gt_matching"] == "stamp"
    assert saved["weights"]["restorer_weights"].startswith(f"{pipeline_config.weights} (sha256 ")
    assert all("psnr" in r and "ssim" in r and "input_psnr" in r for r in report["per_frame"])
    assert all(len(r["experts"]) == TINY["num_experts"] for r in report["per_frame"])
    check_output_bag(report, 6)
    told = (tmp_path / "out" / "report.md").read_text().split("## What the restorer was told")
    assert len(told) == 2 and f"| 0 | {report['priors'][0]['text']} |" in told[1]
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    assert (tmp_path / "out" / "plots" / "psnr.png").is_file()


def test_eval_bag_without_ground_truth_uses_no_reference_statistics(tmp_path, pipeline_config):
    made = small_bag(tmp_path / "bag", frames=3)
    report = eval_bag(made["bag"], TOPIC, tmp_path / "out", config=pipeline_config, progress=False)
    assert report["psnr"] is None and report["restored_frames"] == 3
    assert report["map_mean"] is not None
    assert (tmp_path / "out" / "plots" / "no_reference.png").is_file()
    # a second run into the same folder replaces its own earlier output
    assert eval_bag(made["bag"], TOPIC, tmp_path / "out", config=pipeline_config,
                    progress=False)["restored_frames"] == 3


def truncate(bag, fraction):
    storage = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    with storage.open("r+b") as file:
        file.truncate(int(storage.stat().st_size * fraction))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_truncated_bag_keeps_the_frames_before_the_damage(tmp_path, storage):
    bag = tmp_path / "bag"
    small_bag(bag, storage, frames=10)
    truncate(bag, 0.6)
    with BagReader(bag) as reader:
        frames = [f for f in reader.frames(TOPIC) if f.error is None]
        assert reader.stopped and "stopped early" in reader.stopped
        assert any("salvag" in note for note in reader.notes)
    assert 0 < len(frames) < 10
    assert [f.index for f in frames] == list(range(len(frames)))


def test_eval_on_a_truncated_bag_reports_partial_results(tmp_path, pipeline_config):
    bag = tmp_path / "bag"
    small_bag(bag, "mcap", frames=10)
    truncate(bag, 0.6)
    report = eval_bag(bag, TOPIC, tmp_path / "out", gt_topic=GT_TOPIC, config=pipeline_config,
                      progress=False)
    assert report["stopped"] and 0 < report["restored_frames"] < 10
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["stopped"] == report["stopped"]
    assert "Stopped early" in (tmp_path / "out" / "report.md").read_text()


def test_missing_metadata_reads_the_storage_file(tmp_path):
    bag = tmp_path / "bag"
    small_bag(bag, "mcap", frames=3)
    (bag / "metadata.yaml").unlink()
    with BagReader(bag) as reader:
        assert len(list(reader.frames(TOPIC))) == 3
        assert "no metadata.yaml" in reader.notes[0]


def test_unknown_topic_lists_the_available_ones(tmp_path, pipeline_config):
    small_bag(tmp_path / "bag", frames=2)
    with pytest.raises(BagError, match=r"'/nope' is not in .*/camera/image_raw \(sensor_msgs"):
        eval_bag(tmp_path / "bag", "/nope", tmp_path / "out", config=pipeline_config,
                 progress=False)
    with pytest.raises(BagError, match="not one of"):
        BagReader(tmp_path / "bag").topic("/camera/ground_truth/weather")


def test_not_a_bag_is_a_clear_error(tmp_path):
    with pytest.raises(BagError, match="no bag at"):
        BagReader(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no .db3 or .mcap"):
        BagReader(tmp_path / "empty")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "junk.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(BagError, match="not an MCAP file"):
        BagReader(junk)


def test_bad_frames_are_counted_and_the_rest_restored(tmp_path, pipeline_config):
    """An unsupported encoding and a corrupt message among good frames."""
    rng = np.random.default_rng(0)
    with BagWriter(tmp_path / "bag", "sqlite3") as writer:
        for i in range(4):
            ns = 10**9 + i * 10**8
            msg = image_message(rng.random((48, 64, 3), np.float32), make_header(ns, "cam"))
            if i == 1:
                msg.encoding = "weird16"
            if i == 2:
                writer.write_raw(TOPIC, msg.__msgtype__, ns, b"\0\1\0\0garbage")
                continue
            writer.write(TOPIC, msg, ns)
    report = eval_bag(tmp_path / "bag", TOPIC, tmp_path / "out", config=pipeline_config,
                      progress=False)
    assert report["frames"] == 4 and report["restored_frames"] == 2 and report["dropped"] == 2
    errors = " ".join(report["frame_errors"])
    assert "unsupported encoding 'weird16'" in errors and "corrupt message" in errors


def test_output_folder_that_is_not_ours_is_refused(tmp_path, pipeline_config):
    small_bag(tmp_path / "bag", frames=2)
    (tmp_path / "out" / "restored").mkdir(parents=True)
    with pytest.raises(BagError, match="not an earlier eval-bag output"):
        eval_bag(tmp_path / "bag", TOPIC, tmp_path / "out", config=pipeline_config, progress=False)
    shutil.rmtree(tmp_path / "out")


@pytest.mark.parametrize("experts", [4, 16])
def test_the_experts_legend_stays_inside_the_figure(experts):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from allweather_ros.evaluation.report import experts_figure

    shares = np.full(experts, 1 / experts).tolist()
    figure = experts_figure([{"index": i, "experts": shares} for i in range(5)])
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (legend,) = figure.legends
    box, page = legend.get_window_extent(renderer), figure.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
