"""eval-bag --live through the real restore_node process, the demo, and the commands' wiring."""
import re

import pytest
from test_eval_bags import small_bag

from allweather_ros.cli import build_parser
from allweather_ros.evaluation.bags import BagReader
from allweather_ros.evaluation.demo import run_demo
from allweather_ros.evaluation.eval_bag import output_names
from allweather_ros.evaluation.live import node_parameters
from allweather_ros.evaluation.make_bag import GT_TOPIC, TOPIC
from allweather_ros.pipeline import PipelineConfig
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS
from allweather_ros.topics import camera_topics

needs_estimator = pytest.mark.skipif(
    not SHIPPED_WEIGHTS.is_file(),
    reason=f"restore_node needs the built-in estimator weights {SHIPPED_WEIGHTS}, not trained yet")


def commands():
    return build_parser()


def test_the_live_evaluation_waits_where_the_node_publishes():
    """For /cam/image_color the node publishes /cam/restored/image_color (both ask topics.py),
    and a compressed bag topic is played where the node subscribes."""
    assert output_names(camera_topics("/cam/image_color"))["restored"] == \
        "/cam/restored/image_color"
    jpeg = camera_topics("/cam/image_jpeg", "compressed")
    params = node_parameters(jpeg, PipelineConfig())["restore_node"]["ros__parameters"]
    assert params["input_topics"] == ["/cam/image_jpeg/compressed"] == [jpeg.input]
    assert params["input_transport"] == "compressed"
    assert params["prior"]["period_s"] == PipelineConfig().prior_period_s


def test_commands_parse_and_make_bag_runs(tmp_path, capsys):
    parser = commands()
    args = parser.parse_args(["make-bag", str(tmp_path / "bag"), "--frames", "2", "--size",
                              "64x48", "--storage", "mcap", "--compressed"])
    assert args.func(args) == 0
    with BagReader(tmp_path / "bag") as reader:
        assert reader.topics[TOPIC + "/compressed"].count == 2
    args = parser.parse_args(["eval-bag", "b", "--topic", TOPIC, "--out", "o", "--live",
                              "--backend", "onnxruntime", "--provider", "none"])
    assert args.live and args.backend == "onnxruntime" and args.gt_topic is None
    args = parser.parse_args(["eval-bag", str(tmp_path / "bag"), "--topic", "/nope", "--out",
                              str(tmp_path / "out"), "--provider", "none"])
    assert args.func(args) == 2
    assert "/camera/image_raw/compressed" in capsys.readouterr().err


def test_demo_command_prints_the_latency_with_one_decimal(tmp_path, pipeline_config, capsys):
    from allweather_ros.cli import main

    code = main(["demo", "--out", str(tmp_path / "demo"), "--frames", "2", "--size", "64x48",
                 "--weights", pipeline_config.weights, "--backend", "torch",
                 "--provider", "none"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert re.search(r"2/2 frames restored, latency p50 \d+\.\d ms, PSNR", printed), printed


def test_demo_wiring_with_a_tiny_model(tmp_path, pipeline_config):
    report = run_demo(tmp_path / "demo", config=pipeline_config, frames=3, size=(64, 48),
                      progress=False)
    assert report["restored_frames"] == 3 and report["psnr"] is not None
    assert (tmp_path / "demo" / "report.md").is_file()


def test_a_prior_the_node_published_is_reported_as_eval_bag_reports_one():
    from allweather_ros.evaluation.live import heard_prior
    from allweather_ros.prior.prior import prior_from_text

    prior = prior_from_text("heavy rain", "fixed", None)
    assert heard_prior(prior.to_json(), published=5) == {
        "index": 4, "text": prior.text, "confidence": prior.confidence}
    assert heard_prior(prior.to_json(), published=0)["index"] == 0  # latched before any frame
    for foreign in ("not json", "[1, 2]", '{"no": "text"}'):  # another publisher's: no crash
        assert heard_prior(foreign, published=3) is None


@needs_estimator
@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
def test_live_replay_through_the_node(tmp_path, pipeline_config, compressed):
    from allweather_ros.evaluation.live import eval_live

    made = small_bag(tmp_path / "bag", "mcap", compressed=compressed, frames=8)
    report = eval_live(made["bag"], made["topic"], tmp_path / "out", gt_topic=GT_TOPIC,
                       config=pipeline_config,
                       progress=False)
    assert report["published"] == 8 and report["restored_frames"] >= 6
    assert report["dropped"] == 8 - report["restored_frames"]
    assert report["latency_ms_p50"] > 0 and report["fps"] > 0 and report["jitter_ms"] >= 0
    assert report["foreign_messages"] == 0
    # a short bag may end before the node's first prior: what was heard is what was recorded
    assert len(report["priors"]) == report["output_topics"].get("/camera/restored/prior", 0)
    assert all("psnr" in r for r in report["per_frame"])
    with BagReader(report["output_bag"]) as reader:
        assert reader.topics["/camera/restored/image_raw"].count == report["restored_frames"]
